package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/vigilhq/vigil/adapters/postgres"
	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/domain/app"
	"github.com/vigilhq/vigil/domain/event"
)

// countingPublisher stands in for JetStream: the bench measures claiming, not storing
// messages (bench pipeline does that).
type countingPublisher struct {
	n    atomic.Int64
	mu   sync.Mutex
	seen map[string]int
}

func (p *countingPublisher) Publish(ctx context.Context, ev event.Event) error {
	return p.PublishAll(ctx, []event.Event{ev})
}

func (p *countingPublisher) PublishAll(_ context.Context, evs []event.Event) error {
	p.n.Add(int64(len(evs)))
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.seen == nil {
		p.seen = map[string]int{}
	}
	for _, ev := range evs {
		p.seen[ev.AggregateID()]++
	}
	return nil
}

// runBenchScheduler implements `vigil bench scheduler`: it loads monitors into a scratch
// database, makes them all due, and measures how fast schedulers claim them: claim and
// commit, build each EvaluationDue with what the evaluator needs, and mark it published.
func runBenchScheduler(ctx context.Context, cfg config.Config, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("bench scheduler", flag.ContinueOnError)
	fs.SetOutput(out)
	monitors := fs.Int("monitors", 1000000, "monitors in the database")
	batch := fs.Int("batch", cfg.SchedulerBatch, "monitors claimed per transaction (SCHEDULER_BATCH)")
	replicas := fs.Int("replicas", 4, "schedulers claiming at once")
	rounds := fs.Int("rounds", 3, "times every monitor is made due and claimed")
	keep := fs.Bool("keep", false, "keep the scratch database")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the rounds to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *replicas < 1 || *replicas > 64 {
		return fmt.Errorf("-replicas: %d must be from 1 to 64", *replicas)
	}
	dbURL, drop, err := scratchDatabase(ctx, cfg.DatabaseURL, *keep)
	if err != nil {
		return err
	}
	defer drop()
	if err := migrateScratch(ctx, dbURL); err != nil {
		return err
	}
	conns := int32(*replicas + 2) // #nosec G115 -- replicas is checked to be 1..64
	pool, err := postgres.Open(ctx, postgres.PoolConfig{URL: dbURL, AppName: "vigil-bench", MaxConns: conns, StatementTimeout: 30 * time.Minute})
	if err != nil {
		return err
	}
	defer pool.Close()
	fmt.Fprintf(out, "loading %d monitors…\n", *monitors)
	loadStart := time.Now()
	userID := uuid.Must(uuid.NewV7()).String()
	for _, s := range []string{
		`INSERT INTO users (id, email, name) VALUES ($1, 'bench@vigil.localhost', 'Bench')`,
		`INSERT INTO monitors (user_id, name, prompt, kind, spec, source_url, interval_seconds, status, state, next_run_at, last_success)
		 SELECT $1, 'Bench ' || i, 'Tell me when the price drops below $80', 'current_state',
		        '{"kind":"current_state","summary":"price below 80","facts":[{"name":"price","type":"number","unit":"USD"}],"condition":"price < 80","needs_source":true,"confidence":1}',
		        'https://shop.example/item/' || i, 86400, 'active', 'inactive', now() + interval '1 day',
		        '{"monitor_version":1,"source_hash":"0f3a","state":"inactive","explanation":"The price is 90.","facts":[{"key":"price","number":90,"unit":"USD","confidence":1,"observed_at":"2026-12-01T00:00:00Z"}]}'
		 FROM generate_series(1, $2::int) AS i`,
		`ANALYZE monitors`,
	} {
		a := []any{userID, *monitors}
		if s == `ANALYZE monitors` {
			a = nil
		} else if s[:18] == `INSERT INTO users ` {
			a = a[:1]
		}
		if _, err := pool.Exec(ctx, s, a...); err != nil {
			return fmt.Errorf("bench data: %w", err)
		}
	}
	fmt.Fprintf(out, "loaded in %s; %d schedulers claiming batches of %d\n", time.Since(loadStart).Round(time.Second), *replicas, *batch)
	fmt.Fprintf(out, "%-6s %10s %12s %10s\n", "round", "claims", "per second", "took")
	store := postgres.NewMonitorStore(pool, "vigil/bench")
	stopProfile, err := startCPUProfile(*cpuProfile)
	if err != nil {
		return err
	}
	defer stopProfile()
	for round := 1; round <= *rounds; round++ {
		if _, err := pool.Exec(ctx, `UPDATE monitors SET next_run_at = now() - interval '1 second'`); err != nil {
			return fmt.Errorf("make monitors due: %w", err)
		}
		if _, err := pool.Exec(ctx, `VACUUM ANALYZE monitors`); err != nil {
			return fmt.Errorf("vacuum: %w", err)
		}
		pub := &countingPublisher{}
		start := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, *replicas)
		for range *replicas {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := app.NewScheduler(store, pub, time.Now, app.SchedulerConfig{Batch: *batch}).Tick(ctx); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		took := time.Since(start)
		close(errs)
		if err := <-errs; err != nil {
			return err
		}
		n := pub.n.Load()
		// Monitors are spread over their interval by id, so a few come due again while a
		// long round runs: they are claimed twice, legitimately. Every one must be claimed.
		pub.mu.Lock()
		distinct := len(pub.seen)
		pub.mu.Unlock()
		if distinct != *monitors {
			return fmt.Errorf("round %d: %d of %d monitors scheduled", round, distinct, *monitors)
		}
		fmt.Fprintf(out, "%-6d %10d %12.0f %10s\n", round, n, float64(n)/took.Seconds(), took.Round(time.Millisecond))
	}
	return nil
}

package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigilhq/vigil/adapters/postgres"
	"github.com/vigilhq/vigil/adapters/smtp/smtptest"
	"github.com/vigilhq/vigil/config"
)

// runBenchPipeline implements `vigil bench pipeline`: for each size it fills a scratch
// database with monitors watching a local source server, runs every pipeline role in this
// process (embedded NATS, rule-based provider), makes all monitors due at once, round after
// round, and measures how fast evaluations are recorded. With -changes every evaluation
// flips its monitor's state and emails a local SMTP server. With -rate the monitors of a
// round fall due spread at that many a second instead of all at once, which measures the
// orchestration overhead at an offered load rather than the throughput.
func runBenchPipeline(ctx context.Context, cfg config.Config, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("bench pipeline", flag.ContinueOnError)
	fs.SetOutput(out)
	sizesFlag := fs.String("monitors", "10000", "monitors per run, comma-separated")
	rounds := fs.Int("rounds", 3, "measured rounds per run, after one warm-up round")
	changes := fs.Bool("changes", false, "every evaluation changes its monitor's state and sends an email")
	timeout := fs.Duration("timeout", 20*time.Minute, "how long one round may take")
	keep := fs.Bool("keep", false, "keep the scratch databases")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the measured rounds to this file")
	lazySync := fs.Bool("nats-lazy-sync", false, "measure only: the embedded NATS without an fsync per write (loses messages on an OS crash)")
	asyncCommit := fs.Bool("async-commit", false, "measure only: synchronous_commit off in the scratch database (loses commits on an OS crash)")
	rate := fs.Float64("rate", 0, "monitors falling due per second, spread over the round (0: all at once)")
	tick := fs.Duration("scheduler-tick", 200*time.Millisecond, "SCHEDULER_TICK of the scheduler under test")
	if err := fs.Parse(args); err != nil {
		return err
	}
	sizes, err := positiveInts("monitors", *sizesFlag)
	if err != nil {
		return err
	}
	if *rounds < 1 {
		return fmt.Errorf("-rounds: want at least 1")
	}
	if *rate < 0 {
		return fmt.Errorf("-rate: want 0 (all at once) or a positive rate")
	}
	if *tick < time.Millisecond {
		return fmt.Errorf("-scheduler-tick: want at least 1ms")
	}
	var price atomic.Int64
	price.Store(90)
	src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		fmt.Fprintf(w, `{"product":"widget","price":%d}`, price.Load())
	}))
	defer src.Close()
	mail, stopMail, err := smtptest.Listen()
	if err != nil {
		return fmt.Errorf("local SMTP server: %w", err)
	}
	defer stopMail() //nolint:errcheck // the bench is over

	offered := "all at once"
	if *rate > 0 {
		offered = fmt.Sprintf("%.0f/s", *rate)
	}
	fmt.Fprintf(out, "pipeline bench: %d measured rounds per size after a warm-up; due %s; scheduler tick %s; changes=%v; nats fsync per write=%v; synchronous_commit=%v\n",
		*rounds, offered, *tick, *changes, !*lazySync, !*asyncCommit)
	fmt.Fprintln(out, "ovh: due→recorded minus the evaluator's own time (fetch and provider), i.e. scheduling, queueing and recording")
	fmt.Fprintf(out, "%-9s %-5s %8s %9s %9s %9s %8s %8s %10s %10s %8s %9s %8s %8s\n", "monitors", "round", "evals/s", "due→rec50", "due→rec95", "due→rec99",
		"ovh50", "ovh99", "chg→smtp50", "chg→smtp99", "round", "vigil cpu", "pg cpu", "vacuum")
	for _, n := range sizes {
		opts := pipelineOptions{rounds: *rounds, changes: *changes, timeout: *timeout, keep: *keep, cpuProfile: *cpuProfile,
			lazySync: *lazySync, asyncCommit: *asyncCommit, rate: *rate, tick: *tick}
		if err := benchPipelineSize(ctx, cfg, out, n, opts, src.URL, mail, &price); err != nil {
			return err
		}
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		fmt.Fprintf(out, "peak RSS of this process: %d MiB\n", ru.Maxrss/1024)
	}
	return nil
}

// pipelineOptions are the flags of one bench pipeline run.
type pipelineOptions struct {
	rounds                int
	changes               bool
	timeout               time.Duration
	keep                  bool
	cpuProfile            string
	lazySync, asyncCommit bool
	rate                  float64 // due per second; 0 for all at once
	tick                  time.Duration
}

func benchPipelineSize(ctx context.Context, cfg config.Config, out io.Writer, n int, o pipelineOptions, srcURL string,
	mail *smtptest.Server, price *atomic.Int64) error {
	rounds, changes, timeout, cpuProfile := o.rounds, o.changes, o.timeout, o.cpuProfile
	dbURL, drop, err := scratchDatabase(ctx, cfg.DatabaseURL, o.keep)
	if err != nil {
		return err
	}
	defer drop()
	if err := migrateScratch(ctx, dbURL); err != nil {
		return err
	}
	pool, err := postgres.Open(ctx, postgres.PoolConfig{URL: dbURL, AppName: "vigil-bench", MaxConns: 4, StatementTimeout: 10 * time.Minute})
	if err != nil {
		return err
	}
	defer pool.Close()
	if o.asyncCommit { // for the roles' connections, opened after this
		if _, err := pool.Exec(ctx, `DO $$ BEGIN
			EXECUTE format('ALTER DATABASE %I SET synchronous_commit = off', current_database()); END $$`); err != nil {
			return fmt.Errorf("-async-commit: %w", err)
		}
	}
	if err := loadPipelineMonitors(ctx, pool, n, srcURL, changes); err != nil {
		return err
	}
	cfg.SMTPURL = mail.URL()
	cfg.AIProviders = []string{"fallback"}
	cfg.SchedulerTick = o.tick
	_, stop, err := benchRoles(ctx, cfg, dbURL, []string{roleNATS, roleScheduler, roleEvaluator, roleRecorder, roleMatcher, roleMailer},
		func(m *Main) { m.natsLazySync = o.lazySync })
	if err != nil {
		return err
	}
	defer stop()

	autovacuum, err := autovacuumOn(ctx, pool)
	if err != nil {
		return err
	}
	if !autovacuum {
		fmt.Fprintln(out, "this Postgres runs without autovacuum: each round is followed by VACUUM (ANALYZE), timed in the vacuum column, as autovacuum would do")
	}
	for round := 0; round <= rounds; round++ {
		if changes && round%2 == 0 {
			price.Store(70) // below 80: active
		} else if changes {
			price.Store(90)
		}
		if round == 1 { // the measured rounds only
			stopProfile, err := startCPUProfile(cpuProfile)
			if err != nil {
				return err
			}
			defer stopProfile()
		}
		emailsBefore := mail.Count()
		vigilCPU0, pgCPU0 := processCPU(), postgresCPU()
		start, err := makeDue(ctx, pool, o.rate)
		if err != nil {
			return err
		}
		deadline := time.Now().Add(timeout)
		for {
			var got int
			if err := pool.QueryRow(ctx, `SELECT count(*) FROM evaluations WHERE scheduled_for >= $1`, start).Scan(&got); err != nil {
				return err
			}
			emails := mail.Count() - emailsBefore
			if got >= n && (!changes || round == 0 || emails >= n) {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%d monitors, round %d: %d evaluations and %d emails after %s", n, round, got, emails, timeout)
			}
			// Counting scans the evaluations, so not too often: the figures are Vigil's.
			time.Sleep(time.Second)
		}
		vigilCPU, pgCPU := processCPU()-vigilCPU0, postgresCPU()-pgCPU0
		var last time.Time
		var p50, p95, p99, ovh50, ovh99 float64
		// The evaluator's own time is started_at → finished_at; the rest of due → recorded
		// is the pipeline's. created_at is the recorder's transaction start, a millisecond
		// or so before its commit.
		err = pool.QueryRow(ctx, `
			SELECT max(created_at),
			       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM created_at - scheduled_for)),
			       percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM created_at - scheduled_for)),
			       percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM created_at - scheduled_for)),
			       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM (created_at - scheduled_for) - (finished_at - started_at))),
			       percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM (created_at - scheduled_for) - (finished_at - started_at)))
			FROM evaluations WHERE scheduled_for >= $1`, start).Scan(&last, &p50, &p95, &p99, &ovh50, &ovh99)
		if err != nil {
			return err
		}
		elapsed := last.Sub(start)
		if o.rate > 0 { // the first was due at start, the last n/rate later
			elapsed = max(elapsed, time.Duration(float64(n-1)/o.rate*float64(time.Second)))
		}
		smtp50, smtp99 := "-", "-"
		if changes && round > 0 {
			d, err := changeToSMTP(ctx, pool, mail.Messages()[emailsBefore:])
			if err != nil {
				return err
			}
			smtp50, smtp99 = pct(d, 0.5).Round(time.Millisecond).String(), pct(d, 0.99).Round(time.Millisecond).String()
		}
		label := strconv.Itoa(round)
		if round == 0 {
			label = "warm"
		}
		vacuum := "-"
		if !autovacuum {
			took, err := vacuumScratch(ctx, pool)
			if err != nil {
				return err
			}
			vacuum = took.Round(time.Millisecond).String()
		}
		fmt.Fprintf(out, "%-9d %-5s %8.0f %9s %9s %9s %8s %8s %10s %10s %8s %8.1fs %7.1fs %8s\n", n, label, float64(n)/elapsed.Seconds(),
			secs(p50), secs(p95), secs(p99), secs(ovh50), secs(ovh99), smtp50, smtp99, elapsed.Round(time.Millisecond), vigilCPU.Seconds(), pgCPU.Seconds(), vacuum)
	}
	return nil
}

// makeDue makes every active monitor due, now or with rate spread from now at rate a
// second, and returns when the first is due. Updating every row at once can deadlock with
// the pipeline's own updates of the same rows; it is then tried again.
func makeDue(ctx context.Context, pool *pgxpool.Pool, rate float64) (time.Time, error) {
	if rate == 0 {
		rate = math.Inf(1) // every monitor 0 s after now
	}
	var start time.Time
	var err error
	for range 5 {
		err = pool.QueryRow(ctx, `
			WITH spread AS (
				SELECT id, (row_number() OVER (ORDER BY id) - 1) / $1::float8 AS after FROM monitors WHERE status = 'active')
			UPDATE monitors m SET next_run_at = now() + spread.after * interval '1 second'
			FROM spread WHERE m.id = spread.id
			RETURNING now()`, rate).Scan(&start)
		if err == nil || !strings.Contains(err.Error(), "40P01") {
			break
		}
	}
	if err != nil {
		return start, fmt.Errorf("make monitors due: %w", err)
	}
	return start, nil
}

// autovacuumOn says whether the server vacuums and analyzes tables by itself.
func autovacuumOn(ctx context.Context, pool *pgxpool.Pool) (bool, error) {
	var on bool
	if err := pool.QueryRow(ctx, `SELECT current_setting('autovacuum')::bool`).Scan(&on); err != nil {
		return false, fmt.Errorf("read the autovacuum setting: %w", err)
	}
	return on, nil
}

// vacuumScratch does what autovacuum would between two rounds: without it, every update
// leaves a dead row version behind and the planner keeps the statistics of empty tables.
func vacuumScratch(ctx context.Context, pool *pgxpool.Pool) (time.Duration, error) {
	start := time.Now()
	if _, err := pool.Exec(ctx, `VACUUM (ANALYZE)`); err != nil {
		return 0, fmt.Errorf("vacuum between rounds: %w", err)
	}
	return time.Since(start), nil
}

// loadPipelineMonitors creates one user and n monitors, each watching its own page of the
// source server; with changes, each has a state_change trigger to the user's email.
func loadPipelineMonitors(ctx context.Context, pool *pgxpool.Pool, n int, srcURL string, changes bool) error {
	userID := uuid.Must(uuid.NewV7()).String()
	stmts := []string{
		`INSERT INTO users (id, email, name, email_verified_at) VALUES ($1, 'bench@vigil.localhost', 'Bench', now())`,
		`INSERT INTO actions (user_id, name, type, config, is_default)
		 SELECT id, 'Email me', 'email', jsonb_build_object('to', jsonb_build_array(email)), true FROM users WHERE id = $1`,
		`INSERT INTO monitors (user_id, name, prompt, kind, spec, source_url, interval_seconds, status, state, next_run_at)
		 SELECT $1, 'Bench ' || i, 'Tell me when the price drops below $80', 'current_state',
		        '{"kind":"current_state","summary":"price below 80","facts":[{"name":"price","type":"number","unit":"USD"}],"condition":"price < 80","needs_source":true,"confidence":1}',
		        $3 || '/item/' || i, 3600, 'active', 'unknown', now() + interval '1 day'
		 FROM generate_series(1, $2::int) AS i`,
	}
	if changes {
		stmts = append(stmts, `INSERT INTO triggers (monitor_id, action_id, condition)
		 SELECT m.id, a.id, 'state_change' FROM monitors m JOIN actions a ON a.user_id = m.user_id WHERE m.user_id = $1`)
	}
	for _, s := range stmts {
		args := []any{userID}
		if strings.Contains(s, "$2") {
			args = append(args, n, srcURL)
		}
		if _, err := pool.Exec(ctx, s, args...); err != nil {
			return fmt.Errorf("bench data: %w", err)
		}
	}
	_, err := pool.Exec(ctx, `ANALYZE`)
	return err
}

// changeToSMTP returns, for each email, how long after its state change was recorded the
// SMTP server accepted it.
func changeToSMTP(ctx context.Context, pool *pgxpool.Pool, msgs []smtptest.Received) ([]time.Duration, error) {
	ids := make([]string, 0, len(msgs))
	for _, m := range msgs {
		ids = append(ids, strings.TrimSuffix(strings.TrimPrefix(m.Header.Get("Message-ID"), "<"), "@vigil>"))
	}
	rows, err := pool.Query(ctx, `
		SELECT n.id::text, e.created_at FROM notifications n JOIN evaluations e ON e.id = n.evaluation_id
		WHERE n.id = ANY($1::uuid[])`, ids)
	if err != nil {
		return nil, err
	}
	changed := map[string]time.Time{}
	var id string
	var at time.Time
	for rows.Next() {
		if err := rows.Scan(&id, &at); err != nil {
			return nil, err
		}
		changed[id] = at
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	d := make([]time.Duration, 0, len(msgs))
	for i, m := range msgs {
		if t, ok := changed[ids[i]]; ok {
			d = append(d, m.At.Sub(t))
		}
	}
	return d, nil
}

func pct(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[min(len(d)-1, int(q*float64(len(d))))]
}

func secs(s float64) string {
	return (time.Duration(s * float64(time.Second))).Round(time.Millisecond).String()
}

// processCPU is the CPU time this process used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// postgresCPU is the CPU time every postgres process on this machine used so far, read
// from /proc (clock ticks of 1/100 s); 0 where /proc is not there.
func postgresCPU() time.Duration {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	var ticks int64
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(b)
		open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || closing < open || s[open+1:closing] != "postgres" {
			continue
		}
		fields := strings.Fields(s[closing+1:])
		if len(fields) < 13 {
			continue
		}
		utime, _ := strconv.ParseInt(fields[11], 10, 64)
		stime, _ := strconv.ParseInt(fields[12], 10, 64)
		ticks += utime + stime
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}

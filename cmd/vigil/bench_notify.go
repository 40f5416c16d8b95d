package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigilhq/vigil/adapters/postgres"
	"github.com/vigilhq/vigil/adapters/smtp/smtptest"
	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/domain/action"
	"github.com/vigilhq/vigil/domain/event"
	"github.com/vigilhq/vigil/domain/monitor"
	"github.com/vigilhq/vigil/streams"
)

// runBenchNotify implements `vigil bench notify`: in a scratch database it gives monitors
// an email trigger and a webhook trigger, commits a burst of simultaneous state changes
// (as the recorder does: evaluations and StateChanged in the outbox), and measures, with
// the matcher and the mailer running in this process against a local SMTP server and a
// local webhook receiver, how long each state change takes to reach SMTP accept and a
// webhook 2xx.
func runBenchNotify(ctx context.Context, cfg config.Config, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("bench notify", flag.ContinueOnError)
	fs.SetOutput(out)
	rounds := fs.String("changes", "1000,5000", "simultaneous state changes per round, comma-separated")
	timeout := fs.Duration("timeout", 10*time.Minute, "how long a round may take")
	keep := fs.Bool("keep", false, "keep the scratch database")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the rounds to this file")
	channels := fs.String("channels", "email,webhook", "the channels each monitor notifies on, comma-separated")
	lazySync := fs.Bool("nats-lazy-sync", false, "measure only: the embedded NATS without an fsync per write (loses messages on an OS crash)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	sizes, err := positiveInts("changes", *rounds)
	if err != nil {
		return err
	}
	email, hook := false, false
	for _, c := range strings.Split(*channels, ",") {
		switch strings.TrimSpace(c) {
		case "email":
			email = true
		case "webhook":
			hook = true
		default:
			return fmt.Errorf("-channels: %q is not a channel (email, webhook)", c)
		}
	}
	dbURL, drop, err := scratchDatabase(ctx, cfg.DatabaseURL, *keep)
	if err != nil {
		return err
	}
	defer drop()

	mail, stopMail, err := smtptest.Listen()
	if err != nil {
		return fmt.Errorf("local SMTP server: %w", err)
	}
	defer stopMail() //nolint:errcheck // the bench is over
	hooks := &hookClock{}
	receiver := httptest.NewServer(hooks)
	defer receiver.Close()

	if err := migrateScratch(ctx, dbURL); err != nil {
		return err
	}
	cfg.SMTPURL = mail.URL()
	m, stop, err := benchRoles(ctx, cfg, dbURL, []string{roleNATS, roleMatcher, roleMailer},
		func(m *Main) { m.natsLazySync = *lazySync })
	if err != nil {
		return err
	}
	defer stop()
	pool, err := postgres.Open(ctx, postgres.PoolConfig{URL: dbURL, AppName: "vigil-bench", MaxConns: 4, StatementTimeout: 10 * time.Minute})
	if err != nil {
		return err
	}
	defer pool.Close()
	keys, err := m.dataKeys()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "matcher (%d batches, MATCHER_CONCURRENCY) and mailer (%d emails, MAILER_CONCURRENCY; %d webhooks, WEBHOOK_CONCURRENCY) running; SMTP %s; webhooks %s\n",
		cfg.MatcherConcurrency, cfg.MailerConcurrency, cfg.WebhookConcurrency, mail.Addr(), receiver.URL)
	stopProfile, err := startCPUProfile(*cpuProfile)
	if err != nil {
		return err
	}
	defer stopProfile()
	fmt.Fprintf(out, "%-8s %-8s %9s %9s %9s %9s %10s\n", "changes", "channel", "p50", "p95", "p99", "max", "per second")
	for round, n := range sizes {
		emailsBefore, hooksBefore := mail.Count(), hooks.count()
		hookURL := ""
		if hook {
			hookURL = receiver.URL + "/hook"
		}
		t0, err := burst(ctx, pool, keys, round, n, email, hookURL)
		if err != nil {
			return err
		}
		wantEmails, wantHooks := 0, 0
		if email {
			wantEmails = n
		}
		if hook {
			wantHooks = n
		}
		deadline := time.Now().Add(*timeout)
		for mail.Count() < emailsBefore+wantEmails || hooks.count() < hooksBefore+wantHooks {
			if time.Now().After(deadline) {
				return fmt.Errorf("round of %d: %d emails and %d webhooks after %s", n, mail.Count()-emailsBefore, hooks.count()-hooksBefore, *timeout)
			}
			time.Sleep(50 * time.Millisecond)
		}
		var emailLat, hookLat []time.Duration
		for _, at := range mail.Arrivals(emailsBefore) {
			emailLat = append(emailLat, at.Sub(t0))
		}
		for _, at := range hooks.since(hooksBefore) {
			hookLat = append(hookLat, at.Sub(t0))
		}
		if email {
			report(out, n, "email", emailLat, 5*time.Second)
		}
		if hook {
			report(out, n, "webhook", hookLat, 2*time.Second)
		}
	}
	return nil
}

// report prints one channel's latency percentiles and throughput, against its p99 target.
func report(out io.Writer, n int, channel string, d []time.Duration, p99Target time.Duration) {
	slices.Sort(d)
	p := func(q float64) time.Duration { return d[min(len(d)-1, int(q*float64(len(d))))] }
	last := d[len(d)-1]
	verdict := "ok"
	if p(0.99) > p99Target {
		verdict = "MISSED"
	}
	fmt.Fprintf(out, "%-8d %-8s %9s %9s %9s %9s %10.0f  p99 < %s %s\n", n, channel, p(0.5).Round(time.Millisecond),
		p(0.95).Round(time.Millisecond), p(0.99).Round(time.Millisecond), last.Round(time.Millisecond),
		float64(len(d))/last.Seconds(), p99Target, verdict)
}

// burst creates a user with n monitors, each with a state_change trigger to the user's
// email action when email and one to a webhook action at hookURL when it is not empty,
// then commits n state changes in one transaction and returns when it committed.
func burst(ctx context.Context, pool *pgxpool.Pool, keys postgres.Sealer, round, n int, email bool, hookURL string) (time.Time, error) {
	userID := uuid.Must(uuid.NewV7()).String()
	if _, err := pool.Exec(ctx, `INSERT INTO users (id, email, name, email_verified_at) VALUES ($1, $2, 'Bench', now())`,
		userID, fmt.Sprintf("bench%d@vigil.localhost", round)); err != nil {
		return time.Time{}, fmt.Errorf("bench user: %w", err)
	}
	if hookURL != "" {
		hook, err := action.New(uuid.Must(uuid.NewV7()).String(), action.Draft{UserID: userID, Type: action.TypeWebhook, URL: hookURL}, time.Now().UTC())
		if err != nil {
			return time.Time{}, err
		}
		if err := postgres.NewActionStore(pool, keys).CreateAction(ctx, hook); err != nil {
			return time.Time{}, err
		}
	}
	var stmts []string
	if email {
		stmts = append(stmts, `INSERT INTO actions (user_id, name, type, config, is_default)
		 SELECT id, 'Email me', 'email', jsonb_build_object('to', jsonb_build_array(email)), true FROM users WHERE id = $1`)
	}
	stmts = append(stmts,
		`INSERT INTO monitors (user_id, name, prompt, kind, spec, interval_seconds, status, state, next_run_at)
		 SELECT $1, 'Bench ' || i, 'Tell me when the price drops below $80', 'current_state',
		        '{"kind":"current_state","summary":"price below 80","facts":[{"name":"price","type":"number","unit":"USD"}],"condition":"price < 80","needs_source":true,"confidence":1}',
		        3600, 'paused', 'inactive', now() + interval '1 day'
		 FROM generate_series(1, $2::int) AS i`,
		`INSERT INTO triggers (monitor_id, action_id, condition)
		 SELECT m.id, a.id, 'state_change' FROM monitors m JOIN actions a ON a.user_id = m.user_id WHERE m.user_id = $1`)
	for _, s := range stmts {
		args := []any{userID}
		if strings.Contains(s, "$2") {
			args = append(args, n)
		}
		if _, err := pool.Exec(ctx, s, args...); err != nil {
			return time.Time{}, fmt.Errorf("bench data: %w", err)
		}
	}
	var t0 time.Time
	err := postgres.InTx(ctx, pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			INSERT INTO evaluations (monitor_id, scheduled_for, started_at, finished_at, status, state, previous_state, changed, explanation)
			SELECT id, now(), now(), now(), 'succeeded', 'active', 'inactive', true, 'The price is 79.'
			FROM monitors WHERE user_id = $1
			RETURNING id::text, monitor_id::text`, userID)
		if err != nil {
			return err
		}
		type ev struct{ id, monitorID string }
		evs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ev, error) {
			var e ev
			return e, r.Scan(&e.id, &e.monitorID)
		})
		if err != nil {
			return err
		}
		now := time.Now().UTC()
		events := make([]event.Event, 0, len(evs))
		for _, e := range evs {
			events = append(events, event.StateChanged{MonitorID: e.monitorID, UserID: userID, EvaluationID: e.id,
				From: monitor.StateInactive, To: monitor.StateActive, ScheduledFor: now, At: now})
		}
		return streams.AppendOutbox(ctx, tx, "vigil/bench", events...)
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("state changes: %w", err)
	}
	t0 = time.Now()
	return t0, nil
}

// hookClock is a webhook receiver that answers 204 and notes when each delivery came.
type hookClock struct {
	mu  sync.Mutex
	got []time.Time
}

func (h *hookClock) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body) //nolint:errcheck // only the arrival matters
	h.mu.Lock()
	h.got = append(h.got, time.Now())
	h.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (h *hookClock) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.got)
}

func (h *hookClock) since(i int) []time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]time.Time(nil), h.got[i:]...)
}

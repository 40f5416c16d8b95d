package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/ai/fallback"
	"github.com/vigilhq/vigil/adapters/postgres"
	"github.com/vigilhq/vigil/adapters/postgres/pgtest"
	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/app"
	"github.com/vigilhq/vigil/domain/event"
	"github.com/vigilhq/vigil/domain/monitor"
)

type bundle struct {
	pool     *pgxpool.Pool
	seed     *postgres.SeedStore
	userID   string
	actionID string
	monitor  *monitor.Monitor
	slot     time.Time // of the last evaluation fire recorded
}

func setup(t *testing.T) *bundle {
	t.Helper()
	ctx := context.Background()
	pool := pgtest.New(t)
	b := &bundle{pool: pool, seed: postgres.NewSeedStore(pool), slot: time.Now().UTC()}
	var err error
	b.userID, _, err = b.seed.EnsureUser(ctx, "ann@example.com", "Ann", "user", "")
	require.NoError(t, err)
	b.actionID, err = b.seed.EnsureEmailAction(ctx, b.userID, "Email me")
	require.NoError(t, err)
	b.monitor = b.newMonitor(t)
	return b
}

func (b *bundle) newMonitor(t *testing.T) *monitor.Monitor {
	t.Helper()
	monitors := app.NewMonitors(postgres.NewMonitorStore(b.pool, "test"), fallback.New(time.Now), time.Now, time.Second)
	m, err := monitors.Create(context.Background(), monitor.Draft{UserID: b.userID, Prompt: "price below 80",
		SourceURL: "https://shop.example/item", Interval: time.Minute})
	require.NoError(t, err)
	return m
}

func (b *bundle) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, b.pool.QueryRow(context.Background(), sql, args...).Scan(&n))
	return n
}

func TestCreateMonitorWritesOutboxEvent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM outbox WHERE type = $1 AND subject = $2`,
		event.TypeMonitorCreated, "vigil.monitors."+b.monitor.ID+".created"))
	got, err := postgres.NewMonitorStore(b.pool, "test").FindMonitorByID(context.Background(), b.monitor.ID)
	require.NoError(t, err)
	require.Equal(t, b.monitor.Spec, got.Spec)
	require.Equal(t, monitor.StateUnknown, got.State)
	require.Equal(t, time.Minute, got.Interval)

	_, err = postgres.NewMonitorStore(b.pool, "test").FindMonitorByID(context.Background(), "0190b6f0-0000-7000-8000-000000000000")
	require.True(t, errors.Is(err, domain.ErrNotFound), "missing monitor: %v", err)
}

// fakePublisher records what the scheduler publishes; fail makes it refuse, block makes it
// wait until released (a broker that does not answer).
type fakePublisher struct {
	mu    sync.Mutex
	evs   []event.Event
	fail  bool
	block chan struct{}
}

func (p *fakePublisher) Publish(ctx context.Context, ev event.Event) error {
	return p.PublishAll(ctx, []event.Event{ev})
}

func (p *fakePublisher) PublishAll(ctx context.Context, evs []event.Event) error {
	p.mu.Lock()
	block := p.block
	p.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail {
		return errors.New("nats: no responders available for request")
	}
	p.evs = append(p.evs, evs...)
	return nil
}

// published counts the EvaluationDue published per monitor.
func (p *fakePublisher) published() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]int{}
	for _, ev := range p.evs {
		out[ev.AggregateID()]++
	}
	return out
}

func TestClaimDue(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	store := postgres.NewMonitorStore(b.pool, "test")
	for i := 0; i < 9; i++ {
		b.newMonitor(t)
	}
	now := time.Now().Add(time.Second)

	// Concurrent schedulers never claim the same monitor twice.
	var (
		mu   sync.Mutex
		seen = map[string]int{}
		wg   sync.WaitGroup
	)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				due, err := store.ClaimDue(ctx, app.DueQuery{Now: now, Limit: 2})
				if err != nil || len(due) == 0 {
					return
				}
				mu.Lock()
				for _, d := range due {
					seen[d.ID]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	require.Len(t, seen, 10)
	for id, n := range seen {
		require.Equal(t, 1, n, "monitor %s claimed %d times", id, n)
	}
	require.Equal(t, 0, b.count(t, `SELECT count(*) FROM monitors WHERE next_run_at <= $1`, now))
	require.Equal(t, 10, b.count(t, `SELECT count(*) FROM monitors WHERE last_scheduled_for IS NOT NULL AND next_run_at > $1 AND next_run_at <= $1::timestamptz + interval '1 minute'`, now))
	require.Equal(t, 10, b.count(t, `SELECT count(*) FROM monitor_unpublished_slots s JOIN monitors m ON m.id = s.monitor_id WHERE s.claimed_at = $1 AND s.slot = m.last_scheduled_for`, now), "claimed, not yet published")

	// Claimed slots not marked published are found again, once they are old enough.
	got, err := store.Unpublished(ctx, now, 100)
	require.NoError(t, err)
	require.Empty(t, got)
	got, err = store.Unpublished(ctx, now.Add(time.Millisecond), 100)
	require.NoError(t, err)
	require.Len(t, got, 10)
	require.NoError(t, store.MarkPublished(ctx, got))
	require.Equal(t, 0, b.count(t, `SELECT count(*) FROM monitor_unpublished_slots`))

	// Claiming one monitor by id; the slot carries how its source is read.
	_, err = b.pool.Exec(ctx, `UPDATE monitors SET next_run_at = now() - interval '1 second', source_format = 'rss' WHERE id = $1`, b.monitor.ID)
	require.NoError(t, err)
	due, err := store.ClaimDue(ctx, app.DueQuery{Now: time.Now(), Limit: 1, MonitorID: b.monitor.ID})
	require.NoError(t, err)
	require.Len(t, due, 1)
	require.Equal(t, b.monitor.ID, due[0].ID)
	require.Equal(t, monitor.FormatRSS, due[0].Monitor.SourceFormat)
}

// TestClaimDueJitterAndNextDue: the next due time is the earliest active monitor's, and a
// claim with jitter delays each next run by less than the jitter from its place on the grid.
func TestClaimDueJitterAndNextDue(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	store := postgres.NewMonitorStore(b.pool, "test")
	for range 7 {
		b.newMonitor(t)
	}
	first := time.Now().Add(-time.Hour).Truncate(time.Microsecond)
	_, err := b.pool.Exec(ctx, `UPDATE monitors SET next_run_at = $2 WHERE id = $1`, b.monitor.ID, first)
	require.NoError(t, err)
	next, err := store.NextDue(ctx)
	require.NoError(t, err)
	require.True(t, next.Equal(first), "NextDue = %s, want the earliest next_run_at %s", next, first)

	now := time.Now().Add(2 * time.Minute) // every monitor is due
	const jitter = 20 * time.Second
	due, err := store.ClaimDue(ctx, app.DueQuery{Now: now, Limit: 100, Jitter: jitter})
	require.NoError(t, err)
	require.Len(t, due, 8)
	delayed := 0
	for _, d := range due {
		var got time.Time
		require.NoError(t, b.pool.QueryRow(ctx, `SELECT next_run_at FROM monitors WHERE id = $1`, d.ID).Scan(&got))
		grid := monitor.NextRun(d.ID, time.Minute, now)
		delay := got.Sub(grid)
		require.True(t, delay >= 0 && delay < jitter, "monitor %s: next run %s is %s from its grid time %s", d.ID, got, delay, grid)
		if delay > 0 {
			delayed++
		}
	}
	require.Greater(t, delayed, 4, "the jitter delays runs")

	_, err = b.pool.Exec(ctx, `UPDATE monitors SET status = 'paused'`)
	require.NoError(t, err)
	next, err = store.NextDue(ctx)
	require.NoError(t, err)
	require.True(t, next.IsZero(), "no active monitor: NextDue = %s, want zero", next)
}

// TestSchedulerBrokerOutage: with the broker down, or not answering, the scheduler claims
// and commits before it publishes, so edits of the due monitors never wait for it; the
// slots it could not publish are published when the broker is back, once each, and a
// monitor that was due several times meanwhile runs once.
func TestSchedulerBrokerOutage(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	store := postgres.NewMonitorStore(b.pool, "test")
	for i := 0; i < 4; i++ {
		b.newMonitor(t)
	}
	clock := &testClock{t: time.Now().Add(time.Second)}
	pub := &fakePublisher{block: make(chan struct{})}
	sched := app.NewScheduler(store, pub, clock.Now, app.SchedulerConfig{Batch: 100})

	// A broker that does not answer: the tick waits in its publish ...
	tickCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ticked := make(chan error, 1)
	go func() { _, err := sched.Tick(tickCtx); ticked <- err }()
	require.Eventually(t, func() bool {
		return b.count(t, `SELECT count(*) FROM monitor_unpublished_slots`) == 5
	}, 10*time.Second, 10*time.Millisecond)
	// ... and an edit of a claimed monitor goes through at once: no lock is held.
	err := postgres.InTx(ctx, b.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '200ms'`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE monitors SET name = 'Edited during the outage' WHERE id = $1`, b.monitor.ID)
		return err
	})
	require.NoError(t, err, "the edit must not wait for the scheduler's publish")

	// The publish fails; the slots stay claimed and unpublished.
	pub.mu.Lock()
	pub.fail = true
	close(pub.block)
	pub.block = nil
	pub.mu.Unlock()
	require.Error(t, <-ticked)
	require.Empty(t, pub.published())

	// The broker is down for longer than the monitors' interval: they are due again.
	clock.Add(2 * time.Minute)
	_, err = sched.Tick(ctx)
	require.Error(t, err)

	// Back: once the slots claimed last are old enough, one tick publishes each monitor's
	// latest slot, once.
	clock.Add(app.SchedulerRepublishAfter + time.Second)
	pub.mu.Lock()
	pub.fail = false
	pub.mu.Unlock()
	_, err = sched.Tick(ctx)
	require.NoError(t, err)
	got := pub.published()
	require.Len(t, got, 5, "every monitor runs after the outage: %v", got)
	for id, times := range got {
		require.Equal(t, 1, times, "monitor %s runs once, for its latest slot, not once per slot missed", id)
	}
	require.Equal(t, 0, b.count(t, `SELECT count(*) FROM monitor_unpublished_slots`))

	// And nothing is published again.
	_, err = sched.Tick(ctx)
	require.NoError(t, err)
	require.Equal(t, got, pub.published())
}

func completed(m *monitor.Monitor, slot time.Time, status monitor.EvaluationStatus, state monitor.State, price float64) event.EvaluationCompleted {
	ev := event.EvaluationCompleted{MonitorID: m.ID, ScheduledFor: slot, StartedAt: slot, FinishedAt: slot.Add(time.Second),
		Status: status, State: state, Attempt: 1, Usage: event.Usage{Provider: "fallback", Model: "rules-v1"}}
	if status == monitor.EvaluationSucceeded {
		ev.Facts = []monitor.Fact{monitor.NumberFact("price", price, "USD", slot)}
	} else {
		ev.Error = "The source answered 502 Bad Gateway."
	}
	return ev
}

func TestRecordEvaluation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	store := postgres.NewEvaluationStore(b.pool, "test")
	t0 := time.Now().UTC().Truncate(time.Minute)
	stateChanges := func() int {
		return b.count(t, `SELECT count(*) FROM outbox WHERE type = $1`, event.TypeStateChanged)
	}

	rec, err := recordEvaluation(ctx, store, completed(b.monitor, t0, monitor.EvaluationSucceeded, monitor.StateInactive, 100), 3)
	require.NoError(t, err)
	require.True(t, rec.Outcome.Changed)
	require.Equal(t, 1, stateChanges())

	// Redelivery of the same slot is a no-op.
	rec, err = recordEvaluation(ctx, store, completed(b.monitor, t0, monitor.EvaluationSucceeded, monitor.StateInactive, 100), 3)
	require.NoError(t, err)
	require.True(t, rec.Duplicate)
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM evaluations WHERE monitor_id = $1`, b.monitor.ID))
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM facts WHERE monitor_id = $1`, b.monitor.ID))

	// A newer slot flips the state; an older one arriving late is history only.
	rec, err = recordEvaluation(ctx, store, completed(b.monitor, t0.Add(2*time.Minute), monitor.EvaluationSucceeded, monitor.StateActive, 50), 3)
	require.NoError(t, err)
	require.True(t, rec.Outcome.Changed)
	rec, err = recordEvaluation(ctx, store, completed(b.monitor, t0.Add(time.Minute), monitor.EvaluationSucceeded, monitor.StateInactive, 90), 3)
	require.NoError(t, err)
	require.True(t, rec.Outcome.Stale)
	require.False(t, rec.Duplicate)
	require.Equal(t, 2, stateChanges())
	var state string
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT state FROM monitors WHERE id = $1`, b.monitor.ID).Scan(&state))
	require.Equal(t, "active", state)
	require.Equal(t, 3, b.count(t, `SELECT count(*) FROM evaluations WHERE monitor_id = $1`, b.monitor.ID))
	require.Equal(t, 2, b.count(t, `SELECT count(*) FROM evaluations WHERE monitor_id = $1 AND changed`, b.monitor.ID))

	// Failures keep the state; three in a row put the monitor in error.
	for i := 3; i < 6; i++ {
		_, err = recordEvaluation(ctx, store, completed(b.monitor, t0.Add(time.Duration(i)*time.Minute), monitor.EvaluationFailed, monitor.StateUnknown, 0), 3)
		require.NoError(t, err)
	}
	var status, lastError string
	var failures int
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT state, status, consecutive_failures, last_error FROM monitors WHERE id = $1`, b.monitor.ID).
		Scan(&state, &status, &failures, &lastError))
	require.Equal(t, []any{"active", "error", 3}, []any{state, status, failures})
	require.Contains(t, lastError, "502")
	require.Equal(t, 2, stateChanges())

	// A deleted monitor is reported as not found.
	_, err = b.pool.Exec(ctx, `DELETE FROM monitors WHERE id = $1`, b.monitor.ID)
	require.NoError(t, err)
	_, err = recordEvaluation(ctx, store, completed(b.monitor, t0.Add(time.Hour), monitor.EvaluationSucceeded, monitor.StateActive, 1), 3)
	require.True(t, errors.Is(err, domain.ErrNotFound), "%v", err)
}

func TestFireTriggers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	require.NoError(t, b.seed.EnsureTrigger(ctx, b.monitor.ID, b.actionID, "state_change", "once"))
	digestAction, err := b.seed.EnsureEmailAction(ctx, b.userID, "Digest")
	require.NoError(t, err)
	require.NoError(t, b.seed.EnsureTrigger(ctx, b.monitor.ID, digestAction, "becomes_active", "daily_digest"))
	inactiveAction, err := b.seed.EnsureEmailAction(ctx, b.userID, "Inactive only")
	require.NoError(t, err)
	require.NoError(t, b.seed.EnsureTrigger(ctx, b.monitor.ID, inactiveAction, "becomes_inactive", "every_time"))

	rec, err := recordEvaluation(ctx, postgres.NewEvaluationStore(b.pool, "test"),
		completed(b.monitor, time.Now().UTC(), monitor.EvaluationSucceeded, monitor.StateActive, 50), 3)
	require.NoError(t, err)
	sc := event.StateChanged{MonitorID: b.monitor.ID, UserID: b.userID, EvaluationID: rec.EvaluationID,
		From: monitor.StateInactive, To: monitor.StateActive, At: time.Now()}
	store := postgres.NewTriggerStore(b.pool, "test")

	ids := fireChanges(t, store, sc)
	require.Len(t, ids, 2, "state_change (once) and becomes_active (digest) fire; becomes_inactive does not")
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM notifications WHERE status = 'pending' AND recipient = 'ann@example.com'`))
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM notifications WHERE status = 'digest_pending'`))
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM outbox WHERE type = $1`, event.TypeNotificationRequested))
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM triggers WHERE frequency = 'once' AND NOT enabled AND fired_count = 1`))

	// Redelivery of the same StateChanged creates nothing.
	ids = fireChanges(t, store, sc)
	require.Empty(t, ids)
	require.Equal(t, 2, b.count(t, `SELECT count(*) FROM notifications`))
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM outbox WHERE type = $1`, event.TypeNotificationRequested))
}

// TestFireTriggersBatch: several changes of one monitor in one batch fire in order (a
// once trigger once), and a redelivered batch with a new change in it fires only the new one.
func TestFireTriggersBatch(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	require.NoError(t, b.seed.EnsureTrigger(ctx, b.monitor.ID, b.actionID, "state_change", "every_time"))
	onceAction, err := b.seed.EnsureEmailAction(ctx, b.userID, "Once")
	require.NoError(t, err)
	require.NoError(t, b.seed.EnsureTrigger(ctx, b.monitor.ID, onceAction, "state_change", "once"))
	evals := postgres.NewEvaluationStore(b.pool, "test")
	var changes []event.StateChanged
	from, slot := monitor.StateInactive, time.Now().UTC()
	for i, to := range []monitor.State{monitor.StateActive, monitor.StateInactive, monitor.StateActive} {
		rec, err := recordEvaluation(ctx, evals, completed(b.monitor, slot.Add(time.Duration(i)*time.Minute), monitor.EvaluationSucceeded, to, 50), 3)
		require.NoError(t, err)
		changes = append(changes, event.StateChanged{MonitorID: b.monitor.ID, UserID: b.userID, EvaluationID: rec.EvaluationID, From: from, To: to})
		from = to
	}
	store := postgres.NewTriggerStore(b.pool, "test")

	ids := fireChanges(t, store, changes[:2]...)
	require.Len(t, ids, 3, "every_time fires for both changes, once for the first only")
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM triggers WHERE frequency = 'every_time' AND fired_count = 2`))
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM triggers WHERE frequency = 'once' AND fired_count = 1 AND NOT enabled`))
	require.Equal(t, 3, b.count(t, `SELECT count(*) FROM outbox WHERE type = $1`, event.TypeNotificationRequested))

	ids = fireChanges(t, store, changes...)
	require.Len(t, ids, 1, "only the change not seen before fires")
	require.Equal(t, 4, b.count(t, `SELECT count(*) FROM notifications`))
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM triggers WHERE frequency = 'every_time' AND fired_count = 3`))
	require.Equal(t, 4, b.count(t, `SELECT count(*) FROM outbox WHERE type = $1`, event.TypeNotificationRequested))
}

func TestClaimDueFollowsCron(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	store := postgres.NewMonitorStore(b.pool, "test")
	m := monitor.New("0192f000-0000-7000-8000-0000000000c1", monitor.Draft{UserID: b.userID, Prompt: "price below 80",
		SourceURL: "https://shop.example/item", Cron: "0 9 * * *", Timezone: "America/New_York"}, b.monitor.Spec, monitor.ClassifiedBy{}, time.Now())
	require.NoError(t, store.CreateMonitor(ctx, m, app.TriggerPlan{}))
	got, err := store.FindMonitorByID(ctx, m.ID)
	require.NoError(t, err)
	require.Equal(t, "0 9 * * *", got.Cron)
	require.Equal(t, 24*time.Hour, got.Interval)

	now := time.Now().Add(time.Second)
	_, err = store.ClaimDue(ctx, app.DueQuery{Now: now, Limit: 1, MonitorID: m.ID})
	require.NoError(t, err)
	var next time.Time
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT next_run_at FROM monitors WHERE id = $1`, m.ID).Scan(&next))
	ny, _ := time.LoadLocation("America/New_York")
	require.Equal(t, 9, next.In(ny).Hour(), "next run at 09:00 New York time, got %s", next.In(ny))
	require.True(t, next.After(now) && next.Before(now.Add(25*time.Hour)))
}

// TestFireTriggersPerRecipient: an email action with several addresses makes one
// notification each; an address other than the account's own is held back (suppressed,
// with the reason) until it confirmed, and is sent to once it has.
func TestFireTriggersPerRecipient(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	_, err := b.pool.Exec(ctx, `UPDATE actions SET config = '{"to":["ann@example.com","carol@example.com","dan@example.com"]}' WHERE id = $1`, b.actionID)
	require.NoError(t, err)
	_, err = b.pool.Exec(ctx, `INSERT INTO email_recipients (user_id, email, confirmed_at) VALUES ($1, 'carol@example.com', now()), ($1, 'dan@example.com', NULL)`, b.userID)
	require.NoError(t, err)
	require.NoError(t, b.seed.EnsureTrigger(ctx, b.monitor.ID, b.actionID, "becomes_active", "every_time"))

	rec, err := recordEvaluation(ctx, postgres.NewEvaluationStore(b.pool, "test"),
		completed(b.monitor, time.Now().UTC(), monitor.EvaluationSucceeded, monitor.StateActive, 50), 3)
	require.NoError(t, err)
	sc := event.StateChanged{MonitorID: b.monitor.ID, UserID: b.userID, EvaluationID: rec.EvaluationID,
		From: monitor.StateUnknown, To: monitor.StateActive, At: time.Now()}
	store := postgres.NewTriggerStore(b.pool, "test")
	ids := fireChanges(t, store, sc)
	require.Len(t, ids, 3)
	require.Equal(t, 2, b.count(t, `SELECT count(*) FROM notifications WHERE status = 'pending' AND recipient IN ('ann@example.com', 'carol@example.com')`))
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM notifications WHERE status = 'suppressed' AND recipient = 'dan@example.com'
		AND last_error LIKE '%not confirmed%'`))
	require.Equal(t, 2, b.count(t, `SELECT count(*) FROM outbox WHERE type = $1`, event.TypeNotificationRequested), "nothing is requested for dan")
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM triggers WHERE id IN (SELECT trigger_id FROM notifications) AND fired_count = 1`))

	// Redelivered: nothing new, for any recipient.
	ids = fireChanges(t, store, sc)
	require.Empty(t, ids)
	require.Equal(t, 3, b.count(t, `SELECT count(*) FROM notifications`))
}

// TestRecordEvaluationConfirm: with confirm 2 the recorder keeps the streak on the monitor
// row and flips the state, with one StateChanged, only on the second agreeing evaluation.
func TestRecordEvaluationConfirm(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	_, err := b.pool.Exec(ctx, `UPDATE monitors SET confirm = 2 WHERE id = $1`, b.monitor.ID)
	require.NoError(t, err)
	store := postgres.NewEvaluationStore(b.pool, "test")
	t0 := time.Now().UTC()
	for i, want := range []struct {
		state   monitor.State
		pending int
	}{{monitor.StateUnknown, 1}, {monitor.StateActive, 0}, {monitor.StateActive, 0}} {
		rec, err := recordEvaluation(ctx, store, completed(b.monitor, t0.Add(time.Duration(i)*time.Minute), monitor.EvaluationSucceeded, monitor.StateActive, 50), 3)
		require.NoError(t, err)
		require.Equal(t, i == 1, rec.Outcome.Changed, "evaluation %d", i+1)
		require.Equal(t, 1, b.count(t, `SELECT count(*) FROM monitors WHERE id = $1 AND state = $2 AND pending_count = $3`,
			b.monitor.ID, want.state, want.pending), "after evaluation %d", i+1)
	}
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM outbox WHERE type = $1`, event.TypeStateChanged))
}

// TestUserEditsDoNotUndoThePipeline: a PATCH reads the monitor, the recorder moves its
// state, then the PATCH writes. The edit must not put the old state back, or the next
// evaluation would report the same change again (and alert twice). Seven real changes give
// seven StateChanged and six notifications, with a stale edit between every two
// evaluations, and then with edits racing evaluations. (The trigger fires on active <->
// inactive, so the first change, from unknown, notifies no one.)
func TestUserEditsDoNotUndoThePipeline(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	require.NoError(t, b.seed.EnsureTrigger(ctx, b.monitor.ID, b.actionID, "state_change", "every_time"))
	monitors := postgres.NewMonitorStore(b.pool, "test")
	evals := postgres.NewEvaluationStore(b.pool, "test")
	triggers := postgres.NewTriggerStore(b.pool, "test")
	edit := func(m *monitor.Monitor, name string) {
		t.Helper()
		c := monitor.Changes{Name: &name}
		stored := m.Version
		edited, err := m.Edit(m.Draft(c), c, nil, monitor.ClassifiedBy{}, time.Now().UTC())
		require.NoError(t, err)
		require.NoError(t, monitors.UpdateMonitor(ctx, m, stored, edited))
	}
	record := func(state monitor.State) {
		t.Helper()
		b.slot = b.slot.Add(time.Minute)
		rec, err := recordEvaluation(ctx, evals, completed(b.monitor, b.slot, monitor.EvaluationSucceeded, state, 50), 3)
		require.NoError(t, err)
		if rec.Outcome.Changed {
			fireChanges(t, triggers, event.StateChanged{MonitorID: b.monitor.ID, UserID: b.userID, EvaluationID: rec.EvaluationID,
				From: rec.Outcome.From, To: rec.Outcome.To})
		}
	}
	states := []monitor.State{monitor.StateInactive, monitor.StateActive}

	record(monitor.StateActive) // unknown -> active
	for i := range 6 {
		stale, err := monitors.GetMonitor(ctx, b.userID, b.monitor.ID)
		require.NoError(t, err)
		record(states[i%2]) // the state moves after the edit read the row ...
		edit(stale, fmt.Sprintf("Edited %d", i))
		require.Equal(t, states[i%2], stale.State, "the edit answers with the state the recorder wrote")
		record(states[i%2]) // ... and the same state again is no change
	}
	require.Equal(t, 7, b.count(t, `SELECT count(*) FROM outbox WHERE type = $1`, event.TypeStateChanged))
	require.Equal(t, 6, b.count(t, `SELECT count(*) FROM notifications WHERE monitor_id = $1`, b.monitor.ID),
		"state_change fires on active <-> inactive, not on the first unknown -> active")

	// The same with edits racing evaluations.
	stop := make(chan struct{})
	edits := make(chan int, 1)
	go func() {
		n := 0
		defer func() { edits <- n }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			m, err := monitors.GetMonitor(ctx, b.userID, b.monitor.ID)
			if err != nil {
				return
			}
			name := fmt.Sprintf("Racing %d", n)
			c := monitor.Changes{Name: &name}
			stored := m.Version
			edited, err := m.Edit(m.Draft(c), c, nil, monitor.ClassifiedBy{}, time.Now().UTC())
			if err == nil && monitors.UpdateMonitor(ctx, m, stored, edited) == nil {
				n++
			}
		}
	}()
	for i := range 8 { // the state is active: inactive, active, ... are eight changes
		record(states[i%2])
		record(states[i%2])
	}
	close(stop)
	require.Positive(t, <-edits, "the editor ran")
	require.Equal(t, 15, b.count(t, `SELECT count(*) FROM outbox WHERE type = $1`, event.TypeStateChanged))
	require.Equal(t, 14, b.count(t, `SELECT count(*) FROM notifications WHERE monitor_id = $1`, b.monitor.ID))
}

// recordEvaluation records one evaluation as the recorder does, deciding with
// app.PlanRecording; a monitor that is gone is ENOTFOUND.
func recordEvaluation(ctx context.Context, store *postgres.EvaluationStore, ev event.EvaluationCompleted, maxFailures int) (app.Recording, error) {
	evs := []event.EvaluationCompleted{ev}
	plan, err := store.RecordEvaluations(ctx, evs, func(st app.RecordState) (app.RecordPlan, error) {
		return app.PlanRecording(evs, st, app.RecordLimits{MaxFailures: maxFailures}, func() (string, error) { return uuid.NewString(), nil })
	})
	if err != nil {
		return app.Recording{}, err
	}
	if plan.Recordings[0].Missing {
		return plan.Recordings[0], domain.ErrNotFound
	}
	return plan.Recordings[0], nil
}

// TestRecordEvaluationsBatch: one transaction records evaluations of several monitors with
// their facts, moves each monitor once, reports the evaluation of a deleted monitor as
// missing, and the same batch redelivered changes nothing.
func TestRecordEvaluationsBatch(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	other, gone := b.newMonitor(t), b.newMonitor(t)
	_, err := b.pool.Exec(ctx, `DELETE FROM monitors WHERE id = $1`, gone.ID)
	require.NoError(t, err)
	store := postgres.NewEvaluationStore(b.pool, "test")
	t0 := time.Now().UTC().Truncate(time.Minute)
	evs := []event.EvaluationCompleted{
		completed(b.monitor, t0, monitor.EvaluationSucceeded, monitor.StateActive, 70),
		completed(b.monitor, t0.Add(time.Minute), monitor.EvaluationSucceeded, monitor.StateInactive, 90),
		completed(other, t0, monitor.EvaluationSucceeded, monitor.StateActive, 75),
		completed(gone, t0, monitor.EvaluationSucceeded, monitor.StateActive, 60),
	}
	decide := func(st app.RecordState) (app.RecordPlan, error) {
		return app.PlanRecording(evs, st, app.RecordLimits{MaxFailures: 3}, func() (string, error) { return uuid.NewString(), nil })
	}
	plan, err := store.RecordEvaluations(ctx, evs, decide)
	require.NoError(t, err)
	require.True(t, plan.Recordings[3].Missing)
	require.Equal(t, 3, b.count(t, `SELECT count(*) FROM evaluations`))
	require.Equal(t, 3, b.count(t, `SELECT count(*) FROM facts`))
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM facts f JOIN evaluations e ON e.id = f.evaluation_id
		WHERE e.monitor_id = $1 AND e.scheduled_for = $2 AND f.value_number = 90`, b.monitor.ID, t0.Add(time.Minute)))
	require.Equal(t, 3, b.count(t, `SELECT count(*) FROM outbox WHERE type = $1`, event.TypeStateChanged),
		"unknown -> active -> inactive, and unknown -> active")
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM monitors WHERE id = $1 AND state = 'inactive' AND last_evaluation_for = $2
		AND state_changed_at IS NOT NULL`, b.monitor.ID, t0.Add(time.Minute)))
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM monitors WHERE id = $1 AND state = 'active'`, other.ID))

	again, err := store.RecordEvaluations(ctx, evs, decide)
	require.NoError(t, err)
	for i, r := range again.Recordings[:3] {
		require.True(t, r.Duplicate, "evaluation %d redelivered", i)
	}
	require.Equal(t, 3, b.count(t, `SELECT count(*) FROM evaluations`))
	require.Equal(t, 3, b.count(t, `SELECT count(*) FROM facts`))
	require.Equal(t, 3, b.count(t, `SELECT count(*) FROM outbox WHERE type = $1`, event.TypeStateChanged))
}

// TestClaimDueCarriesWhatTheEvaluatorNeeds: a claimed slot carries the monitor's spec,
// version, source and its newest success (written by the recorder), so the evaluator reads
// nothing.
func TestClaimDueCarriesWhatTheEvaluatorNeeds(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	store := postgres.NewMonitorStore(b.pool, "test")
	now := time.Now().Add(time.Second)
	due, err := store.ClaimDue(ctx, app.DueQuery{Now: now, Limit: 1, MonitorID: b.monitor.ID})
	require.NoError(t, err)
	require.Len(t, due, 1)
	dm := due[0].Monitor
	require.Equal(t, b.userID, dm.UserID)
	require.Equal(t, b.monitor.Version, dm.Version)
	spec, prev, err := dm.Decode()
	require.NoError(t, err)
	require.Equal(t, b.monitor.Spec.Kind, spec.Kind)
	require.Equal(t, b.monitor.Spec.Condition, spec.Condition)
	require.Equal(t, "https://shop.example/item", dm.SourceURL)
	require.Nil(t, prev, "no success yet")

	ev := completed(b.monitor, due[0].Slot, monitor.EvaluationSucceeded, monitor.StateActive, 70)
	ev.SourceHash, ev.Explanation, ev.MonitorVersion = "sha256:abc", "The price is 70.", b.monitor.Version
	_, err = recordEvaluation(ctx, postgres.NewEvaluationStore(b.pool, "test"), ev, 3)
	require.NoError(t, err)
	failed := completed(b.monitor, due[0].Slot.Add(time.Minute), monitor.EvaluationFailed, "", 0)
	_, err = recordEvaluation(ctx, postgres.NewEvaluationStore(b.pool, "test"), failed, 3)
	require.NoError(t, err)

	_, err = b.pool.Exec(ctx, `UPDATE monitors SET next_run_at = now() - interval '1 second' WHERE id = $1`, b.monitor.ID)
	require.NoError(t, err)
	due, err = store.ClaimDue(ctx, app.DueQuery{Now: time.Now(), Limit: 1, MonitorID: b.monitor.ID})
	require.NoError(t, err)
	require.Len(t, due, 1)
	_, prev, err = due[0].Monitor.Decode()
	require.NoError(t, err)
	require.NotNil(t, prev, "a failure since does not erase the last success")
	require.Equal(t, "sha256:abc", prev.SourceHash)
	require.Equal(t, monitor.StateActive, prev.State)
	require.Equal(t, "The price is 70.", prev.Explanation)
	require.Len(t, prev.Facts, 1)
	require.Equal(t, 70.0, *prev.Facts[0].Number)
}

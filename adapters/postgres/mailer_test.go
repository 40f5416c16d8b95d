package postgres_test

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/keyring"
	"github.com/vigilhq/vigil/adapters/postgres"
	"github.com/vigilhq/vigil/adapters/smtp"
	"github.com/vigilhq/vigil/adapters/smtp/smtptest"
	"github.com/vigilhq/vigil/adapters/source"
	"github.com/vigilhq/vigil/adapters/tokens"
	"github.com/vigilhq/vigil/adapters/webhook"
	"github.com/vigilhq/vigil/domain/app"
	"github.com/vigilhq/vigil/domain/event"
	"github.com/vigilhq/vigil/domain/monitor"
	"github.com/vigilhq/vigil/emailtpl"
)

type mailerBundle struct {
	*bundle
	smtp   *smtptest.Server
	mailer *app.Mailer
	store  *postgres.NotificationStore
	clock  *testClock
	box    *keyring.Keyring
	// requested is the last outbox row handled by deliverRequested.
	requested int64
}

// testClock is a clock the test moves.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// testSchedule is a shortened retry schedule: six attempts over 28 simulated minutes.
var testSchedule = []time.Duration{time.Minute, 2 * time.Minute, 3 * time.Minute, 5 * time.Minute, 8 * time.Minute, 10 * time.Minute}

// setupMailer creates a pending notification for an inactive -> active change and a
// mailer wired to a recording SMTP server and a webhook sender allowed to call loopback
// test servers. It returns the notification id.
func setupMailer(t *testing.T) (*mailerBundle, string) {
	t.Helper()
	b := setup(t)
	ctx := context.Background()
	require.NoError(t, b.seed.EnsureTrigger(ctx, b.monitor.ID, b.actionID, "state_change", "every_time"))
	ids := fire(t, b, monitor.StateInactive, monitor.StateActive, 42.5)
	require.Len(t, ids, 1)
	return newMailerBundle(t, b, source.Config{AllowPrivate: true}), ids[0]
}

func newMailerBundle(t *testing.T, b *bundle, guard source.Config) *mailerBundle {
	t.Helper()
	srv := smtptest.Start(t)
	renderer, err := emailtpl.New()
	require.NoError(t, err)
	sender, err := smtp.NewSender(smtp.Config{URL: srv.URL(), From: "Vigil <vigil@example.com>", Timeout: 5 * time.Second})
	require.NoError(t, err)
	signer, err := tokens.NewUnsubscribe(bytes.Repeat([]byte("k"), 32))
	require.NoError(t, err)
	links, err := tokens.NewLinks(bytes.Repeat([]byte("l"), 32))
	require.NoError(t, err)
	box, err := keyring.New([]keyring.Key{{ID: "test", Secret: bytes.Repeat([]byte{7}, keyring.KeySize)}})
	require.NoError(t, err)
	clock := &testClock{t: time.Now().UTC()}
	store := postgres.NewNotificationStore(b.pool, box, "test")
	senders := map[string]app.NotificationSender{
		app.ChannelEmail:   smtp.NewNotifier(renderer, sender, tokens.NewPageLinks(links, signer, "https://vigil.example", clock.Now)),
		app.ChannelWebhook: webhook.New(webhook.Config{BaseURL: "https://vigil.example", Guard: guard, Timeout: 2 * time.Second, Now: clock.Now}),
	}
	mailer := app.NewMailer(store, senders, clock.Now, app.MailerConfig{Lease: time.Minute, Schedule: testSchedule})
	return &mailerBundle{bundle: b, smtp: srv, mailer: mailer, store: store, clock: clock, box: box}
}

// fire records an evaluation that moves the monitor from -> to and fires its triggers.
func fire(t *testing.T, b *bundle, from, to monitor.State, price float64) []string {
	t.Helper()
	ctx := context.Background()
	b.slot = b.slot.Add(time.Minute)
	rec, err := recordEvaluation(ctx, postgres.NewEvaluationStore(b.pool, "test"), completed(b.monitor, b.slot, monitor.EvaluationSucceeded, to, price), 3)
	require.NoError(t, err)
	return fireChanges(t, postgres.NewTriggerStore(b.pool, "test"), event.StateChanged{MonitorID: b.monitor.ID,
		UserID: b.userID, EvaluationID: rec.EvaluationID, From: from, To: to})
}

// fireChanges fires the triggers of the changes in one batch, deciding as the matcher does,
// and returns the ids of the notifications created.
func fireChanges(t *testing.T, store *postgres.TriggerStore, changes ...event.StateChanged) []string {
	t.Helper()
	ids, err := store.FireTriggers(context.Background(), changes, func(st app.FiringState) (app.FiringPlan, error) {
		return app.PlanFiring(changes, st, time.Now().UTC(), func() (string, error) { return uuid.NewString(), nil })
	})
	require.NoError(t, err)
	return ids
}

// deliverRequested plays the relay and the mailer's consumer: it delivers every
// notification requested through the outbox since the last call, and returns how many.
func (mb *mailerBundle) deliverRequested(t *testing.T) int {
	t.Helper()
	ctx := context.Background()
	rows, err := mb.pool.Query(ctx, `SELECT id, payload FROM outbox WHERE type = $1 AND id > $2 ORDER BY id`,
		event.TypeNotificationRequested, mb.requested)
	require.NoError(t, err)
	type req struct {
		id      int64
		payload []byte
	}
	reqs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (req, error) {
		var q req
		return q, r.Scan(&q.id, &q.payload)
	})
	require.NoError(t, err)
	for _, q := range reqs {
		var nr event.NotificationRequested
		require.NoError(t, json.Unmarshal(q.payload, &nr))
		_, err := mb.mailer.Deliver(ctx, nr.NotificationID)
		require.NoError(t, err)
		mb.requested = q.id
	}
	return len(reqs)
}

func TestMailerSendsOnce(t *testing.T) {
	t.Parallel()
	mb, id := setupMailer(t)
	ctx := context.Background()
	r, err := mb.mailer.Deliver(ctx, id)
	require.NoError(t, err)
	require.Equal(t, app.StatusSent, r.Decision.Status)
	r, err = mb.mailer.Deliver(ctx, id)
	require.NoError(t, err, "a redelivered request is a no-op")
	require.Nil(t, r)
	msgs := mb.smtp.Messages()
	require.Len(t, msgs, 1)
	require.Equal(t, []string{"ann@example.com"}, msgs[0].To)
	require.Contains(t, msgs[0].Text, "42.5")
	require.Contains(t, msgs[0].Header.Get("List-Unsubscribe"), "https://vigil.example/unsubscribe?token=")
	require.Equal(t, "List-Unsubscribe=One-Click", msgs[0].Header.Get("List-Unsubscribe-Post"))
	require.Equal(t, "auto-generated", msgs[0].Header.Get("Auto-Submitted"))
	require.Contains(t, msgs[0].Text, "View monitor: https://vigil.example/m/"+mb.monitor.ID+"?t=", "a page, not the JSON API")
	require.Contains(t, msgs[0].Text, "Manage notifications: https://vigil.example/settings?t=")
	require.NotEmpty(t, msgs[0].Header.Get("List-Id"))
	require.Equal(t, "<"+id+"@vigil>", msgs[0].Header.Get("Message-Id"), "deterministic per notification")
	require.Equal(t, 1, mb.count(t, `SELECT count(*) FROM notifications WHERE id = $1 AND status = 'sent' AND attempts = 1
		AND sent_at IS NOT NULL AND next_attempt_at IS NULL`, id))
	require.Equal(t, 1, mb.count(t, `SELECT count(*) FROM notification_attempts WHERE notification_id = $1 AND attempt = 1
		AND outcome = 'delivered' AND code = 250`, id))
}

// TestMailerSMTPOutage: the relay answers 451 for ten simulated minutes, then recovers.
// Every notification is delivered exactly once, none is left owed, and each failed attempt
// is recorded with the relay's answer.
func TestMailerSMTPOutage(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	for _, name := range []string{"Email me", "Second", "Third"} {
		action, err := b.seed.EnsureEmailAction(ctx, b.userID, name)
		require.NoError(t, err)
		require.NoError(t, b.seed.EnsureTrigger(ctx, b.monitor.ID, action, "state_change", "every_time"))
	}
	ids := fire(t, b, monitor.StateInactive, monitor.StateActive, 42.5)
	require.Len(t, ids, 3)
	mb := newMailerBundle(t, b, source.Config{AllowPrivate: true})
	mb.smtp.RejectAll(451, "4.3.0 relay overloaded, try later")

	start := mb.clock.Now()
	require.Equal(t, 3, mb.deliverRequested(t), "the matcher's own requests")
	for elapsed := time.Duration(0); elapsed < 40*time.Minute; elapsed += 30 * time.Second {
		if elapsed >= 10*time.Minute {
			mb.smtp.RejectAll(0, "")
		}
		mb.clock.Add(30 * time.Second)
		_, err := mb.mailer.RequestDue(ctx, 100)
		require.NoError(t, err)
		mb.deliverRequested(t)
	}
	require.Equal(t, 3, mb.count(t, `SELECT count(*) FROM notifications WHERE id = ANY($1) AND status = 'sent'`, ids), "none stuck")
	msgs := mb.smtp.Messages()
	require.Len(t, msgs, 3, "each delivered exactly once")
	seen := map[string]bool{}
	for _, m := range msgs {
		seen[m.Header.Get("Message-Id")] = true
	}
	require.Len(t, seen, 3)
	// Attempts at 0, 1, 3 and 6 minutes failed; the one at 11 minutes, after the outage, got through.
	var failed, delivered int
	require.NoError(t, mb.pool.QueryRow(ctx, `
		SELECT count(*) FILTER (WHERE outcome = 'retry' AND code = 451 AND detail LIKE '%relay overloaded%'),
		       count(*) FILTER (WHERE outcome = 'delivered')
		FROM notification_attempts WHERE notification_id = ANY($1)`, ids).Scan(&failed, &delivered))
	require.Equal(t, 3*4, failed)
	require.Equal(t, 3, delivered)
	var last time.Time
	require.NoError(t, mb.pool.QueryRow(ctx, `SELECT max(finished_at) FROM notification_attempts WHERE outcome = 'delivered'`).Scan(&last))
	require.WithinDuration(t, start.Add(11*time.Minute), last, time.Minute)
}

// TestMailerGivesUp: with the relay down for longer than the schedule, the notification
// ends failed, saying so, after one attempt per step of the schedule and one more.
func TestMailerGivesUp(t *testing.T) {
	t.Parallel()
	mb, id := setupMailer(t)
	ctx := context.Background()
	mb.smtp.RejectAll(421, "4.4.2 service not available")
	mb.deliverRequested(t)
	for i := 0; i < 80; i++ {
		mb.clock.Add(30 * time.Second)
		_, err := mb.mailer.RequestDue(ctx, 100)
		require.NoError(t, err)
		mb.deliverRequested(t)
	}
	var status, lastError string
	require.NoError(t, mb.pool.QueryRow(ctx, `SELECT status, last_error FROM notifications WHERE id = $1`, id).Scan(&status, &lastError))
	require.Equal(t, "failed", status)
	require.Contains(t, lastError, "Gave up after 7 attempts")
	require.Equal(t, len(testSchedule)+1, mb.count(t, `SELECT count(*) FROM notification_attempts WHERE notification_id = $1`, id))
	require.Empty(t, mb.smtp.Messages())
}

// TestMailerRequestsLostNotifications: a notification whose request never reached the
// mailer (a dead letter, a lost message) is requested again by the sweeper.
func TestMailerRequestsLostNotifications(t *testing.T) {
	t.Parallel()
	mb, id := setupMailer(t)
	ctx := context.Background()
	_, err := mb.pool.Exec(ctx, `DELETE FROM outbox`)
	require.NoError(t, err)
	n, err := mb.mailer.RequestDue(ctx, 100)
	require.NoError(t, err)
	require.Zero(t, n, "not before its grace period: its own request may still be on the way")
	mb.clock.Add(3 * time.Minute)
	n, err = mb.mailer.RequestDue(ctx, 100)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	n, err = mb.mailer.RequestDue(ctx, 100)
	require.NoError(t, err)
	require.Zero(t, n, "requested once per grace period")
	require.Equal(t, 1, mb.deliverRequested(t))
	require.Len(t, mb.smtp.Messages(), 1)
	require.Equal(t, 1, mb.count(t, `SELECT count(*) FROM notifications WHERE id = $1 AND status = 'sent'`, id))
}

func TestMailerFailures(t *testing.T) {
	t.Parallel()
	mb, id := setupMailer(t)
	ctx := context.Background()

	mb.smtp.RejectNext(451, "try later")
	r, err := mb.mailer.Deliver(ctx, id)
	require.NoError(t, err, "a transient failure is recorded and retried on the schedule, not by redelivery")
	require.Equal(t, app.StatusPending, r.Decision.Status)
	require.Equal(t, 451, r.Attempt.Code)
	require.Equal(t, 1, mb.count(t, `SELECT count(*) FROM notifications WHERE id = $1 AND status = 'pending' AND last_error LIKE '%451%'
		AND next_attempt_at > now()`, id))

	// Another mailer holding a fresh claim: this one leaves it alone, and the request is
	// settled; the sweeper asks again when the other's lease is over.
	claims, err := mb.store.ClaimNotifications(ctx, []string{id}, mb.clock.Now(), time.Minute)
	require.NoError(t, err)
	require.NoError(t, claims[0].Err)
	r, err = mb.mailer.Deliver(ctx, id)
	require.NoError(t, err)
	require.Nil(t, r, "nothing attempted while another mailer holds it")
	require.Empty(t, mb.smtp.Messages())
	require.Equal(t, 1, mb.count(t, `SELECT count(*) FROM notifications WHERE id = $1 AND status = 'sending' AND attempts = 2
		AND next_attempt_at = $2`, id, mb.clock.Now().Add(time.Minute)), "due again when the lease ends")
	// ... until its lease expires: that mailer died, the notification is taken over.
	_, err = mb.pool.Exec(ctx, `UPDATE notifications SET updated_at = $2 WHERE id = $1`, id, mb.clock.Now().Add(-2*time.Minute))
	require.NoError(t, err)

	// 550 for the recipient: failed for good, and the address is suppressed.
	mb.smtp.RejectNext(550, "5.1.1 no such user")
	r, err = mb.mailer.Deliver(ctx, id)
	require.NoError(t, err)
	require.Equal(t, app.StatusFailed, r.Decision.Status)
	require.Equal(t, 1, mb.count(t, `SELECT count(*) FROM notifications WHERE id = $1 AND status = 'failed' AND attempts = 3
		AND last_error LIKE '%550%' AND next_attempt_at IS NULL`, id))
	require.Equal(t, 1, mb.count(t, `SELECT count(*) FROM email_suppressions WHERE email = 'ann@example.com' AND reason = 'bounce'`))
	r, err = mb.mailer.Deliver(ctx, id)
	require.NoError(t, err)
	require.Nil(t, r, "a failed notification is not retried")
	require.Empty(t, mb.smtp.Messages())
	n, err := mb.mailer.RequestDue(ctx, 100)
	require.NoError(t, err)
	require.Zero(t, n)
}

func TestMailerRespectsUnsubscribe(t *testing.T) {
	t.Parallel()
	mb, id := setupMailer(t)
	ctx := context.Background()
	require.NoError(t, postgres.NewUserStore(mb.pool).Unsubscribe(ctx, mb.userID, "ANN@example.com"))
	r, err := mb.mailer.Deliver(ctx, id)
	require.NoError(t, err)
	require.NotNil(t, r, "the suppression is reported")
	require.Equal(t, app.SuppressedUnsubscribed, *r.Suppressed)
	require.Equal(t, app.ChannelEmail, r.Channel)
	r, err = mb.mailer.Deliver(ctx, id)
	require.NoError(t, err)
	require.Nil(t, r, "once")
	require.Empty(t, mb.smtp.Messages())
	require.Equal(t, 1, mb.count(t, `SELECT count(*) FROM notifications WHERE id = $1 AND status = 'suppressed'`, id))

	// An address that is not the user's own goes on the suppression list instead.
	require.NoError(t, postgres.NewUserStore(mb.pool).Unsubscribe(ctx, mb.userID, "team@example.com"))
	require.Equal(t, 1, mb.count(t, `SELECT count(*) FROM email_suppressions WHERE email = 'team@example.com' AND reason = 'unsubscribe'`))
}

// TestMonitorFailingTellsTheOwner puts a monitor in error with failed evaluations and checks
// that its owner gets one "checks are failing" email with the last error.
func TestMonitorFailingTellsTheOwner(t *testing.T) {
	t.Parallel()
	mb, _ := setupMailer(t)
	ctx := context.Background()
	store := postgres.NewEvaluationStore(mb.pool, "test")
	t0 := time.Now().UTC().Add(time.Hour)
	for i := 0; i < 4; i++ { // the fourth failure finds the monitor already in error
		_, err := recordEvaluation(ctx, store, completed(mb.monitor, t0.Add(time.Duration(i)*time.Minute), monitor.EvaluationFailed, monitor.StateUnknown, 0), 3)
		require.NoError(t, err)
	}
	var id string
	require.NoError(t, mb.pool.QueryRow(ctx, `SELECT id FROM notifications WHERE kind = 'monitor_failing' AND monitor_id = $1`, mb.monitor.ID).Scan(&id))
	require.Equal(t, 1, mb.count(t, `SELECT count(*) FROM outbox WHERE type = $1 AND event_id = $2`, event.TypeNotificationRequested, "notification:"+id))

	_, err := mb.mailer.Deliver(ctx, id)
	require.NoError(t, err)
	msgs := mb.smtp.Messages()
	require.Len(t, msgs, 1)
	require.Contains(t, msgs[0].Subject, "checks are failing")
	require.Contains(t, msgs[0].Text, "The last 4 checks failed") // the count when the email is sent
	require.Contains(t, msgs[0].Text, "502 Bad Gateway")
	require.Equal(t, []string{"ann@example.com"}, msgs[0].To)
}

package postgres_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/postgres"
	"github.com/vigilhq/vigil/adapters/smtp"
	"github.com/vigilhq/vigil/adapters/smtp/smtptest"
	"github.com/vigilhq/vigil/adapters/tokens"
	"github.com/vigilhq/vigil/domain"
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
}

// setupMailer creates a pending notification for an inactive -> active change and a
// mailer wired to a recording SMTP server. It returns the notification id.
func setupMailer(t *testing.T) (*mailerBundle, string) {
	t.Helper()
	b := setup(t)
	ctx := context.Background()
	require.NoError(t, b.seed.EnsureTrigger(ctx, b.monitor.ID, b.actionID, "state_change", "every_time"))
	rec, err := postgres.NewEvaluationStore(b.pool, "test").RecordEvaluation(ctx,
		completed(b.monitor, time.Now().UTC(), monitor.EvaluationSucceeded, monitor.StateActive, 42.5), 3)
	require.NoError(t, err)
	ids, err := postgres.NewTriggerStore(b.pool, "test").FireTriggers(ctx, event.StateChanged{MonitorID: b.monitor.ID,
		UserID: b.userID, EvaluationID: rec.EvaluationID, From: monitor.StateInactive, To: monitor.StateActive}, time.Now())
	require.NoError(t, err)
	require.Len(t, ids, 1)

	srv := smtptest.Start(t)
	renderer, err := emailtpl.New()
	require.NoError(t, err)
	sender, err := smtp.NewSender(smtp.Config{URL: srv.URL(), From: "Vigil <vigil@example.com>", Timeout: 5 * time.Second})
	require.NoError(t, err)
	signer, err := tokens.NewUnsubscribe(bytes.Repeat([]byte("k"), 32))
	require.NoError(t, err)
	store := postgres.NewNotificationStore(b.pool)
	mailer := app.NewMailer(store, smtp.NewNotifier(renderer, sender, "https://vigil.example", signer), time.Now, time.Minute)
	return &mailerBundle{bundle: b, smtp: srv, mailer: mailer, store: store}, ids[0]
}

func TestMailerSendsOnce(t *testing.T) {
	t.Parallel()
	mb, id := setupMailer(t)
	ctx := context.Background()
	require.NoError(t, mb.mailer.Deliver(ctx, id))
	require.NoError(t, mb.mailer.Deliver(ctx, id), "a redelivered request is a no-op")
	msgs := mb.smtp.Messages()
	require.Len(t, msgs, 1)
	require.Equal(t, []string{"ann@example.com"}, msgs[0].To)
	require.Contains(t, msgs[0].Text, "42.5")
	require.Contains(t, msgs[0].Header.Get("List-Unsubscribe"), "https://vigil.example/unsubscribe?token=")
	require.Equal(t, "List-Unsubscribe=One-Click", msgs[0].Header.Get("List-Unsubscribe-Post"))
	require.Equal(t, 1, mb.count(t, `SELECT count(*) FROM notifications WHERE id = $1 AND status = 'sent' AND attempts = 1 AND sent_at IS NOT NULL`, id))
}

func TestMailerFailures(t *testing.T) {
	t.Parallel()
	mb, id := setupMailer(t)
	ctx := context.Background()

	mb.smtp.RejectNext(451, "try later")
	err := mb.mailer.Deliver(ctx, id)
	require.Equal(t, domain.EUNAVAILABLE, domain.ErrorCode(err), "%v", err)
	require.Equal(t, 1, mb.count(t, `SELECT count(*) FROM notifications WHERE id = $1 AND status = 'pending' AND last_error IS NOT NULL`, id))

	// Another mailer holding a fresh claim makes this one back off.
	_, err = mb.store.ClaimNotification(ctx, id, time.Now(), time.Minute)
	require.NoError(t, err)
	require.ErrorIs(t, mb.mailer.Deliver(ctx, id), app.ErrInFlight)
	require.Empty(t, mb.smtp.Messages())
	// ... until its lease expires: that mailer died, the notification is taken over.
	_, err = mb.pool.Exec(ctx, `UPDATE notifications SET updated_at = now() - interval '2 minutes' WHERE id = $1`, id)
	require.NoError(t, err)

	mb.smtp.RejectNext(550, "no such user")
	err = mb.mailer.Deliver(ctx, id)
	require.Equal(t, domain.EINVALID, domain.ErrorCode(err), "%v", err)
	require.Equal(t, 1, mb.count(t, `SELECT count(*) FROM notifications WHERE id = $1 AND status = 'failed' AND attempts = 3`, id))
	require.NoError(t, mb.mailer.Deliver(ctx, id), "a failed notification is not retried")
	require.Empty(t, mb.smtp.Messages())
}

func TestMailerRespectsUnsubscribe(t *testing.T) {
	t.Parallel()
	mb, id := setupMailer(t)
	ctx := context.Background()
	require.NoError(t, postgres.NewUserStore(mb.pool).Unsubscribe(ctx, mb.userID, "ANN@example.com"))
	require.NoError(t, mb.mailer.Deliver(ctx, id))
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
		_, err := store.RecordEvaluation(ctx, completed(mb.monitor, t0.Add(time.Duration(i)*time.Minute), monitor.EvaluationFailed, monitor.StateUnknown, 0), 3)
		require.NoError(t, err)
	}
	var id string
	require.NoError(t, mb.pool.QueryRow(ctx, `SELECT id FROM notifications WHERE kind = 'monitor_failing' AND monitor_id = $1`, mb.monitor.ID).Scan(&id))
	require.Equal(t, 1, mb.count(t, `SELECT count(*) FROM outbox WHERE type = $1 AND event_id = $2`, event.TypeNotificationRequested, "notification:"+id))

	require.NoError(t, mb.mailer.Deliver(ctx, id))
	msgs := mb.smtp.Messages()
	require.Len(t, msgs, 1)
	require.Contains(t, msgs[0].Subject, "checks are failing")
	require.Contains(t, msgs[0].Text, "The last 4 checks failed") // the count when the email is sent
	require.Contains(t, msgs[0].Text, "502 Bad Gateway")
	require.Equal(t, []string{"ann@example.com"}, msgs[0].To)
}

package main_test

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/postgres"
	"github.com/vigilhq/vigil/adapters/postgres/pgtest"
	"github.com/vigilhq/vigil/adapters/smtp/smtptest"
	"github.com/vigilhq/vigil/domain/event"
	"github.com/vigilhq/vigil/domain/monitor"
	"github.com/vigilhq/vigil/streams"
	"github.com/vigilhq/vigil/streams/natstest"
)

// TestMailerKilledTwiceMidSend: the mailer process is killed (SIGKILL) in the middle of an
// SMTP transaction, twice in a row for the same email. Each time the lease of the dead
// mailer's claim runs out, the next mailer takes the notification over, without spending
// the request's deliveries, and the third sends it: one email, one notification sent.
func TestMailerKilledTwiceMidSend(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bin := buildBinary(t)
	natsURL, _ := natstest.Start(t)
	dbURL := pgtest.NewURL(t)
	mail := smtptest.Start(t)
	mail.StallNext(2, 20*time.Second)
	env := append(os.Environ(),
		"VIGIL_ENV=dev", "DATABASE_URL="+dbURL, "NATS_URL="+natsURL, "SMTP_URL="+mail.URL(),
		"MAIL_FROM=Vigil <vigil@example.com>", "PUBLIC_BASE_URL=http://vigil.example", "LOG_FORMAT=json",
		"VIGIL_DATA_DIR="+t.TempDir(), "MAILER_LEASE=2s",
	)
	roles := newRoles(t, bin, env)
	start := func(role string) *exec.Cmd { return roles.start(role) }
	pool, err := postgres.Open(ctx, postgres.PoolConfig{URL: dbURL, AppName: "vigil-crash-test"})
	require.NoError(t, err)
	t.Cleanup(pool.Close)

	start("matcher")
	mailer := start("mailer")
	notificationID := stateChange(t, pool)

	for kill := 1; kill <= 2; kill++ {
		select {
		case <-mail.Stalled():
		case <-time.After(30 * time.Second):
			t.Fatalf("no send began before kill %d", kill)
		}
		require.NoError(t, mailer.Process.Kill(), "kill %d", kill)
		_ = mailer.Wait()
		require.Equal(t, 1, countRows(t, pool, `SELECT count(*) FROM notifications WHERE id = $1 AND status = 'sending' AND attempts = $2`,
			notificationID, kill), "the dead mailer's claim stays until its lease ends")
		mailer = start("mailer")
	}
	got := mail.WaitFor(t, 1, 30*time.Second)
	require.Eventually(t, func() bool {
		return countRows(t, pool, `SELECT count(*) FROM notifications WHERE id = $1 AND status = 'sent' AND attempts = 3`, notificationID) == 1
	}, 10*time.Second, 50*time.Millisecond)
	time.Sleep(time.Second) // anything sent twice would arrive by now
	require.Len(t, mail.Messages(), 1, "delivered once")
	require.Equal(t, []string{"ann@example.com"}, got[0].To)
	require.Equal(t, "<"+notificationID+"@vigil>", got[0].Header.Get("Message-ID"))
	require.Equal(t, 1, countRows(t, pool, `SELECT count(*) FROM notification_attempts WHERE notification_id = $1`, notificationID),
		"the killed attempts recorded nothing")
}

// stateChange creates a user whose monitor has a state_change trigger to the default email
// action, commits an inactive -> active evaluation with its StateChanged (as the recorder
// does), waits for the matcher's notification and returns its id.
func stateChange(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	ctx := context.Background()
	userID := uuid.Must(uuid.NewV7()).String()
	for _, stmt := range []string{
		`INSERT INTO users (id, email, name, email_verified_at) VALUES ($1, 'ann@example.com', 'Ann', now())`,
		`INSERT INTO actions (user_id, name, type, config, is_default)
		 SELECT id, 'Email me', 'email', jsonb_build_object('to', jsonb_build_array(email)), true FROM users WHERE id = $1`,
		`INSERT INTO monitors (user_id, name, prompt, kind, spec, interval_seconds, status, state, next_run_at)
		 VALUES ($1, 'Widget', 'Tell me when the price drops below $80', 'current_state',
		        '{"kind":"current_state","summary":"price below 80","facts":[{"name":"price","type":"number","unit":"USD"}],"condition":"price < 80","needs_source":true,"confidence":1}',
		        3600, 'paused', 'inactive', now() + interval '1 day')`,
		`INSERT INTO triggers (monitor_id, action_id, condition)
		 SELECT m.id, a.id, 'state_change' FROM monitors m JOIN actions a ON a.user_id = m.user_id WHERE m.user_id = $1`,
	} {
		_, err := pool.Exec(ctx, stmt, userID)
		require.NoError(t, err)
	}
	err := postgres.InTx(ctx, pool, func(tx pgx.Tx) error {
		var evaluationID, monitorID string
		err := tx.QueryRow(ctx, `
			INSERT INTO evaluations (monitor_id, scheduled_for, started_at, finished_at, status, state, previous_state, changed, explanation)
			SELECT id, now(), now(), now(), 'succeeded', 'active', 'inactive', true, 'The price is 79.' FROM monitors WHERE user_id = $1
			RETURNING id::text, monitor_id::text`, userID).Scan(&evaluationID, &monitorID)
		if err != nil {
			return err
		}
		now := time.Now().UTC()
		return streams.AppendOutbox(ctx, tx, "vigil/test", event.StateChanged{MonitorID: monitorID, UserID: userID,
			EvaluationID: evaluationID, From: monitor.StateInactive, To: monitor.StateActive, ScheduledFor: now, At: now})
	})
	require.NoError(t, err)
	var id string
	require.Eventually(t, func() bool {
		return pool.QueryRow(ctx, `SELECT id::text FROM notifications WHERE user_id = $1`, userID).Scan(&id) == nil
	}, 20*time.Second, 50*time.Millisecond, "the matcher made no notification")
	return id
}

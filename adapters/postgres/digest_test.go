package postgres_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/postgres"
	"github.com/vigilhq/vigil/adapters/source"
	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/app"
	"github.com/vigilhq/vigil/domain/monitor"
	"github.com/vigilhq/vigil/domain/trigger"
)

// TestDailyDigest: daily_digest notifications wait; at the user's digest hour two
// schedulers racing make one digest, which the mailer sends as one email listing every
// change with its values; the notifications in it are digested. A day with nothing to
// report sends nothing.
func TestDailyDigest(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	_, err := b.pool.Exec(ctx, `UPDATE users SET timezone = 'Europe/Paris', digest_hour = 8 WHERE id = $1`, b.userID)
	require.NoError(t, err)
	require.NoError(t, b.seed.EnsureTrigger(ctx, b.monitor.ID, b.actionID, "state_change", "daily_digest"))
	mb := newMailerBundle(t, b, source.Config{AllowPrivate: true})
	paris, _ := time.LoadLocation("Europe/Paris")

	// Two changes now, whatever time it is in Paris.
	require.Len(t, fire(t, b, monitor.StateInactive, monitor.StateActive, 79), 1)
	require.Len(t, fire(t, b, monitor.StateActive, monitor.StateInactive, 85), 1)
	require.Equal(t, 2, mb.count(t, `SELECT count(*) FROM notifications WHERE status = 'digest_pending'`))
	require.Zero(t, mb.deliverRequested(t), "nothing is sent at once")

	store := postgres.NewNotificationStore(b.pool, mb.box, "test")
	// Before the first digest hour after the changes nothing is due; after it one digest is
	// made, however many schedulers try at once. That hour is today's when the changes came
	// before 08:00 Paris time, else tomorrow's, so the test holds at any time of day.
	created := time.Now().In(paris)
	y, m, d := created.Date()
	cutoff := time.Date(y, m, d, 8, 0, 0, 0, paris)
	if !cutoff.After(created) {
		y, m, d = created.AddDate(0, 0, 1).Date()
		cutoff = time.Date(y, m, d, 8, 0, 0, 0, paris)
	}
	early := cutoff.Add(-time.Minute)
	at := cutoff.Add(30 * time.Second)
	n, err := app.NewDigester(store, func() time.Time { return early }).Tick(ctx)
	require.NoError(t, err)
	require.Zero(t, n)
	var wg sync.WaitGroup
	made, errs := make([]int, 4), make([]error, 4)
	for i := range made {
		wg.Add(1)
		go func() {
			defer wg.Done()
			made[i], errs[i] = app.NewDigester(store, func() time.Time { return at }).Tick(ctx)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	require.Equal(t, 1, made[0]+made[1]+made[2]+made[3], "one digest from four schedulers")
	require.Equal(t, 1, mb.count(t, `SELECT count(*) FROM notifications WHERE kind = 'digest' AND digest_day = $1 AND id = $2`,
		at.Format(time.DateOnly), app.DigestID(b.userID, "ann@example.com", at.Format(time.DateOnly))))
	require.Equal(t, 2, mb.count(t, `SELECT count(*) FROM notifications WHERE status = 'digested' AND digest_id IS NOT NULL`))

	// The relay is busy at first; the digest, which has no monitor, is asked for again.
	mb.smtp.RejectNext(451, "try again later")
	require.Equal(t, 1, mb.deliverRequested(t))
	require.Empty(t, mb.smtp.Messages())
	mb.clock.Add(time.Hour)
	n, err = mb.mailer.RequestDue(ctx, 100)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, 1, mb.deliverRequested(t))
	msgs := mb.smtp.Messages()
	require.Len(t, msgs, 1)
	require.Contains(t, msgs[0].Subject, "Your Vigil digest")
	require.Contains(t, msgs[0].Subject, "2 changes on 1 monitor")
	require.Contains(t, msgs[0].Text, b.monitor.Name)
	require.Contains(t, msgs[0].Text, "price: 79 USD")
	require.Contains(t, msgs[0].Text, "price: 85 USD")
	require.Contains(t, msgs[0].Text, "(Europe/Paris)")
	require.NotEmpty(t, msgs[0].Header.Get("List-Unsubscribe"))
	require.Equal(t, 1, mb.count(t, `SELECT count(*) FROM notifications WHERE kind = 'digest' AND status = 'sent'`))

	// Later that day, and the next day with nothing new: nothing more.
	for _, later := range []time.Time{at.Add(6 * time.Hour), at.Add(24 * time.Hour)} {
		n, err := app.NewDigester(store, func() time.Time { return later }).Tick(ctx)
		require.NoError(t, err)
		require.Zero(t, n)
	}
	require.Zero(t, mb.deliverRequested(t))

	// The digest is in the delivery status API like any notification, without a monitor.
	page, _, err := store.ListNotifications(ctx, app.NotificationQuery{UserID: b.userID, Limit: 10})
	require.NoError(t, err)
	require.Equal(t, app.KindDigest, page[0].Kind)
	require.Empty(t, page[0].MonitorID)
}

func TestDigestNeedsAnEmailAction(t *testing.T) {
	t.Parallel()
	mb := newMailerBundle(t, setup(t), source.Config{AllowPrivate: true})
	_, err := mb.pool.Exec(context.Background(), `UPDATE actions SET type = 'webhook', config = '{"url":"https://93.184.216.34/"}' WHERE id = $1`, mb.actionID)
	require.NoError(t, err)
	store := postgres.NewTriggerStore(mb.pool, "test")
	tr, err := app.NewTriggerService(store, nil, time.Now).Create(context.Background(), mb.userID, mb.monitor.ID,
		triggerSpec(mb.actionID, "daily_digest"))
	var de *domain.Error
	require.ErrorAs(t, err, &de, "%+v", tr)
	require.Contains(t, de.Fields["frequency"], "daily_digest needs an email action")
}

func triggerSpec(actionID, frequency string) trigger.Spec {
	return trigger.Spec{ActionID: actionID, Condition: trigger.OnStateChange, Frequency: trigger.Frequency(frequency), Enabled: true}
}

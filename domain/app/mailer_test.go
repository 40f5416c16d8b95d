package app_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/app"
)

func TestDecideClaim(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	on, off := true, false
	email := func(mod func(*app.ClaimState)) app.ClaimState {
		s := app.ClaimState{Status: app.StatusPending, UpdatedAt: now.Add(-time.Hour), Channel: app.ChannelEmail,
			Recipient: "ann@example.com", OwnerEmail: "Ann@example.com", Allowed: true, NotificationsOn: true}
		if mod != nil {
			mod(&s)
		}
		return s
	}
	unsubscribed := now.Add(-time.Minute)
	for _, tc := range []struct {
		name       string
		state      app.ClaimState
		err        error
		suppressed bool
	}{
		{name: "pending is claimed", state: email(nil)},
		{name: "a fresh claim is in flight", state: email(func(s *app.ClaimState) { s.Status, s.UpdatedAt = app.StatusSending, now.Add(-time.Minute) }), err: app.ErrInFlight},
		{name: "an expired claim is taken over", state: email(func(s *app.ClaimState) { s.Status, s.UpdatedAt = app.StatusSending, now.Add(-3*time.Minute) })},
		{name: "sent needs nothing", state: email(func(s *app.ClaimState) { s.Status = app.StatusSent }), err: app.ErrDelivered},
		{name: "failed needs nothing", state: email(func(s *app.ClaimState) { s.Status = app.StatusFailed }), err: app.ErrDelivered},
		{name: "unconfirmed address", state: email(func(s *app.ClaimState) { s.Allowed = false }), suppressed: true},
		{name: "address on the suppression list", state: email(func(s *app.ClaimState) { s.Suppressed = true }), suppressed: true},
		{name: "notifications off", state: email(func(s *app.ClaimState) { s.NotificationsOn = false }), suppressed: true},
		{name: "owner unsubscribed", state: email(func(s *app.ClaimState) { s.UnsubscribedAt = &unsubscribed }), suppressed: true},
		{name: "owner unsubscribed, another recipient still gets it", state: email(func(s *app.ClaimState) {
			s.UnsubscribedAt, s.Recipient = &unsubscribed, "carol@example.com"
		})},
		{name: "webhook of a deleted action", state: app.ClaimState{Status: app.StatusPending, Channel: app.ChannelWebhook}, suppressed: true},
		{name: "webhook of a disabled action", state: app.ClaimState{Status: app.StatusPending, Channel: app.ChannelWebhook, ActionEnabled: &off}, suppressed: true},
		{name: "webhook of an enabled action", state: app.ClaimState{Status: app.StatusPending, Channel: app.ChannelWebhook, ActionEnabled: &on}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			suppressed, err := app.DecideClaim(tc.state, now, 2*time.Minute)
			require.ErrorIs(t, err, tc.err)
			require.Equal(t, tc.suppressed, suppressed.Code != "", "suppressed %v", suppressed)
			require.Equal(t, tc.suppressed, suppressed.Reason != "", "suppressed %v", suppressed)
		})
	}
}

// fakeNotificationStore hands out the claims it is given and keeps what is recorded.
type fakeNotificationStore struct {
	mu        sync.Mutex
	claims    []app.Claim
	claimErr  error
	recorded  [][]app.AttemptRecord
	recordErr func(rs []app.AttemptRecord) error
}

func (f *fakeNotificationStore) ClaimNotifications(context.Context, []string, time.Time, time.Duration) ([]app.Claim, error) {
	return f.claims, f.claimErr
}

func (f *fakeNotificationStore) RecordAttempts(_ context.Context, rs []app.AttemptRecord) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.recordErr != nil {
		if err := f.recordErr(rs); err != nil {
			return err
		}
	}
	f.recorded = append(f.recorded, rs)
	return nil
}

func (f *fakeNotificationStore) RequestDue(context.Context, time.Time, time.Duration, int) (int, error) {
	return 0, nil
}

// senderFunc answers every delivery with fn.
type senderFunc func(d app.Delivery) app.Attempt

func (f senderFunc) Send(_ context.Context, d app.Delivery) app.Attempt { return f(d) }

func delivery(id, channel string) app.Claim {
	return app.Claim{NotificationID: id, Delivery: app.Delivery{NotificationID: id, Channel: channel, Attempt: 1, Recipient: id + "@example.com",
		ChangedAt: matchNow.Add(-3 * time.Second)}}
}

func TestDeliverBatch(t *testing.T) {
	t.Parallel()
	store := &fakeNotificationStore{claims: []app.Claim{
		delivery("n1", app.ChannelEmail),
		{NotificationID: "n2", Err: app.ErrInFlight},
		{NotificationID: "n3", Err: app.ErrDelivered},
		{NotificationID: "n4", Err: domain.ErrNotFound},
		delivery("n5", app.ChannelWebhook),
		delivery("n6", "pigeon"),
	}}
	var mu sync.Mutex
	sent := map[string]int{}
	ok := senderFunc(func(d app.Delivery) app.Attempt {
		mu.Lock()
		sent[d.NotificationID]++
		mu.Unlock()
		return app.Attempt{Result: app.ResultDelivered, Code: 250}
	})
	m := app.NewMailer(store, map[string]app.NotificationSender{app.ChannelEmail: ok, app.ChannelWebhook: ok},
		func() time.Time { return matchNow }, app.MailerConfig{Senders: 2})

	reports, err := m.DeliverBatch(context.Background(), []string{"n1", "n2", "n3", "n4", "n5", "n6"})
	require.NoError(t, err)
	require.Equal(t, map[string]int{"n1": 1, "n5": 1}, sent, "only what this mailer claimed is sent, once")
	require.Len(t, reports, 3)
	status := map[string]string{}
	for _, r := range reports {
		status[r.NotificationID] = r.Decision.Status
		require.Equal(t, 3*time.Second, r.FinishedAt.Sub(r.ChangedAt), "the report times the delivery from the state change")
	}
	require.Equal(t, map[string]string{"n1": app.StatusSent, "n5": app.StatusSent, "n6": app.StatusFailed}, status,
		"an unknown channel fails for good")
	require.Len(t, store.recorded, 1, "every attempt is recorded in one call")
	require.Len(t, store.recorded[0], 3)
}

func TestDeliverBatchRecordsOneByOneWhenTheBatchFails(t *testing.T) {
	t.Parallel()
	store := &fakeNotificationStore{claims: []app.Claim{delivery("n1", app.ChannelEmail), delivery("n2", app.ChannelEmail)}}
	store.recordErr = func(rs []app.AttemptRecord) error {
		for _, r := range rs {
			if r.NotificationID == "n2" {
				return errors.New("value too long")
			}
		}
		return nil
	}
	ok := senderFunc(func(app.Delivery) app.Attempt { return app.Attempt{Result: app.ResultDelivered} })
	m := app.NewMailer(store, map[string]app.NotificationSender{app.ChannelEmail: ok}, func() time.Time { return matchNow }, app.MailerConfig{})

	_, err := m.DeliverBatch(context.Background(), []string{"n1", "n2"})
	require.ErrorContains(t, err, "notification n2")
	require.Len(t, store.recorded, 1)
	require.Equal(t, "n1", store.recorded[0][0].NotificationID, "the attempt that could be recorded is, so n1 is not sent again")
}

func TestDeliverBatchClaimFails(t *testing.T) {
	t.Parallel()
	store := &fakeNotificationStore{claimErr: errors.New("connection refused")}
	m := app.NewMailer(store, nil, func() time.Time { return matchNow }, app.MailerConfig{})
	_, err := m.DeliverBatch(context.Background(), []string{"n1"})
	require.ErrorContains(t, err, "connection refused")

	store = &fakeNotificationStore{claims: []app.Claim{{NotificationID: "n1", Err: errors.New("secret cannot be opened")}}}
	m = app.NewMailer(store, nil, func() time.Time { return matchNow }, app.MailerConfig{})
	_, err = m.DeliverBatch(context.Background(), []string{"n1"})
	require.ErrorContains(t, err, "secret cannot be opened")
}

func TestDeliverBatchBoundsSenders(t *testing.T) {
	t.Parallel()
	var claims []app.Claim
	var ids []string
	for _, id := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		claims = append(claims, delivery(id, app.ChannelEmail))
		ids = append(ids, id)
	}
	store := &fakeNotificationStore{claims: claims}
	var mu sync.Mutex
	active, peak := 0, 0
	slow := senderFunc(func(app.Delivery) app.Attempt {
		mu.Lock()
		active++
		peak = max(peak, active)
		mu.Unlock()
		time.Sleep(20 * time.Millisecond)
		mu.Lock()
		active--
		mu.Unlock()
		return app.Attempt{Result: app.ResultDelivered}
	})
	m := app.NewMailer(store, map[string]app.NotificationSender{app.ChannelEmail: slow}, func() time.Time { return matchNow }, app.MailerConfig{Senders: 3})
	reports, err := m.DeliverBatch(context.Background(), ids)
	require.NoError(t, err)
	require.Len(t, reports, 8)
	require.Greater(t, peak, 1, "deliveries run at once")
	require.LessOrEqual(t, peak, 3, "never more than Senders at once")
}

package app_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/domain/app"
	"github.com/vigilhq/vigil/domain/event"
)

// fakeDueStore hands out due monitors once and remembers what was marked published.
type fakeDueStore struct {
	due         []app.DueMonitor
	unpublished []app.DueMonitor
	marked      []app.DueMonitor
	claims      int
	jitter      time.Duration // of the last claim
	next        time.Time
	nextErr     error
}

func (f *fakeDueStore) ClaimDue(_ context.Context, q app.DueQuery) ([]app.DueMonitor, error) {
	f.claims++
	f.jitter = q.Jitter
	n := min(q.Limit, len(f.due))
	out := f.due[:n]
	f.due = f.due[n:]
	return out, nil
}

func (f *fakeDueStore) MarkPublished(_ context.Context, due []app.DueMonitor) error {
	f.marked = append(f.marked, due...)
	return nil
}

func (f *fakeDueStore) NextDue(context.Context) (time.Time, error) {
	return f.next, f.nextErr
}

func (f *fakeDueStore) Unpublished(context.Context, time.Time, int) ([]app.DueMonitor, error) {
	out := f.unpublished
	f.unpublished = nil
	return out, nil
}

func TestSchedulerTick(t *testing.T) {
	t.Parallel()
	slot := matchNow.Add(-time.Minute)
	store := &fakeDueStore{
		due:         []app.DueMonitor{{ID: "m1", Slot: slot}, {ID: "m2", Slot: slot}, {ID: "m3", Slot: slot}},
		unpublished: []app.DueMonitor{{ID: "m9", Slot: slot.Add(-time.Hour)}},
	}
	pub := &fakePublisher{}
	s := app.NewScheduler(store, pub, func() time.Time { return matchNow }, app.SchedulerConfig{Batch: 2, Jitter: time.Minute})

	n, err := s.Tick(context.Background())
	require.NoError(t, err)
	require.Equal(t, 3, n)
	require.Equal(t, 2, store.claims, "batches of 2 until one comes back short")
	var ids []string
	for _, ev := range pub.events {
		due := ev.(event.EvaluationDue)
		ids = append(ids, due.MonitorID)
		require.Equal(t, event.EvaluationDueID(due.MonitorID, due.ScheduledFor), ev.EventID(), "ids are deterministic, so a republish is stored once")
	}
	require.Equal(t, []string{"m1", "m2", "m3", "m9"}, ids, "due monitors first, then the slots left unpublished")
	require.Len(t, store.marked, 4, "every published slot is marked published")
	require.Equal(t, time.Minute, store.jitter, "the claim applies the configured jitter")
}

func TestSchedulerWait(t *testing.T) {
	t.Parallel()
	store := &fakeDueStore{}
	s := app.NewScheduler(store, &fakePublisher{}, func() time.Time { return matchNow }, app.SchedulerConfig{Batch: 10, Tick: time.Second})
	for _, tt := range []struct {
		name string
		next time.Time
		err  error
		want time.Duration
	}{
		{"no monitor is active: the tick", time.Time{}, nil, time.Second},
		{"the store failed: the tick", matchNow, errors.New("conn reset"), time.Second},
		{"due soon: until then", matchNow.Add(40 * time.Millisecond), nil, 40 * time.Millisecond},
		{"due later than a tick: the tick", matchNow.Add(time.Hour), nil, time.Second},
		{"already due (a claim is behind): the shortest pause", matchNow.Add(-time.Minute), nil, app.SchedulerMinWait},
	} {
		store.next, store.nextErr = tt.next, tt.err
		require.Equal(t, tt.want, s.Wait(context.Background()), tt.name)
	}
}

func TestSchedulerTickPublishFails(t *testing.T) {
	t.Parallel()
	store := &fakeDueStore{due: []app.DueMonitor{{ID: "m1", Slot: matchNow}}, unpublished: []app.DueMonitor{{ID: "m9", Slot: matchNow}}}
	pub := &fakePublisher{err: errors.New("nats: timeout")}
	s := app.NewScheduler(store, pub, func() time.Time { return matchNow }, app.SchedulerConfig{Batch: 10})

	_, err := s.Tick(context.Background())
	require.ErrorContains(t, err, "nats: timeout")
	require.Empty(t, store.marked, "a slot that was not published is not marked, so it is published again later")
	require.NotEmpty(t, store.unpublished, "the tick stopped before republishing")
}

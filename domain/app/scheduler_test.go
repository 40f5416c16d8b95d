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
}

func (f *fakeDueStore) ClaimDue(_ context.Context, q app.DueQuery) ([]app.DueMonitor, error) {
	f.claims++
	n := min(q.Limit, len(f.due))
	out := f.due[:n]
	f.due = f.due[n:]
	return out, nil
}

func (f *fakeDueStore) MarkPublished(_ context.Context, due []app.DueMonitor) error {
	f.marked = append(f.marked, due...)
	return nil
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
	s := app.NewScheduler(store, pub, func() time.Time { return matchNow }, 2)

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
}

func TestSchedulerTickPublishFails(t *testing.T) {
	t.Parallel()
	store := &fakeDueStore{due: []app.DueMonitor{{ID: "m1", Slot: matchNow}}, unpublished: []app.DueMonitor{{ID: "m9", Slot: matchNow}}}
	pub := &fakePublisher{err: errors.New("nats: timeout")}
	s := app.NewScheduler(store, pub, func() time.Time { return matchNow }, 10)

	_, err := s.Tick(context.Background())
	require.ErrorContains(t, err, "nats: timeout")
	require.Empty(t, store.marked, "a slot that was not published is not marked, so it is published again later")
	require.NotEmpty(t, store.unpublished, "the tick stopped before republishing")
}

package app

import (
	"context"
	"fmt"
	"time"

	"github.com/vigilhq/vigil/domain/event"
)

// DueMonitor is a monitor claimed for one run.
type DueMonitor struct {
	ID       string
	Slot     time.Time // the run's scheduled_for: the monitor's next_run_at when claimed
	Interval time.Duration
	Cron     string // when set, the next run follows it in Timezone
	Timezone string
}

// DueQuery selects monitors to claim.
type DueQuery struct {
	Now       time.Time
	Limit     int
	MonitorID string // when set, only this monitor (if it is active and due)
}

// DueStore claims due monitors.
type DueStore interface {
	// ClaimDue locks up to q.Limit active monitors due at q.Now, skipping rows other
	// schedulers hold, and calls dispatch with them. When dispatch succeeds it advances each
	// monitor's next_run_at past q.Now (monitor.NextRunOf) and commits; when it fails nothing
	// changes, so the next tick retries the same slots. Returns how many were claimed.
	ClaimDue(ctx context.Context, q DueQuery, dispatch func(context.Context, []DueMonitor) error) (int, error)
}

// Publisher publishes events to the broker.
type Publisher interface {
	Publish(ctx context.Context, ev event.Event) error
	PublishAll(ctx context.Context, evs []event.Event) error
}

// Scheduler turns due monitors into EvaluationDue events. EvaluationDue ids are
// deterministic (monitor and slot), so a slot published twice, by two replicas or
// a restart between publish and commit, is stored once by JetStream.
type Scheduler struct {
	store DueStore
	pub   Publisher
	now   func() time.Time
	batch int
}

// NewScheduler returns a Scheduler claiming batch monitors per transaction.
func NewScheduler(store DueStore, pub Publisher, now func() time.Time, batch int) *Scheduler {
	return &Scheduler{store: store, pub: pub, now: now, batch: max(batch, 1)}
}

// Tick schedules every monitor due now, batch by batch. Returns how many were scheduled.
func (s *Scheduler) Tick(ctx context.Context) (int, error) {
	total := 0
	for {
		n, err := s.store.ClaimDue(ctx, DueQuery{Now: s.now(), Limit: s.batch}, s.dispatch)
		total += n
		if err != nil {
			return total, fmt.Errorf("claim due monitors: %w", err)
		}
		if n < s.batch {
			return total, nil
		}
	}
}

// MonitorChanged schedules one monitor at once if it is due, as a new monitor is.
func (s *Scheduler) MonitorChanged(ctx context.Context, monitorID string) error {
	if _, err := s.store.ClaimDue(ctx, DueQuery{Now: s.now(), Limit: 1, MonitorID: monitorID}, s.dispatch); err != nil {
		return fmt.Errorf("schedule monitor %s: %w", monitorID, err)
	}
	return nil
}

func (s *Scheduler) dispatch(ctx context.Context, due []DueMonitor) error {
	now := s.now().UTC()
	evs := make([]event.Event, len(due))
	for i, d := range due {
		evs[i] = event.EvaluationDue{MonitorID: d.ID, ScheduledFor: d.Slot.UTC(), At: now}
	}
	return s.pub.PublishAll(ctx, evs)
}

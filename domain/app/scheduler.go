package app

import (
	"context"
	"fmt"
	"sync"
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
	// Monitor is what the evaluation works from, carried in EvaluationDue.
	Monitor event.DueMonitor
}

// DueQuery selects monitors to claim.
type DueQuery struct {
	Now       time.Time
	Limit     int
	MonitorID string        // when set, only this monitor (if it is active and due)
	Jitter    time.Duration // the most each next run is delayed (monitor.NextScheduled)
}

// DueStore claims due monitors.
type DueStore interface {
	// ClaimDue, in one short transaction, takes up to q.Limit active monitors due at q.Now,
	// skipping rows other schedulers hold, advances each one's next_run_at past q.Now
	// (monitor.NextScheduled with q.Jitter), records the slot as claimed but not yet published, and returns
	// them. No lock is held once it returns, so edits never wait on the broker.
	ClaimDue(ctx context.Context, q DueQuery) ([]DueMonitor, error)
	// MarkPublished records that the broker stored the slots' EvaluationDue. A monitor
	// claimed again meanwhile keeps its newer slot unpublished.
	MarkPublished(ctx context.Context, due []DueMonitor) error
	// Unpublished returns up to limit slots claimed before before whose EvaluationDue was
	// never marked published: the broker was down, or the scheduler died after its claim.
	Unpublished(ctx context.Context, before time.Time, limit int) ([]DueMonitor, error)
	// NextDue returns when the earliest active monitor is due, or the zero time if none is.
	NextDue(ctx context.Context) (time.Time, error)
}

// Publisher publishes events to the broker.
type Publisher interface {
	Publish(ctx context.Context, ev event.Event) error
	PublishAll(ctx context.Context, evs []event.Event) error
}

// SchedulerRepublishAfter is how long a claimed slot may stay unpublished before a
// scheduler publishes it again: longer than a publish may take.
const SchedulerRepublishAfter = 30 * time.Second

// SchedulerRepublishEvery is how often a scheduler looks for slots left unpublished: the
// scheduler may tick every millisecond, and such slots are rare (the broker was down).
const SchedulerRepublishEvery = 5 * time.Second

// SchedulerMinWait is the shortest pause between two claims, so that a steady stream of due
// runs is claimed in small batches rather than one query at a time.
const SchedulerMinWait = time.Millisecond

// SchedulerConfig tunes a Scheduler.
type SchedulerConfig struct {
	Batch  int           // monitors claimed per transaction
	Tick   time.Duration // the longest pause between two claims
	Jitter time.Duration // the most a run of an interval monitor is delayed at random; 0 for none
}

// Scheduler turns due monitors into EvaluationDue events: claim and commit, then publish,
// then mark published. EvaluationDue ids are deterministic (monitor and slot), so a slot
// published twice, by two replicas, a republish or a restart, is stored once by JetStream;
// and a slot claimed but not published (the broker was down, the scheduler died) is
// published again by the next tick. After downtime, each monitor runs once for its latest
// slot, not once per slot missed.
type Scheduler struct {
	store DueStore
	pub   Publisher
	now   func() time.Time
	cfg   SchedulerConfig

	mu            sync.Mutex
	lastRepublish time.Time // when republish last ran to the end
}

// NewScheduler returns a Scheduler; a Batch below 1 is 1 and a Tick below SchedulerMinWait
// is SchedulerMinWait.
func NewScheduler(store DueStore, pub Publisher, now func() time.Time, cfg SchedulerConfig) *Scheduler {
	cfg.Batch = max(cfg.Batch, 1)
	cfg.Tick = max(cfg.Tick, SchedulerMinWait)
	return &Scheduler{store: store, pub: pub, now: now, cfg: cfg}
}

// Wait returns how long to pause before the next Tick: until the earliest monitor is due,
// at least SchedulerMinWait and at most the Tick. A run is thus claimed within about a
// millisecond of its time when the schedule is sparse, and the query rate stays bounded when
// it is dense. When the store cannot say, it is the Tick.
func (s *Scheduler) Wait(ctx context.Context) time.Duration {
	next, err := s.store.NextDue(ctx)
	if err != nil || next.IsZero() {
		return s.cfg.Tick
	}
	return min(max(next.Sub(s.now()), SchedulerMinWait), s.cfg.Tick)
}

// Tick schedules every monitor due now, batch by batch, then, at most every
// SchedulerRepublishEvery, publishes the slots left unpublished by earlier ticks. Returns
// how many were scheduled. A publish that fails stops
// the tick; its slots stay claimed and are published by a later tick, unless the monitor
// is due again first: its newer slot replaces the older, so it runs once.
func (s *Scheduler) Tick(ctx context.Context) (int, error) {
	total := 0
	for {
		due, err := s.store.ClaimDue(ctx, DueQuery{Now: s.now(), Limit: s.cfg.Batch, Jitter: s.cfg.Jitter})
		if err != nil {
			return total, fmt.Errorf("claim due monitors: %w", err)
		}
		if err := s.dispatch(ctx, due); err != nil {
			return total, err
		}
		total += len(due)
		if len(due) < s.cfg.Batch {
			break
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if !s.lastRepublish.IsZero() && now.Sub(s.lastRepublish) < SchedulerRepublishEvery {
		return total, nil
	}
	if err := s.republish(ctx); err != nil {
		return total, err
	}
	s.lastRepublish = now
	return total, nil
}

// MonitorChanged schedules one monitor at once if it is due, as a new monitor is.
func (s *Scheduler) MonitorChanged(ctx context.Context, monitorID string) error {
	due, err := s.store.ClaimDue(ctx, DueQuery{Now: s.now(), Limit: 1, MonitorID: monitorID, Jitter: s.cfg.Jitter})
	if err != nil {
		return fmt.Errorf("schedule monitor %s: %w", monitorID, err)
	}
	return s.dispatch(ctx, due)
}

// republish publishes the slots claimed long enough ago and still unpublished.
func (s *Scheduler) republish(ctx context.Context) error {
	for {
		due, err := s.store.Unpublished(ctx, s.now().Add(-SchedulerRepublishAfter), s.cfg.Batch)
		if err != nil {
			return fmt.Errorf("find unpublished slots: %w", err)
		}
		if err := s.dispatch(ctx, due); err != nil {
			return err
		}
		if len(due) < s.cfg.Batch {
			return nil
		}
	}
}

// dispatch publishes the slots' EvaluationDue and marks them published.
func (s *Scheduler) dispatch(ctx context.Context, due []DueMonitor) error {
	if len(due) == 0 {
		return nil
	}
	now := s.now().UTC()
	evs := make([]event.Event, len(due))
	for i, d := range due {
		due := event.EvaluationDue{MonitorID: d.ID, ScheduledFor: d.Slot.UTC(), At: now}
		if d.Monitor.Version > 0 { // loaded with the claim
			dm := d.Monitor
			due.Monitor = &dm
		}
		evs[i] = due
	}
	if err := s.pub.PublishAll(ctx, evs); err != nil {
		return fmt.Errorf("publish %d due evaluations (they stay claimed and are published again later): %w", len(due), err)
	}
	if err := s.store.MarkPublished(ctx, due); err != nil {
		return fmt.Errorf("mark %d due evaluations published: %w", len(due), err)
	}
	return nil
}

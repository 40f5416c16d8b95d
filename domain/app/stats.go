package app

import (
	"context"
	"fmt"
	"time"

	"github.com/vigilhq/vigil/domain/monitor"
)

// StatsQuery asks for a monitor's statistics over a range, per bucket.
type StatsQuery struct {
	UserID, MonitorID string
	From, To          *time.Time
	Bucket            monitor.Bucket // "" is auto; raw is not allowed
	Zone              string
}

// EvaluationCounts are a bucket's (or a range's) evaluations.
type EvaluationCounts struct {
	Start                        time.Time // the bucket's start; zero for a range's totals
	Succeeded, Abstained, Failed int
	InputTokens, OutputTokens    int64
	Cost                         float64
	FactsReused, Transitions     int
}

// Total is how many evaluations there were.
func (c EvaluationCounts) Total() int { return c.Succeeded + c.Abstained + c.Failed }

// add folds another bucket into c.
func (c *EvaluationCounts) add(o EvaluationCounts) {
	c.Succeeded += o.Succeeded
	c.Abstained += o.Abstained
	c.Failed += o.Failed
	c.InputTokens += o.InputTokens
	c.OutputTokens += o.OutputTokens
	c.Cost += o.Cost
	c.FactsReused += o.FactsReused
	c.Transitions += o.Transitions
}

// Percentiles of a duration in milliseconds; N is how many values there were (0: none, and
// the percentiles mean nothing).
type Percentiles struct {
	P50, P95, P99 float64
	N             int
}

// MonitorStats is how a monitor did over a range.
type MonitorStats struct {
	From, To      time.Time
	Bucket        monitor.Bucket
	Zone          string
	Totals        EvaluationCounts
	Buckets       []EvaluationCounts // one per bucket start, empty ones included
	Latency       Percentiles        // evaluation, end to end
	Fetch         Percentiles        // the source's fetch or render
	Timeline      []monitor.StateSegment
	TimeInState   map[monitor.State]time.Duration
	Notifications map[string]int // by status
}

// SuccessRate is the share of evaluations that succeeded; false when there were none.
func (s MonitorStats) SuccessRate() (float64, bool) {
	if n := s.Totals.Total(); n > 0 {
		return float64(s.Totals.Succeeded) / float64(n), true
	}
	return 0, false
}

// StatsStore reads what a monitor's statistics are made of.
type StatsStore interface {
	// EvaluationBuckets returns the counts of the buckets of [from, to) that hold
	// evaluations (by their slot), bucketed as Bucket.Start does in zone.
	EvaluationBuckets(ctx context.Context, monitorID string, from, to time.Time, b monitor.Bucket, zone string) ([]EvaluationCounts, error)
	// DurationPercentiles returns the percentiles of the evaluations' latency and fetch time
	// in [from, to).
	DurationPercentiles(ctx context.Context, monitorID string, from, to time.Time) (latency, fetch Percentiles, err error)
	// Transitions returns the monitor's state before from (unknown when it never changed)
	// and up to limit transitions in [from, to), oldest first.
	Transitions(ctx context.Context, monitorID string, from, to time.Time, limit int) (monitor.State, []monitor.Transition, error)
	// NotificationCounts counts the monitor's notifications created in [from, to) by status.
	NotificationCounts(ctx context.Context, monitorID string, from, to time.Time) (map[string]int, error)
}

// StatsService computes monitors' statistics.
type StatsService struct {
	monitors OwnedMonitors
	store    StatsStore
	now      func() time.Time
}

// NewStatsService returns a StatsService.
func NewStatsService(monitors OwnedMonitors, store StatsStore, now func() time.Time) *StatsService {
	return &StatsService{monitors: monitors, store: store, now: now}
}

// StatsMaxTransitions bounds the timeline of one answer.
const StatsMaxTransitions = 5000

// MonitorStats returns the statistics of the user's monitor. A query that cannot be
// answered is an EINVALID error naming the parameter to change.
func (s *StatsService) MonitorStats(ctx context.Context, q StatsQuery) (MonitorStats, error) {
	m, err := s.monitors.GetMonitor(ctx, q.UserID, q.MonitorID)
	if err != nil {
		return MonitorStats{}, err
	}
	if q.Bucket == monitor.BucketRaw {
		return MonitorStats{}, invalidQuery("bucket", "must be a bucket of time, not raw")
	}
	// The same defaults and limits as a fact series.
	a, _, loc, err := resolveSeries(SeriesQuery{From: q.From, To: q.To, Bucket: q.Bucket, Zone: q.Zone}, m.Spec, s.now())
	if err != nil {
		return MonitorStats{}, err
	}
	st := MonitorStats{From: a.From, To: a.To, Bucket: a.Bucket, Zone: a.Zone}
	counts, err := s.store.EvaluationBuckets(ctx, m.ID, a.From, a.To, a.Bucket, a.Zone)
	if err != nil {
		return st, fmt.Errorf("evaluations of %s: %w", m.ID, err)
	}
	byStart := make(map[int64]EvaluationCounts, len(counts))
	for _, c := range counts {
		byStart[c.Start.UnixNano()] = c
		st.Totals.add(c)
	}
	for _, start := range a.Bucket.Starts(a.From, a.To, loc, monitor.SeriesMaxPoints) {
		c := byStart[start.UnixNano()]
		c.Start = start
		st.Buckets = append(st.Buckets, c)
	}
	if st.Latency, st.Fetch, err = s.store.DurationPercentiles(ctx, m.ID, a.From, a.To); err != nil {
		return st, fmt.Errorf("durations of %s: %w", m.ID, err)
	}
	initial, transitions, err := s.store.Transitions(ctx, m.ID, a.From, a.To, StatsMaxTransitions+1)
	if err != nil {
		return st, fmt.Errorf("transitions of %s: %w", m.ID, err)
	}
	if len(transitions) > StatsMaxTransitions {
		return st, invalidQuery("from", fmt.Sprintf("the state changed more than %d times in this range; use a shorter range", StatsMaxTransitions))
	}
	st.Timeline = monitor.Timeline(initial, transitions, a.From, a.To)
	st.TimeInState = monitor.TimeInState(st.Timeline)
	if st.Notifications, err = s.store.NotificationCounts(ctx, m.ID, a.From, a.To); err != nil {
		return st, fmt.Errorf("notifications of %s: %w", m.ID, err)
	}
	return st, nil
}

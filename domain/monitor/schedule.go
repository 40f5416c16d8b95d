package monitor

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/robfig/cron/v3"
)

// cronParser reads standard five-field expressions and descriptors such as @hourly.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseCron parses a cron expression and returns the shortest gap between two runs over the
// next week, which the minimum interval applies to.
func ParseCron(expr string) (cron.Schedule, time.Duration, error) {
	s, err := cronParser.Parse(expr)
	if err != nil {
		return nil, 0, fmt.Errorf("cron %q: %w", expr, err)
	}
	gap := MaxInterval
	t := s.Next(time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC))
	for end := t.Add(7 * 24 * time.Hour); t.Before(end); {
		next := s.Next(t)
		if next.IsZero() {
			break
		}
		gap = min(gap, next.Sub(t))
		t = next
	}
	return s, gap, nil
}

// NextRunAfter returns the monitor's first run strictly after after: on its cron schedule in
// its time zone when it has one, else on its interval at the phase its id gives (NextRun).
func (m *Monitor) NextRunAfter(after time.Time) time.Time {
	return NextRunOf(m.ID, m.Interval, m.Cron, m.Timezone, after)
}

// NextRunOf is NextRunAfter for a monitor known by its schedule fields (the scheduler's claim
// reads only those). An invalid cron expression or zone, which validation keeps out, falls
// back to the interval.
func NextRunOf(id string, interval time.Duration, cronExpr, timezone string, after time.Time) time.Time {
	if cronExpr != "" {
		if s, _, err := ParseCron(cronExpr); err == nil {
			loc, err := time.LoadLocation(timezone)
			if err != nil {
				loc = time.UTC
			}
			if next := s.Next(after.In(loc)); !next.IsZero() {
				return next.UTC()
			}
		}
	}
	return NextRun(id, interval, after)
}

// NextScheduled is NextRunOf with up to jitter of delay, for the scheduler. The delay is
// drawn from the monitor's id and its run, so every replica computes the same one, and it
// stays under half the interval, so the next run is found on the same grid and delays never
// add up. Cron schedules are never delayed: their users asked for a time of day.
func NextScheduled(id string, interval time.Duration, cronExpr, timezone string, after time.Time, jitter time.Duration) time.Time {
	next := NextRunOf(id, interval, cronExpr, timezone, after)
	if jitter <= 0 || cronExpr != "" || interval <= 1 {
		return next
	}
	limit := min(jitter, interval/2)
	if limit <= 0 {
		return next
	}
	h := fnv.New64a()
	h.Write([]byte(id))
	var run [8]byte
	binary.BigEndian.PutUint64(run[:], uint64(next.UnixNano()))
	h.Write(run[:])
	return next.Add(time.Duration(h.Sum64() % uint64(limit))) // #nosec G115 -- below limit, itself a positive time.Duration
}

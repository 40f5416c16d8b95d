package monitor

import (
	"fmt"
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

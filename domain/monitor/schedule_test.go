package monitor_test

import (
	"testing"
	"time"

	"github.com/vigilhq/vigil/domain/monitor"
)

func TestNextScheduledJitter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 1, 12, 0, 30, 0, time.UTC)
	const jitter = 5 * time.Minute
	delays := map[time.Duration]bool{}
	for _, id := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		grid := monitor.NextRun(id, time.Hour, now)
		slot := now
		for run := range 24 {
			next := monitor.NextScheduled(id, time.Hour, "", "", slot, jitter)
			want := grid.Add(time.Duration(run) * time.Hour)
			if d := next.Sub(want); d < 0 || d >= jitter {
				t.Fatalf("%s run %d: %s is %s after its grid time %s, want within [0, %s)", id, run, next, d, want, jitter)
			}
			if again := monitor.NextScheduled(id, time.Hour, "", "", slot, jitter); !again.Equal(next) {
				t.Fatalf("%s: not deterministic: %s then %s", id, next, again)
			}
			delays[next.Sub(want)] = true
			slot = next // the next claim runs from the delayed slot: delays must not add up
		}
	}
	if len(delays) < 100 {
		t.Fatalf("only %d distinct delays over 192 runs: the jitter is not spread", len(delays))
	}
}

func TestNextScheduledBounds(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 1, 12, 0, 30, 0, time.UTC)
	if got, want := monitor.NextScheduled("a", time.Hour, "", "", now, 0), monitor.NextRun("a", time.Hour, now); !got.Equal(want) {
		t.Fatalf("no jitter: %s, want the grid time %s", got, want)
	}
	// A jitter longer than the interval is held to half of it.
	for _, id := range []string{"a", "b", "c", "d", "e", "f"} {
		grid := monitor.NextRun(id, time.Minute, now)
		if d := monitor.NextScheduled(id, time.Minute, "", "", now, time.Hour).Sub(grid); d < 0 || d >= 30*time.Second {
			t.Fatalf("%s: delayed %s with a 1m interval, want under 30s", id, d)
		}
	}
	// Cron runs keep their time of day.
	cron := monitor.NextScheduled("a", time.Hour, "0 9 * * *", "Europe/Paris", now, time.Hour)
	if want := monitor.NextRunOf("a", time.Hour, "0 9 * * *", "Europe/Paris", now); !cron.Equal(want) {
		t.Fatalf("cron run delayed to %s, want %s", cron, want)
	}
}

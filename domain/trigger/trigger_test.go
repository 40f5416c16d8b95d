package trigger_test

import (
	"testing"
	"time"

	"github.com/vigilhq/vigil/domain/monitor"
	"github.com/vigilhq/vigil/domain/trigger"
)

func TestConditionMatches(t *testing.T) {
	t.Parallel()
	const (
		u = monitor.StateUnknown
		a = monitor.StateActive
		i = monitor.StateInactive
	)
	tests := []struct {
		c        trigger.Condition
		from, to monitor.State
		want     bool
	}{
		{trigger.OnStateChange, a, i, true},
		{trigger.OnStateChange, i, a, true},
		{trigger.OnStateChange, u, a, false},
		{trigger.OnStateChange, u, i, false},
		{trigger.OnBecomesActive, i, a, true},
		{trigger.OnBecomesActive, u, a, true},
		{trigger.OnBecomesActive, a, i, false},
		{trigger.OnBecomesInactive, a, i, true},
		{trigger.OnBecomesInactive, u, i, false},
		{trigger.OnBecomesInactive, i, a, false},
		{"bogus", a, i, false},
	}
	for _, tt := range tests {
		if got := tt.c.Matches(tt.from, tt.to); got != tt.want {
			t.Errorf("%s.Matches(%s, %s) = %v, want %v", tt.c, tt.from, tt.to, got, tt.want)
		}
	}
}

func TestFire(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	recent := now.Add(-time.Minute)
	base := trigger.Trigger{Condition: trigger.OnStateChange, Frequency: trigger.EveryTime, Enabled: true}
	if f, ok := base.Fire(monitor.StateActive, monitor.StateInactive, now); !ok || f.Disable || f.Digest {
		t.Fatalf("every_time: got %+v %v", f, ok)
	}
	disabled := base
	disabled.Enabled = false
	if _, ok := disabled.Fire(monitor.StateActive, monitor.StateInactive, now); ok {
		t.Fatal("disabled trigger fired")
	}
	once := base
	once.Frequency = trigger.Once
	if f, ok := once.Fire(monitor.StateActive, monitor.StateInactive, now); !ok || !f.Disable {
		t.Fatalf("once: got %+v %v, want fire and disable", f, ok)
	}
	digest := base
	digest.Frequency = trigger.DailyDigest
	if f, ok := digest.Fire(monitor.StateActive, monitor.StateInactive, now); !ok || !f.Digest {
		t.Fatalf("daily_digest: got %+v %v", f, ok)
	}
	cool := base
	cool.Cooldown = time.Hour
	cool.LastFiredAt = &recent
	if _, ok := cool.Fire(monitor.StateActive, monitor.StateInactive, now); ok {
		t.Fatal("fired inside its cooldown")
	}
	cool.Cooldown = 30 * time.Second
	if _, ok := cool.Fire(monitor.StateActive, monitor.StateInactive, now); !ok {
		t.Fatal("did not fire after its cooldown")
	}
}

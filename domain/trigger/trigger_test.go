package trigger_test

import (
	"errors"
	"testing"
	"time"

	"github.com/vigilhq/vigil/domain"
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

func TestSpecValidate(t *testing.T) {
	t.Parallel()
	ok := trigger.DefaultSpec("a1")
	if err := ok.Validate(""); err != nil {
		t.Fatalf("default spec: %v", err)
	}
	if ok.Condition != trigger.OnBecomesActive || ok.Frequency != trigger.EveryTime || !ok.Enabled {
		t.Fatalf("default spec = %+v", ok)
	}
	for name, tc := range map[string]struct {
		mutate func(*trigger.Spec)
		field  string
	}{
		"no action":            {func(s *trigger.Spec) { s.ActionID = "" }, "triggers[2].action_id"},
		"bad condition":        {func(s *trigger.Spec) { s.Condition = "sometimes" }, "triggers[2].condition"},
		"bad frequency":        {func(s *trigger.Spec) { s.Frequency = "hourly" }, "triggers[2].frequency"},
		"negative":             {func(s *trigger.Spec) { s.Cooldown = -time.Second }, "triggers[2].cooldown"},
		"too long":             {func(s *trigger.Spec) { s.Cooldown = trigger.CooldownMax + time.Second }, "triggers[2].cooldown"},
		"fraction of a second": {func(s *trigger.Spec) { s.Cooldown = 1500 * time.Millisecond }, "triggers[2].cooldown"},
	} {
		s := trigger.DefaultSpec("a1")
		tc.mutate(&s)
		err := s.Validate("triggers[2].")
		var de *domain.Error
		if !errors.As(err, &de) || de.Fields[tc.field] == "" {
			t.Errorf("%s: %v, want a field error on %s", name, err, tc.field)
		}
	}
}

func TestApplyReArmsOnce(t *testing.T) {
	t.Parallel()
	tr := trigger.Trigger{ID: "t", ActionID: "a", Condition: trigger.OnStateChange, Frequency: trigger.Once, Enabled: true}
	now := time.Now()
	if _, fired := tr.Fire(monitor.StateInactive, monitor.StateActive, now); !fired {
		t.Fatal("once trigger did not fire")
	}
	tr.Enabled, tr.FiredCount = false, 1 // what firing a once trigger stores
	if _, fired := tr.Fire(monitor.StateActive, monitor.StateInactive, now); fired {
		t.Fatal("a spent once trigger fired")
	}
	on := true
	if err := tr.Apply(trigger.Changes{Enabled: &on}); err != nil {
		t.Fatal(err)
	}
	if _, fired := tr.Fire(monitor.StateActive, monitor.StateInactive, now); !fired {
		t.Fatal("enabling a spent once trigger did not re-arm it")
	}
	bad := trigger.Frequency("hourly")
	if err := tr.Apply(trigger.Changes{Frequency: &bad}); err == nil || tr.Frequency != trigger.Once {
		t.Fatalf("an invalid change was applied: %v %+v", err, tr)
	}
}

package monitor_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/monitor"
)

func TestApply(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	t1 := t0.Add(time.Minute)
	tests := []struct {
		name string
		snap monitor.Snapshot
		res  monitor.Result
		want monitor.Outcome
	}{
		{"first success flips unknown to inactive",
			monitor.Snapshot{State: monitor.StateUnknown, Status: monitor.StatusActive},
			monitor.Result{ScheduledFor: t0, Status: monitor.EvaluationSucceeded, State: monitor.StateInactive},
			monitor.Outcome{Changed: true, From: monitor.StateUnknown, To: monitor.StateInactive, Status: monitor.StatusActive}},
		{"same state is no change",
			monitor.Snapshot{State: monitor.StateActive, Status: monitor.StatusActive, LastEvaluationFor: &t0},
			monitor.Result{ScheduledFor: t1, Status: monitor.EvaluationSucceeded, State: monitor.StateActive},
			monitor.Outcome{From: monitor.StateActive, To: monitor.StateActive, Status: monitor.StatusActive}},
		{"older evaluation is stale",
			monitor.Snapshot{State: monitor.StateActive, Status: monitor.StatusActive, LastEvaluationFor: &t1},
			monitor.Result{ScheduledFor: t0, Status: monitor.EvaluationSucceeded, State: monitor.StateInactive},
			monitor.Outcome{Stale: true, From: monitor.StateActive, To: monitor.StateActive, Status: monitor.StatusActive}},
		{"same slot again is stale",
			monitor.Snapshot{State: monitor.StateActive, Status: monitor.StatusActive, LastEvaluationFor: &t0},
			monitor.Result{ScheduledFor: t0, Status: monitor.EvaluationSucceeded, State: monitor.StateInactive},
			monitor.Outcome{Stale: true, From: monitor.StateActive, To: monitor.StateActive, Status: monitor.StatusActive}},
		{"failure keeps state and counts",
			monitor.Snapshot{State: monitor.StateActive, Status: monitor.StatusActive, ConsecutiveFailures: 1},
			monitor.Result{ScheduledFor: t0, Status: monitor.EvaluationFailed, Error: "timeout"},
			monitor.Outcome{From: monitor.StateActive, To: monitor.StateActive, Status: monitor.StatusActive, ConsecutiveFailures: 2, LastError: "timeout"}},
		{"too many failures put the monitor in error",
			monitor.Snapshot{State: monitor.StateActive, Status: monitor.StatusActive, ConsecutiveFailures: 2},
			monitor.Result{ScheduledFor: t0, Status: monitor.EvaluationFailed, Error: "timeout"},
			monitor.Outcome{From: monitor.StateActive, To: monitor.StateActive, Status: monitor.StatusError, ConsecutiveFailures: 3, LastError: "timeout"}},
		{"abstaining keeps state and clears failures",
			monitor.Snapshot{State: monitor.StateInactive, Status: monitor.StatusActive, ConsecutiveFailures: 2, LastError: "x"},
			monitor.Result{ScheduledFor: t0, Status: monitor.EvaluationAbstained, State: monitor.StateActive},
			monitor.Outcome{From: monitor.StateInactive, To: monitor.StateInactive, Status: monitor.StatusActive}},
		{"success with unknown state changes nothing",
			monitor.Snapshot{State: monitor.StateActive, Status: monitor.StatusActive},
			monitor.Result{ScheduledFor: t0, Status: monitor.EvaluationSucceeded, State: monitor.StateUnknown},
			monitor.Outcome{From: monitor.StateActive, To: monitor.StateActive, Status: monitor.StatusActive}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := monitor.Apply(tt.snap, tt.res, 3); got != tt.want {
				t.Fatalf("Apply() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestNextRun(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 1, 12, 0, 30, 0, time.UTC)
	phases := map[time.Duration]bool{}
	for _, id := range []string{"a", "b", "c", "d", "e", "f"} {
		next := monitor.NextRun(id, time.Hour, now)
		if !next.After(now) || next.After(now.Add(time.Hour)) {
			t.Fatalf("NextRun(%s) = %s, want within (now, now+1h]", id, next)
		}
		if again := monitor.NextRun(id, time.Hour, now); !again.Equal(next) {
			t.Fatalf("NextRun is not deterministic: %s then %s", next, again)
		}
		if later := monitor.NextRun(id, time.Hour, next); later.Sub(next) != time.Hour {
			t.Fatalf("consecutive runs are %s apart, want 1h", later.Sub(next))
		}
		phases[next.Sub(now.Truncate(time.Hour))%time.Hour] = true
	}
	if len(phases) < 5 {
		t.Fatalf("monitors with the same interval share phases: %v", phases)
	}
}

func TestDraftValidate(t *testing.T) {
	t.Parallel()
	good := monitor.Draft{UserID: "u", Prompt: "price below 80", SourceURL: "https://shop.example/x", Interval: time.Hour, Timezone: "Europe/Paris"}
	if err := good.Validate(time.Minute); err != nil {
		t.Fatalf("valid draft rejected: %v", err)
	}
	bad := monitor.Draft{Prompt: "x", Name: strings.Repeat("n", 201), SourceURL: "ftp://x", Interval: time.Second, Timezone: "Mars/Olympus"}
	err := bad.Validate(time.Minute)
	var de *domain.Error
	if !errors.As(err, &de) || de.Code != domain.EINVALID {
		t.Fatalf("Validate() = %v, want EINVALID", err)
	}
	for _, f := range []string{"prompt", "name", "source_url", "interval", "timezone", "user_id"} {
		if de.Fields[f] == "" {
			t.Errorf("field %s not reported: %v", f, de.Fields)
		}
	}
}

func TestCronSchedule(t *testing.T) {
	t.Parallel()
	_, gap, err := monitor.ParseCron("*/15 * * * *")
	if err != nil || gap != 15*time.Minute {
		t.Fatalf("ParseCron = %v, %v", gap, err)
	}
	if _, _, err := monitor.ParseCron("every day"); err == nil {
		t.Fatal("bad cron accepted")
	}
	d := monitor.Draft{UserID: "u", Prompt: "price below 80", Cron: "0 9 * * 1-5", Timezone: "Europe/Paris"}
	if err := d.Validate(time.Minute); err != nil {
		t.Fatalf("weekday cron rejected: %v", err)
	}
	m := monitor.New("m", d, monitor.Spec{}, monitor.ClassifiedBy{}, time.Now())
	// Friday 2026-11-27 10:00 Paris is after 09:00, so the next run is Monday 09:00 Paris (08:00 UTC).
	next := m.NextRunAfter(time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC))
	if want := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC); !next.Equal(want) {
		t.Fatalf("next run = %s, want %s", next, want)
	}
	for _, bad := range []monitor.Draft{
		{UserID: "u", Prompt: "price below 80", Cron: "* * * * *"},                            // every minute, below a 5m minimum
		{UserID: "u", Prompt: "price below 80", Cron: "@hourly", Interval: time.Hour},         // both
		{UserID: "u", Prompt: "price below 80", Cron: "61 * * * *", Timezone: "Europe/Paris"}, // invalid
	} {
		var de *domain.Error
		if err := bad.Validate(5 * time.Minute); !errors.As(err, &de) || de.Fields["cron"] == "" {
			t.Errorf("Validate(%+v) = %v, want a cron field error", bad, err)
		}
	}
}

// TestApplyConfirm: with confirm N, N successful evaluations in a row must agree on a new
// state before it replaces the current one; failures and abstentions neither count nor
// break the streak, and a return to the current state ends it.
func TestApplyConfirm(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	s := monitor.Snapshot{State: monitor.StateInactive, Status: monitor.StatusActive, Confirm: 3}
	step := 0
	run := func(status monitor.EvaluationStatus, state monitor.State) monitor.Outcome {
		step++
		o := monitor.Apply(s, monitor.Result{ScheduledFor: t0.Add(time.Duration(step) * time.Minute), Status: status, State: state}, 5)
		slot := t0.Add(time.Duration(step) * time.Minute)
		s = monitor.Snapshot{State: o.To, Status: o.Status, LastEvaluationFor: &slot, ConsecutiveFailures: o.ConsecutiveFailures,
			Confirm: s.Confirm, PendingState: o.PendingState, PendingCount: o.PendingCount}
		return o
	}
	for i, tc := range []struct {
		status  monitor.EvaluationStatus
		state   monitor.State
		changed bool
		pending int
	}{
		{monitor.EvaluationSucceeded, monitor.StateActive, false, 1},
		{monitor.EvaluationSucceeded, monitor.StateActive, false, 2},
		{monitor.EvaluationSucceeded, monitor.StateInactive, false, 0}, // back: the streak ends
		{monitor.EvaluationSucceeded, monitor.StateActive, false, 1},
		{monitor.EvaluationFailed, monitor.StateUnknown, false, 1},    // neither counts nor breaks
		{monitor.EvaluationAbstained, monitor.StateUnknown, false, 1}, // likewise
		{monitor.EvaluationSucceeded, monitor.StateActive, false, 2},
		{monitor.EvaluationSucceeded, monitor.StateActive, true, 0}, // the third in a row flips it
		{monitor.EvaluationSucceeded, monitor.StateActive, false, 0},
	} {
		o := run(tc.status, tc.state)
		if o.Changed != tc.changed || o.PendingCount != tc.pending {
			t.Fatalf("step %d (%s %s): changed %v pending %d, want %v %d", i+1, tc.status, tc.state, o.Changed, o.PendingCount, tc.changed, tc.pending)
		}
	}
	if s.State != monitor.StateActive {
		t.Fatalf("state = %s", s.State)
	}
	// Without confirm (0 or 1) the first evaluation flips it, as before.
	o := monitor.Apply(monitor.Snapshot{State: monitor.StateUnknown, Status: monitor.StatusActive},
		monitor.Result{ScheduledFor: t0, Status: monitor.EvaluationSucceeded, State: monitor.StateActive}, 5)
	if !o.Changed || o.To != monitor.StateActive || o.PendingCount != 0 {
		t.Fatalf("confirm 1: %+v", o)
	}
}

func TestDraftConfirmLimits(t *testing.T) {
	t.Parallel()
	for confirm, ok := range map[int]bool{0: true, 1: true, 10: true, 11: false, -1: false} {
		d := monitor.Draft{UserID: "u", Prompt: "price below 80", Interval: time.Hour, Confirm: confirm}
		if err := d.Validate(time.Minute); (err == nil) != ok {
			t.Errorf("confirm %d: %v", confirm, err)
		}
	}
}

package app_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/domain/app"
	"github.com/vigilhq/vigil/domain/event"
	"github.com/vigilhq/vigil/domain/monitor"
)

func completedAt(monitorID string, slot time.Time, status monitor.EvaluationStatus, state monitor.State) event.EvaluationCompleted {
	return event.EvaluationCompleted{MonitorID: monitorID, ScheduledFor: slot, FinishedAt: slot.Add(time.Second), Status: status, State: state,
		Error: map[bool]string{true: "502 Bad Gateway"}[status == monitor.EvaluationFailed]}
}

func recordState(ms map[string]monitor.Snapshot) app.RecordState {
	st := app.RecordState{Monitors: map[string]app.MonitorRecord{}, Recorded: map[app.SlotKey]bool{}}
	for id, s := range ms {
		st.Monitors[id] = app.MonitorRecord{UserID: "u-" + id, Snapshot: s}
	}
	return st
}

func TestPlanRecordingAppliesInSlotOrder(t *testing.T) {
	t.Parallel()
	t0 := matchNow
	st := recordState(map[string]monitor.Snapshot{"m1": {State: monitor.StateInactive, Status: monitor.StatusActive}})
	evs := []event.EvaluationCompleted{ // arrival order is not slot order
		completedAt("m1", t0.Add(2*time.Minute), monitor.EvaluationSucceeded, monitor.StateInactive),
		completedAt("m1", t0.Add(time.Minute), monitor.EvaluationSucceeded, monitor.StateActive),
	}
	plan, err := app.PlanRecording(evs, st, app.RecordLimits{MaxFailures: 3}, sequentialIDs())
	require.NoError(t, err)
	require.Len(t, plan.Evaluations, 2)
	require.Len(t, plan.StateChanges, 2, "inactive -> active at +1m, active -> inactive at +2m")
	require.Equal(t, monitor.StateActive, plan.StateChanges[0].To)
	require.Equal(t, monitor.StateInactive, plan.StateChanges[1].To)
	require.Equal(t, "u-m1", plan.StateChanges[0].UserID)
	require.True(t, plan.Recordings[1].Outcome.Changed)
	require.Equal(t, monitor.StateActive, plan.Recordings[1].Outcome.To)
	require.Equal(t, monitor.StateInactive, plan.Recordings[0].Outcome.To)
	require.Len(t, plan.Monitors, 1, "one row update per monitor")
	final := plan.Monitors[0]
	require.Equal(t, monitor.StateInactive, final.Outcome.To)
	require.Equal(t, t0.Add(2*time.Minute), final.EvaluationFor)
	require.NotNil(t, final.StateChangedAt)
	require.Equal(t, t0.Add(2*time.Minute+time.Second), *final.StateChangedAt)
	require.Equal(t, monitor.StateActive, *plan.Evaluations[1].Previous, "the second evaluation saw the first's state")
}

func TestPlanRecordingDuplicatesStaleAndMissing(t *testing.T) {
	t.Parallel()
	t0 := matchNow
	last := t0.Add(10 * time.Minute)
	st := recordState(map[string]monitor.Snapshot{
		"m1": {State: monitor.StateActive, Status: monitor.StatusActive},
		"m2": {State: monitor.StateActive, Status: monitor.StatusActive, LastEvaluationFor: &last},
	})
	st.Recorded[app.SlotOf("m1", t0)] = true
	evs := []event.EvaluationCompleted{
		completedAt("m1", t0, monitor.EvaluationSucceeded, monitor.StateInactive),                    // recorded already
		completedAt("m1", t0.Add(time.Minute), monitor.EvaluationSucceeded, monitor.StateActive),     // new, no change
		completedAt("m1", t0.Add(time.Minute), monitor.EvaluationSucceeded, monitor.StateActive),     // twice in the batch
		completedAt("m2", t0.Add(5*time.Minute), monitor.EvaluationSucceeded, monitor.StateInactive), // older than the last applied
		completedAt("gone", t0, monitor.EvaluationSucceeded, monitor.StateActive),
	}
	plan, err := app.PlanRecording(evs, st, app.RecordLimits{MaxFailures: 3}, sequentialIDs())
	require.NoError(t, err)
	require.True(t, plan.Recordings[0].Duplicate)
	require.False(t, plan.Recordings[1].Duplicate)
	require.True(t, plan.Recordings[2].Duplicate, "a slot twice in one batch is stored once")
	require.True(t, plan.Recordings[3].Outcome.Stale)
	require.NotEmpty(t, plan.Recordings[3].EvaluationID, "a stale evaluation is kept as history")
	require.Nil(t, plan.Evaluations[len(plan.Evaluations)-1].Previous)
	require.True(t, plan.Recordings[4].Missing)
	require.Len(t, plan.Evaluations, 2)
	require.Empty(t, plan.StateChanges)
	require.Len(t, plan.Monitors, 1, "the stale one moves no monitor")
}

func TestPlanRecordingFailuresPutTheMonitorInError(t *testing.T) {
	t.Parallel()
	t0 := matchNow
	st := recordState(map[string]monitor.Snapshot{"m1": {State: monitor.StateActive, Status: monitor.StatusActive, ConsecutiveFailures: 1}})
	evs := []event.EvaluationCompleted{
		completedAt("m1", t0, monitor.EvaluationFailed, ""),
		completedAt("m1", t0.Add(time.Minute), monitor.EvaluationFailed, ""),
	}
	plan, err := app.PlanRecording(evs, st, app.RecordLimits{MaxFailures: 3}, sequentialIDs())
	require.NoError(t, err)
	require.Len(t, plan.Failing, 1, "the owner is told once, when the monitor enters error")
	require.Equal(t, plan.Evaluations[1].ID, plan.Failing[0].EvaluationID, "the third failure in a row made it")
	require.Equal(t, "u-m1", plan.Failing[0].UserID)
	require.Equal(t, monitor.StatusError, plan.Monitors[0].Outcome.Status)
	require.Equal(t, 3, plan.Monitors[0].Outcome.ConsecutiveFailures)
	require.Equal(t, "502 Bad Gateway", plan.Monitors[0].Outcome.LastError)
	require.Nil(t, plan.Monitors[0].StateChangedAt)
	require.Empty(t, plan.StateChanges, "failures never change the state")
}

func TestPlanRecordingIgnoresTheStateOfAnOlderVersion(t *testing.T) {
	t.Parallel()
	st := recordState(map[string]monitor.Snapshot{"m1": {State: monitor.StateUnknown, Status: monitor.StatusActive}})
	rec := st.Monitors["m1"]
	rec.Version = 3 // the prompt was edited after the slot was claimed
	st.Monitors["m1"] = rec
	old := completedAt("m1", matchNow, monitor.EvaluationSucceeded, monitor.StateActive)
	old.MonitorVersion = 2
	current := completedAt("m1", matchNow.Add(time.Minute), monitor.EvaluationSucceeded, monitor.StateInactive)
	current.MonitorVersion = 3
	plan, err := app.PlanRecording([]event.EvaluationCompleted{old, current}, st, app.RecordLimits{MaxFailures: 3}, sequentialIDs())
	require.NoError(t, err)
	require.True(t, plan.Recordings[0].Outcome.Stale, "judged with the old prompt: history only")
	require.NotEmpty(t, plan.Recordings[0].EvaluationID)
	require.Len(t, plan.StateChanges, 1)
	require.Equal(t, monitor.StateUnknown, plan.StateChanges[0].From, "the old evaluation did not move the state")
	require.Equal(t, monitor.StateInactive, plan.StateChanges[0].To)
}

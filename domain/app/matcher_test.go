package app_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/domain/app"
	"github.com/vigilhq/vigil/domain/event"
	"github.com/vigilhq/vigil/domain/monitor"
	"github.com/vigilhq/vigil/domain/trigger"
)

var matchNow = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// sequentialIDs makes ids n1, n2, ... so plans are comparable.
func sequentialIDs() func() (string, error) {
	n := 0
	return func() (string, error) { n++; return fmt.Sprintf("n%d", n), nil }
}

func change(monitorID, evaluationID string, from, to monitor.State) event.StateChanged {
	return event.StateChanged{MonitorID: monitorID, UserID: "u1", EvaluationID: evaluationID, From: from, To: to}
}

func candidate(id, monitorID string, cond trigger.Condition, freq trigger.Frequency, channel string, to ...string) app.Candidate {
	return app.Candidate{
		Trigger: trigger.Trigger{ID: id, MonitorID: monitorID, ActionID: "a-" + id, Condition: cond, Frequency: freq, Enabled: true},
		Channel: channel, Recipients: to, Owner: "ann@example.com",
	}
}

func state(cs ...app.Candidate) app.FiringState {
	st := app.FiringState{Candidates: map[string][]app.Candidate{}, Confirmed: map[string]map[string]bool{}, Fired: map[app.Fired]bool{}}
	for _, c := range cs {
		st.Candidates[c.Trigger.MonitorID] = append(st.Candidates[c.Trigger.MonitorID], c)
	}
	return st
}

func statuses(p app.FiringPlan) map[string]string {
	out := map[string]string{}
	for _, n := range p.Notifications {
		out[n.TriggerID+"/"+n.EvaluationID+"/"+n.Recipient] = n.Status
	}
	return out
}

func TestPlanFiringConditionsAndFrequencies(t *testing.T) {
	t.Parallel()
	st := state(
		candidate("t1", "m1", trigger.OnStateChange, trigger.Once, app.ChannelEmail),
		candidate("t2", "m1", trigger.OnBecomesActive, trigger.DailyDigest, app.ChannelEmail),
		candidate("t3", "m1", trigger.OnBecomesInactive, trigger.EveryTime, app.ChannelEmail),
		candidate("t4", "m1", trigger.OnBecomesActive, trigger.EveryTime, app.ChannelWebhook, "https://hooks.example/x"),
	)
	plan, err := app.PlanFiring([]event.StateChanged{change("m1", "e1", monitor.StateInactive, monitor.StateActive)}, st, matchNow, sequentialIDs())
	require.NoError(t, err)
	require.Equal(t, map[string]string{
		"t1/e1/ann@example.com":         app.NotificationPending,
		"t2/e1/ann@example.com":         app.NotificationDigestPending,
		"t4/e1/https://hooks.example/x": app.NotificationPending,
	}, statuses(plan), "becomes_inactive does not fire on inactive -> active")
	require.Equal(t, []app.TriggerFiring{
		{TriggerID: "t1", Times: 1, At: matchNow, Disable: true},
		{TriggerID: "t2", Times: 1, At: matchNow},
		{TriggerID: "t4", Times: 1, At: matchNow},
	}, plan.Triggers)
	require.Equal(t, matchNow, plan.At)
}

func TestPlanFiringOnceAndCooldownWithinABatch(t *testing.T) {
	t.Parallel()
	cooled := candidate("t2", "m1", trigger.OnStateChange, trigger.EveryTime, app.ChannelEmail)
	cooled.Trigger.Cooldown = time.Hour
	st := state(candidate("t1", "m1", trigger.OnStateChange, trigger.Once, app.ChannelEmail), cooled)
	changes := []event.StateChanged{
		change("m1", "e1", monitor.StateInactive, monitor.StateActive),
		change("m1", "e2", monitor.StateActive, monitor.StateInactive),
	}
	plan, err := app.PlanFiring(changes, st, matchNow, sequentialIDs())
	require.NoError(t, err)
	require.Equal(t, map[string]string{
		"t1/e1/ann@example.com": app.NotificationPending,
		"t2/e1/ann@example.com": app.NotificationPending,
	}, statuses(plan), "the once trigger is spent and the cooldown runs after the first change of the batch")
	require.Equal(t, []app.TriggerFiring{
		{TriggerID: "t1", Times: 1, At: matchNow, Disable: true},
		{TriggerID: "t2", Times: 1, At: matchNow},
	}, plan.Triggers)
}

func TestPlanFiringCountsEveryFiringOfABatch(t *testing.T) {
	t.Parallel()
	st := state(candidate("t1", "m1", trigger.OnStateChange, trigger.EveryTime, app.ChannelEmail))
	changes := []event.StateChanged{
		change("m1", "e1", monitor.StateInactive, monitor.StateActive),
		change("m1", "e2", monitor.StateActive, monitor.StateInactive),
		change("m1", "e2", monitor.StateActive, monitor.StateInactive), // the same change twice in one batch
	}
	plan, err := app.PlanFiring(changes, st, matchNow, sequentialIDs())
	require.NoError(t, err)
	require.Len(t, plan.Notifications, 2)
	require.Equal(t, []app.TriggerFiring{{TriggerID: "t1", Times: 2, At: matchNow}}, plan.Triggers)
}

func TestPlanFiringSkipsWhatAlreadyFired(t *testing.T) {
	t.Parallel()
	st := state(
		candidate("t1", "m1", trigger.OnBecomesActive, trigger.EveryTime, app.ChannelEmail),
		candidate("t2", "m1", trigger.OnBecomesActive, trigger.EveryTime, app.ChannelEmail),
	)
	st.Fired[app.Fired{TriggerID: "t1", EvaluationID: "e1"}] = true // a redelivered change
	plan, err := app.PlanFiring([]event.StateChanged{change("m1", "e1", monitor.StateUnknown, monitor.StateActive)}, st, matchNow, sequentialIDs())
	require.NoError(t, err)
	require.Equal(t, map[string]string{"t2/e1/ann@example.com": app.NotificationPending}, statuses(plan))
	require.Equal(t, []app.TriggerFiring{{TriggerID: "t2", Times: 1, At: matchNow}}, plan.Triggers, "t1 is not counted twice")
}

func TestPlanFiringRecipients(t *testing.T) {
	t.Parallel()
	st := state(candidate("t1", "m1", trigger.OnBecomesActive, trigger.EveryTime, app.ChannelEmail,
		"ann@example.com", "carol@example.com", "dan@example.com"))
	st.Confirmed["u1"] = map[string]bool{"carol@example.com": true}
	plan, err := app.PlanFiring([]event.StateChanged{change("m1", "e1", monitor.StateUnknown, monitor.StateActive)}, st, matchNow, sequentialIDs())
	require.NoError(t, err)
	require.Equal(t, map[string]string{
		"t1/e1/ann@example.com":   app.NotificationPending, // the owner's own address
		"t1/e1/carol@example.com": app.NotificationPending, // confirmed
		"t1/e1/dan@example.com":   app.NotificationSuppressed,
	}, statuses(plan))
	for _, n := range plan.Notifications {
		if n.Recipient == "dan@example.com" {
			require.Equal(t, app.UnconfirmedRecipient, n.Reason)
		}
		require.Equal(t, "a-t1", n.ActionID)
		require.Equal(t, "u1", n.UserID)
	}
	require.Equal(t, []app.TriggerFiring{{TriggerID: "t1", Times: 1, At: matchNow}}, plan.Triggers, "one firing, whatever the recipients")
}

func TestPlanFiringIDError(t *testing.T) {
	t.Parallel()
	st := state(candidate("t1", "m1", trigger.OnBecomesActive, trigger.EveryTime, app.ChannelEmail))
	_, err := app.PlanFiring([]event.StateChanged{change("m1", "e1", monitor.StateUnknown, monitor.StateActive)}, st, matchNow,
		func() (string, error) { return "", errors.New("no entropy") })
	require.ErrorContains(t, err, "no entropy")
}

// fakeTriggerStore persists plans in memory, as the Postgres store does: notifications are
// unique per trigger, evaluation and recipient.
type fakeTriggerStore struct {
	st    app.FiringState
	saved map[string]app.NewNotification
	err   error
}

func (f *fakeTriggerStore) FireTriggers(_ context.Context, _ []event.StateChanged, decide func(app.FiringState) (app.FiringPlan, error)) ([]string, error) {
	if f.err != nil {
		return nil, f.err
	}
	plan, err := decide(f.st)
	if err != nil {
		return nil, err
	}
	var created []string
	for _, n := range plan.Notifications {
		f.saved[n.ID] = n
		f.st.Fired[app.Fired{TriggerID: n.TriggerID, EvaluationID: n.EvaluationID}] = true
		created = append(created, n.ID)
	}
	return created, nil
}

func TestMatcherReportsPerChange(t *testing.T) {
	t.Parallel()
	store := &fakeTriggerStore{st: state(
		candidate("t1", "m1", trigger.OnBecomesActive, trigger.EveryTime, app.ChannelEmail, "ann@example.com", "carol@example.com"),
		candidate("t2", "m2", trigger.OnBecomesActive, trigger.EveryTime, app.ChannelEmail),
	), saved: map[string]app.NewNotification{}}
	m := app.NewMatcher(store, func() time.Time { return matchNow })
	changes := []event.StateChanged{
		change("m1", "e1", monitor.StateUnknown, monitor.StateActive),
		change("m2", "e2", monitor.StateActive, monitor.StateInactive),
		change("m2", "e3", monitor.StateInactive, monitor.StateActive),
	}
	got, err := m.Match(context.Background(), changes)
	require.NoError(t, err)
	require.Len(t, got, 3)
	require.Equal(t, []int{2, 0, 1}, []int{got[0].Notifications, got[1].Notifications, got[2].Notifications})
	require.Equal(t, []int{1, 0, 0}, []int{got[0].Suppressed, got[1].Suppressed, got[2].Suppressed}, "carol has not confirmed")
	require.Len(t, store.saved, 3)

	// The batch redelivered: nothing new.
	got, err = m.Match(context.Background(), changes)
	require.NoError(t, err)
	require.Equal(t, []int{0, 0, 0}, []int{got[0].Notifications, got[1].Notifications, got[2].Notifications})
	require.Zero(t, got[0].Suppressed)
	require.Len(t, store.saved, 3)

	store.err = errors.New("connection reset")
	_, err = m.Match(context.Background(), changes)
	require.ErrorContains(t, err, "connection reset")
}

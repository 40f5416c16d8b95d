package trigger_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/domain/monitor"
	"github.com/vigilhq/vigil/domain/trigger"
)

func TestSimulateAppliesFrequencyAndCooldown(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	A, I, U := monitor.StateActive, monitor.StateInactive, monitor.StateUnknown
	flips := []monitor.Flip{
		{At: t0, From: U, To: A},
		{At: t0.Add(10 * time.Minute), From: A, To: I},
		{At: t0.Add(20 * time.Minute), From: I, To: A},
		{At: t0.Add(3 * time.Hour), From: A, To: I},
		{At: t0.Add(4 * time.Hour), From: I, To: A},
	}
	active := trigger.Trigger{Condition: trigger.OnBecomesActive, Frequency: trigger.EveryTime}
	require.Len(t, trigger.Simulate(active, flips), 3, "unknown -> active counts")
	active.Cooldown = time.Hour
	require.Equal(t, []time.Time{t0, t0.Add(4 * time.Hour)}, trigger.Simulate(active, flips), "the one 20 minutes after is in the cooldown")
	once := trigger.Trigger{Condition: trigger.OnStateChange, Frequency: trigger.Once, Enabled: false}
	require.Equal(t, []time.Time{t0.Add(10 * time.Minute)}, trigger.Simulate(once, flips), "a once trigger fires one time, armed or not now")
	digest := trigger.Trigger{Condition: trigger.OnBecomesInactive, Frequency: trigger.DailyDigest}
	require.Len(t, trigger.Simulate(digest, flips), 2)
}

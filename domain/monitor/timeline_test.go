package monitor_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/domain/monitor"
)

func TestTimeline(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	h := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Hour) }
	trs := []monitor.Transition{
		{At: h(-5), From: monitor.StateUnknown, To: monitor.StateInactive}, // before the range
		{At: h(2), From: monitor.StateInactive, To: monitor.StateActive},
		{At: h(2), From: monitor.StateActive, To: monitor.StateActive}, // no change
		{At: h(7), From: monitor.StateActive, To: monitor.StateInactive},
		{At: h(10), From: monitor.StateInactive, To: monitor.StateActive}, // at the end: outside
	}
	segs := monitor.Timeline(monitor.StateInactive, trs, t0, h(10))
	require.Equal(t, []monitor.StateSegment{
		{State: monitor.StateInactive, From: t0, To: h(2)},
		{State: monitor.StateActive, From: h(2), To: h(7)},
		{State: monitor.StateInactive, From: h(7), To: h(10)},
	}, segs)
	in := monitor.TimeInState(segs)
	require.Equal(t, 5*time.Hour, in[monitor.StateActive])
	require.Equal(t, 5*time.Hour, in[monitor.StateInactive])
	require.Zero(t, in[monitor.StateUnknown])

	// No transitions: one segment; a change exactly at from replaces the initial state.
	require.Len(t, monitor.Timeline("", nil, t0, h(1)), 1)
	require.Equal(t, monitor.StateUnknown, monitor.Timeline("", nil, t0, h(1))[0].State)
	at := monitor.Timeline(monitor.StateUnknown, []monitor.Transition{{At: t0, To: monitor.StateActive}}, t0, h(1))
	require.Equal(t, []monitor.StateSegment{{State: monitor.StateActive, From: t0, To: h(1)}}, at)
	require.Nil(t, monitor.Timeline(monitor.StateActive, nil, h(1), t0))
}

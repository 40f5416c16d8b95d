package monitor_test

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/domain/monitor"
)

// history makes n observations of price, irregularly spaced, as a random walk.
func history(seed uint64, n int, t0 time.Time) []monitor.BacktestPoint {
	rng := rand.New(rand.NewPCG(seed, 1))
	v := 100.0
	out := make([]monitor.BacktestPoint, n)
	at := t0
	for i := range out {
		at = at.Add(time.Duration(20+rng.IntN(100)) * time.Minute)
		v = math.Max(1, v+rng.NormFloat64()*4)
		out[i] = monitor.BacktestPoint{At: at, Facts: []monitor.Fact{monitor.NumberFact("price", math.Round(v*100)/100, "USD", at)}}
	}
	return out
}

func price(p monitor.BacktestPoint) float64 { return *p.Facts[0].Number }

// reference judges a change rule at point i the slow, obvious way.
func reference(rule monitor.ChangeRule, pts []monitor.BacktestPoint, i int) monitor.State {
	window, _ := rule.WindowOf()
	cur := price(pts[i])
	b := map[bool]monitor.State{true: monitor.StateActive, false: monitor.StateInactive}
	if window == 0 || rule.Measure == "any" {
		if i == 0 {
			return monitor.StateUnknown
		}
		prev := price(pts[i-1])
		if rule.Measure == "any" {
			return b[cur != prev]
		}
		return movedBy(rule, cur, prev, prev)
	}
	since := pts[i].At.Add(-window)
	start := -1
	for j := 0; j < i; j++ {
		if !pts[j].At.After(since) {
			start = j
		}
	}
	if start < 0 {
		return monitor.StateUnknown
	}
	if rule.Baseline == monitor.BaselineSince {
		return movedBy(rule, cur, price(pts[start]), price(pts[start]))
	}
	low, high := price(pts[start]), price(pts[start])
	for j := 0; j < i; j++ {
		if !pts[j].At.Before(since) {
			low, high = math.Min(low, price(pts[j])), math.Max(high, price(pts[j]))
		}
	}
	return movedBy(rule, cur, low, high)
}

func movedBy(rule monitor.ChangeRule, cur, low, high float64) monitor.State {
	delta, base := cur-low, low
	if rule.Operator == "decreases" {
		delta, base = high-cur, high
	}
	if rule.Measure == "percent" {
		delta = delta / base * 100
	}
	return map[bool]monitor.State{true: monitor.StateActive, false: monitor.StateInactive}[delta >= rule.Threshold]
}

// referenceFlips applies confirm the obvious way.
func referenceFlips(states []monitor.State, confirm int) int {
	cur, pending, count, flips := monitor.StateUnknown, monitor.State(""), 0, 0
	for _, s := range states {
		switch {
		case s == monitor.StateUnknown:
		case s == cur:
			pending, count = "", 0
		default:
			if s == pending {
				count++
			} else {
				pending, count = s, 1
			}
			if count >= max(confirm, 1) {
				cur, pending, count = s, "", 0
				flips++
			}
		}
	}
	return flips
}

// TestReplayEqualsABruteForceReference: over random histories, every historical rule
// (any, since, within, absolute, percent, rises and falls) judges each point as a
// brute-force reference does, and the flips with confirm 1 and 3 are the reference's.
func TestReplayEqualsABruteForceReference(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	rules := []monitor.ChangeRule{
		{Fact: "price", Measure: "any", Operator: "changes"},
		{Fact: "price", Measure: "absolute", Operator: "increases", Threshold: 5},
		{Fact: "price", Measure: "absolute", Operator: "decreases", Threshold: 5, Window: "24h"},
		{Fact: "price", Measure: "percent", Operator: "increases", Threshold: 8, Window: "24h", Baseline: monitor.BaselineSince},
		{Fact: "price", Measure: "percent", Operator: "decreases", Threshold: 10, Window: "72h", Baseline: monitor.BaselineWithin},
		{Fact: "price", Measure: "absolute", Operator: "increases", Threshold: 3, Window: "6h", Baseline: monitor.BaselineSince},
	}
	for seed := range uint64(5) {
		pts := history(seed, 400, t0)
		from := pts[100].At // the first hundred only feed history
		for _, rule := range rules {
			judgedPts, states := monitor.JudgeChanges(rule, pts, from)
			require.Len(t, states, 300)
			for k, s := range states {
				require.Equal(t, reference(rule, pts, 100+k), s, "seed %d rule %+v point %d", seed, rule, 100+k)
			}
			for _, confirm := range []int{1, 3} {
				r := monitor.ReplayStates(judgedPts, states, confirm, monitor.StateUnknown)
				require.Len(t, r.Flips, referenceFlips(states, confirm), "seed %d rule %+v confirm %d", seed, rule, confirm)
			}
		}
	}
}

// A current_state condition's known crossings: the price goes below 80 three times.
func TestReplayStatesFlipsAtTheCrossings(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	prices := []float64{90, 85, 79, 78, 81, 95, 70, 72, 88, 60}
	var pts []monitor.BacktestPoint
	var states []monitor.State
	for i, p := range prices {
		at := t0.Add(time.Duration(i) * time.Hour)
		pts = append(pts, monitor.BacktestPoint{At: at, Facts: []monitor.Fact{monitor.NumberFact("price", p, "USD", at)}})
		states = append(states, map[bool]monitor.State{true: monitor.StateActive, false: monitor.StateInactive}[p < 80])
	}
	r := monitor.ReplayStates(pts, states, 1, monitor.StateUnknown)
	var to []monitor.State
	for _, f := range r.Flips {
		to = append(to, f.To)
	}
	require.Equal(t, []monitor.State{"inactive", "active", "inactive", "active", "inactive", "active"}, to)
	require.Equal(t, pts[2].At, r.Flips[1].At)
	// Confirm 2: two readings in a row must agree, so the lone 88 and 60 change nothing.
	r = monitor.ReplayStates(pts, states, 2, monitor.StateUnknown)
	require.Equal(t, []time.Time{pts[1].At, pts[3].At, pts[5].At, pts[7].At}, []time.Time{r.Flips[0].At, r.Flips[1].At, r.Flips[2].At, r.Flips[3].At})
	require.Len(t, r.Flips, 4)
}

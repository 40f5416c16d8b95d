package monitor

import (
	"sort"
	"time"
)

// BacktestPoint is what one stored evaluation observed: its facts at one time.
type BacktestPoint struct {
	At    time.Time
	Facts []Fact
}

// Flip is a change of state a replay finds.
type Flip struct {
	At       time.Time
	From, To State
}

// Replay is what a monitor would have done over stored facts: the state each replayed
// evaluation judged, and the flips those states make through Apply (confirm included).
type Replay struct {
	Judged []State // one per replayed point, in order
	Flips  []Flip
	Final  State
}

// ReplayStates runs judged states through the state machine the recorder uses, from
// initial, with confirm, and returns the flips.
func ReplayStates(points []BacktestPoint, judged []State, confirm int, initial State) Replay {
	if initial == "" {
		initial = StateUnknown
	}
	s := Snapshot{State: initial, Status: StatusActive, Confirm: confirm}
	r := Replay{Judged: judged}
	for i, p := range points {
		status := EvaluationSucceeded
		if judged[i] == StateUnknown {
			status = EvaluationAbstained
		}
		out := Apply(s, Result{ScheduledFor: p.At, Status: status, State: judged[i]}, 1<<30)
		if out.Changed {
			r.Flips = append(r.Flips, Flip{At: p.At, From: out.From, To: out.To})
		}
		at := p.At
		s.State, s.PendingState, s.PendingCount, s.LastEvaluationFor = out.To, out.PendingState, out.PendingCount, &at
	}
	r.Final = s.State
	return r
}

// JudgeChanges judges a historical_change rule at each point at or after from, with
// CompareHistory and the history the recorder would have read: every earlier point,
// including those before from that the window reaches back to. It returns the points
// judged and their states.
func JudgeChanges(rule ChangeRule, points []BacktestPoint, from time.Time) ([]BacktestPoint, []State) {
	window, _ := rule.WindowOf()
	var series []Point // every observation of the rule's fact, in time order
	var owners []int   // the point each observation belongs to
	for i, p := range points {
		for _, f := range p.Facts {
			if f.Key == rule.Fact {
				series = append(series, Point{At: p.At, Number: f.Number, Text: f.Text})
				owners = append(owners, i)
				break
			}
		}
	}
	var judgedPoints []BacktestPoint
	var states []State
	for k, cur := range series {
		if cur.At.Before(from) {
			continue
		}
		earlier := series[:k]
		var h History
		if k > 0 {
			h.Previous = &series[k-1]
		}
		if window > 0 {
			since := cur.At.Add(-window)
			j := sort.Search(len(earlier), func(i int) bool { return !earlier[i].At.Before(since) })
			h.InWindow = earlier[j:]
			// The newest observation at or before the window's start, as FactHistory reads it.
			if j < len(earlier) && earlier[j].At.Equal(since) {
				h.AtStart = &earlier[j]
			} else if j > 0 {
				h.AtStart = &earlier[j-1]
			}
		}
		judgedPoints = append(judgedPoints, points[owners[k]])
		states = append(states, CompareHistory(rule, cur, h).State)
	}
	return judgedPoints, states
}

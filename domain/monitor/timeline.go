package monitor

import "time"

// Transition is a change of a monitor's state.
type Transition struct {
	At       time.Time
	From, To State
}

// StateSegment is a stretch of time a monitor spent in one state.
type StateSegment struct {
	State    State
	From, To time.Time
}

// Duration is how long the segment lasted.
func (s StateSegment) Duration() time.Duration { return s.To.Sub(s.From) }

// Timeline cuts [from, to) into the states a monitor was in: initial until the first
// transition, then each transition's state until the next. Transitions outside the range
// are ignored; they come in time order.
func Timeline(initial State, transitions []Transition, from, to time.Time) []StateSegment {
	if !from.Before(to) {
		return nil
	}
	if initial == "" {
		initial = StateUnknown
	}
	out := []StateSegment{{State: initial, From: from, To: to}}
	for _, tr := range transitions {
		if tr.At.Before(from) || !tr.At.Before(to) {
			continue
		}
		last := &out[len(out)-1]
		if tr.To == last.State {
			continue
		}
		if !tr.At.After(last.From) {
			last.State = tr.To // a change at the very start replaces the initial state
			continue
		}
		last.To = tr.At
		out = append(out, StateSegment{State: tr.To, From: tr.At, To: to})
	}
	return out
}

// TimeInState sums the segments' durations by state; every state is present.
func TimeInState(segments []StateSegment) map[State]time.Duration {
	out := map[State]time.Duration{StateActive: 0, StateInactive: 0, StateUnknown: 0}
	for _, s := range segments {
		out[s.State] += s.Duration()
	}
	return out
}

package monitor

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Baselines of a ChangeRule window.
const (
	BaselineWithin = "within"
	BaselineSince  = "since"
)

// Point is one stored observation of a fact.
type Point struct {
	At     time.Time
	Number *float64
	Text   *string
}

// History is what CompareHistory needs from storage for one fact: every observation inside
// the window (before the current one) and the newest observation at or before the window's
// start (the baseline for "since", and proof that history reaches back a full window).
// Without a window, Previous alone is used.
type History struct {
	InWindow []Point
	AtStart  *Point // newest observation at or before current time - window
	Previous *Point // newest observation before the current one
}

// WindowOf returns the rule's window, 0 when it has none.
func (r ChangeRule) WindowOf() (time.Duration, error) {
	if r.Window == "" {
		return 0, nil
	}
	w, err := time.ParseDuration(r.Window)
	if err != nil || w <= 0 {
		return 0, fmt.Errorf("window %q is not a positive duration", r.Window)
	}
	return w, nil
}

// CompareHistory judges a historical_change rule: the current observation against stored
// ones. The system, never the AI, does this. A rise within a window is measured from the
// lowest value inside it, a drop from the highest, so a move at any point counts; "since"
// compares with the value one window ago. It abstains (StateUnknown) while history does not
// reach back a full window and when a percentage change has a zero baseline.
func CompareHistory(rule ChangeRule, current Point, h History) Verdict {
	window, err := rule.WindowOf()
	if err != nil {
		return Verdict{State: StateUnknown, Explanation: "The change rule is invalid: " + err.Error()}
	}
	if current.Text != nil && current.Number == nil {
		return compareText(rule, current, h)
	}
	if current.Number == nil {
		return Verdict{State: StateUnknown, Explanation: fmt.Sprintf("No value of %s was extracted.", rule.Fact)}
	}
	cur := *current.Number
	if window == 0 || rule.Measure == "any" {
		if h.Previous == nil || h.Previous.Number == nil {
			return Verdict{State: StateUnknown, Explanation: fmt.Sprintf("First observation of %s (%s); the next one is compared with it.", rule.Fact, num(cur))}
		}
		return judge(rule, cur, *h.Previous.Number, *h.Previous.Number, "the previous observation")
	}
	if h.AtStart == nil || h.AtStart.Number == nil {
		until := current.At.Add(window)
		if len(h.InWindow) > 0 {
			until = earliest(h.InWindow).Add(window)
		}
		return Verdict{State: StateUnknown, Explanation: fmt.Sprintf("Collecting history until %s.", until.UTC().Format(time.RFC3339))}
	}
	if rule.Baseline == BaselineSince {
		return judge(rule, cur, *h.AtStart.Number, *h.AtStart.Number, "its value "+rule.Window+" ago")
	}
	low, high := *h.AtStart.Number, *h.AtStart.Number
	for _, p := range h.InWindow {
		if p.Number != nil {
			low, high = math.Min(low, *p.Number), math.Max(high, *p.Number)
		}
	}
	return judge(rule, cur, low, high, "within "+rule.Window)
}

// judge compares cur with low (for rises) and high (for drops).
func judge(rule ChangeRule, cur, low, high float64, against string) Verdict {
	var delta, base float64
	var verb string
	switch rule.Operator {
	case "increases":
		delta, base, verb = cur-low, low, "rose"
	case "decreases":
		delta, base, verb = high-cur, high, "fell"
	default: // changes: the larger move either way
		if cur-low >= high-cur {
			delta, base, verb = cur-low, low, "moved"
		} else {
			delta, base, verb = high-cur, high, "moved"
		}
	}
	if rule.Measure == "any" {
		holds := cur != low || cur != high
		state := map[bool]State{true: StateActive, false: StateInactive}[holds]
		return Verdict{State: state, Confidence: 1, Explanation: fmt.Sprintf("The %s is %s; it was %s at %s.", rule.Fact, num(cur), num(base), against)}
	}
	amount, unit := delta, ""
	if rule.Measure == "percent" {
		if base == 0 {
			return Verdict{State: StateUnknown, Explanation: fmt.Sprintf("The %s was 0, so a percentage change is undefined.", rule.Fact)}
		}
		amount, unit = delta/math.Abs(base)*100, "%"
	}
	holds := amount >= rule.Threshold
	state := map[bool]State{true: StateActive, false: StateInactive}[holds]
	return Verdict{State: state, Confidence: 1, Explanation: fmt.Sprintf("The %s %s %s%s %s (from %s to %s); the rule asks for %s%s.",
		rule.Fact, verb, num(math.Max(amount, 0)), unit, against, num(base), num(cur), num(rule.Threshold), unit)}
}

func compareText(rule ChangeRule, current Point, h History) Verdict {
	if h.Previous == nil || h.Previous.Text == nil {
		return Verdict{State: StateUnknown, Explanation: fmt.Sprintf("First observation of %s; the next one is compared with it.", rule.Fact)}
	}
	changed := strings.TrimSpace(*current.Text) != strings.TrimSpace(*h.Previous.Text)
	if changed {
		return Verdict{State: StateActive, Confidence: 1, Explanation: fmt.Sprintf("The %s changed from %q to %q.", rule.Fact, clip(*h.Previous.Text), clip(*current.Text))}
	}
	return Verdict{State: StateInactive, Confidence: 1, Explanation: fmt.Sprintf("The %s is unchanged.", rule.Fact)}
}

func earliest(ps []Point) time.Time {
	t := ps[0].At
	for _, p := range ps[1:] {
		if p.At.Before(t) {
			t = p.At
		}
	}
	return t
}

func num(v float64) string { return strconv.FormatFloat(math.Round(v*100)/100, 'f', -1, 64) }

func clip(s string) string {
	if r := []rune(strings.TrimSpace(s)); len(r) > 80 {
		return string(r[:80]) + "…"
	}
	return strings.TrimSpace(s)
}

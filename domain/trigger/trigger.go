// Package trigger holds the rules that decide when a monitor's state change fires an action.
package trigger

import (
	"time"

	"github.com/vigilhq/vigil/domain/monitor"
)

// Condition is the kind of transition a trigger reacts to.
type Condition string

// Conditions.
const (
	OnStateChange     Condition = "state_change"     // any transition between active and inactive
	OnBecomesActive   Condition = "becomes_active"   // inactive or unknown -> active
	OnBecomesInactive Condition = "becomes_inactive" // active -> inactive
)

// Frequency says how often a trigger may fire.
type Frequency string

// Frequencies.
const (
	EveryTime   Frequency = "every_time"
	Once        Frequency = "once"
	DailyDigest Frequency = "daily_digest"
)

// Trigger links a monitor to an action.
type Trigger struct {
	ID          string
	MonitorID   string
	ActionID    string
	Condition   Condition
	Frequency   Frequency
	Cooldown    time.Duration
	Enabled     bool
	FiredCount  int
	LastFiredAt *time.Time
}

// Matches reports whether the transition from -> to satisfies condition c.
func (c Condition) Matches(from, to monitor.State) bool {
	switch c {
	case OnStateChange:
		return (from == monitor.StateActive && to == monitor.StateInactive) ||
			(from == monitor.StateInactive && to == monitor.StateActive)
	case OnBecomesActive:
		return to == monitor.StateActive && from != monitor.StateActive
	case OnBecomesInactive:
		return from == monitor.StateActive && to == monitor.StateInactive
	}
	return false
}

// Firing is what a trigger does for one matching transition.
type Firing struct {
	Digest  bool // collect into the user's daily digest instead of sending now
	Disable bool // a once trigger disarms itself
}

// Fire decides whether t fires for the transition at now, and how.
func (t Trigger) Fire(from, to monitor.State, now time.Time) (Firing, bool) {
	if !t.Enabled || !t.Condition.Matches(from, to) {
		return Firing{}, false
	}
	if t.Cooldown > 0 && t.LastFiredAt != nil && now.Sub(*t.LastFiredAt) < t.Cooldown {
		return Firing{}, false
	}
	switch t.Frequency {
	case Once:
		return Firing{Disable: true}, true
	case DailyDigest:
		return Firing{Digest: true}, true
	}
	return Firing{}, true
}

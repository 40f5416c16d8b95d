// Package trigger holds the rules that decide when a monitor's state change fires an action.
package trigger

import (
	"time"

	"github.com/vigilhq/vigil/domain"
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
	CreatedAt   time.Time
	UpdatedAt   time.Time
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

// CooldownMax bounds a trigger's cooldown.
const CooldownMax = 7 * 24 * time.Hour

// Valid reports whether c is a known condition.
func (c Condition) Valid() bool {
	return c == OnStateChange || c == OnBecomesActive || c == OnBecomesInactive
}

// Valid reports whether f is a known frequency.
func (f Frequency) Valid() bool { return f == EveryTime || f == Once || f == DailyDigest }

// Spec is what a user asks of a new trigger.
type Spec struct {
	ActionID  string
	Condition Condition
	Frequency Frequency
	Cooldown  time.Duration
	Enabled   bool
}

// DefaultSpec is the trigger a monitor gets when its request names none: tell the user
// when the condition starts to hold, every time, which is what "tell me when…" asks for.
func DefaultSpec(actionID string) Spec {
	return Spec{ActionID: actionID, Condition: OnBecomesActive, Frequency: EveryTime, Enabled: true}
}

// Validate returns EINVALID naming each bad field, with field names prefixed by prefix
// ("" or "triggers[0].").
func (s Spec) Validate(prefix string) error {
	fields := map[string]string{}
	if s.ActionID == "" {
		fields[prefix+"action_id"] = "is required"
	}
	if !s.Condition.Valid() {
		fields[prefix+"condition"] = "must be state_change, becomes_active or becomes_inactive"
	}
	if !s.Frequency.Valid() {
		fields[prefix+"frequency"] = "must be every_time, once or daily_digest"
	}
	if s.Cooldown < 0 || s.Cooldown > CooldownMax {
		fields[prefix+"cooldown"] = "must be from 0s to 7d"
	} else if s.Cooldown%time.Second != 0 {
		fields[prefix+"cooldown"] = "must be a whole number of seconds"
	}
	if len(fields) == 0 {
		return nil
	}
	return &domain.Error{Code: domain.EINVALID, Message: "The trigger has invalid fields.", Fields: fields}
}

// Changes is a partial update of a trigger; nil fields stay as they are.
type Changes struct {
	ActionID  *string
	Condition *Condition
	Frequency *Frequency
	Cooldown  *time.Duration
	Enabled   *bool
}

// Apply changes t after validating the result. Enabling a once trigger that has fired
// re-arms it: it fires again on its next matching transition.
func (t *Trigger) Apply(c Changes) error {
	s := Spec{ActionID: t.ActionID, Condition: t.Condition, Frequency: t.Frequency, Cooldown: t.Cooldown, Enabled: t.Enabled}
	if c.ActionID != nil {
		s.ActionID = *c.ActionID
	}
	if c.Condition != nil {
		s.Condition = *c.Condition
	}
	if c.Frequency != nil {
		s.Frequency = *c.Frequency
	}
	if c.Cooldown != nil {
		s.Cooldown = *c.Cooldown
	}
	if c.Enabled != nil {
		s.Enabled = *c.Enabled
	}
	if err := s.Validate(""); err != nil {
		return err
	}
	t.ActionID, t.Condition, t.Frequency, t.Cooldown, t.Enabled = s.ActionID, s.Condition, s.Frequency, s.Cooldown, s.Enabled
	return nil
}

// CheckAction returns EINVALID, naming field, when a trigger of frequency f cannot use an
// action of type actionType: a daily digest is an email, so it needs an email action.
func CheckAction(f Frequency, actionType, field string) error {
	if f == DailyDigest && actionType != "email" {
		return &domain.Error{Code: domain.EINVALID, Message: "The trigger has invalid fields.",
			Fields: map[string]string{field: "daily_digest needs an email action; a webhook is called every_time or once"}}
	}
	return nil
}

// Simulate replays flips through a trigger as the matcher would have, from an armed
// trigger that never fired: cooldowns hold, a once trigger fires a single time. It
// returns when it would have fired.
func Simulate(t Trigger, flips []monitor.Flip) []time.Time {
	t.Enabled, t.LastFiredAt, t.FiredCount = true, nil, 0
	var fired []time.Time
	for _, f := range flips {
		firing, ok := t.Fire(f.From, f.To, f.At)
		if !ok {
			continue
		}
		at := f.At
		fired, t.LastFiredAt = append(fired, at), &at
		if firing.Disable {
			t.Enabled = false
		}
	}
	return fired
}

package app

import (
	"context"
	"fmt"
	"time"

	"github.com/vigilhq/vigil/domain/event"
)

// TriggerStore fires triggers.
type TriggerStore interface {
	// FireTriggers, in one transaction: finds the monitor's enabled triggers with enabled
	// actions, asks trigger.Trigger.Fire for each, creates one notification per firing
	// trigger (unique per trigger and evaluation, so redelivery creates none), applies the
	// frequency (a once trigger disables itself; digest ones wait for the digest), and
	// appends NotificationRequested to the outbox for each notification to send now.
	// Returns the ids of the notifications created.
	FireTriggers(ctx context.Context, sc event.StateChanged, now time.Time) ([]string, error)
}

// Matcher is the MatchTriggers use case.
type Matcher struct {
	store TriggerStore
	now   func() time.Time
}

// NewMatcher returns a Matcher.
func NewMatcher(store TriggerStore, now func() time.Time) *Matcher {
	return &Matcher{store: store, now: now}
}

// Match fires the triggers of one state change.
func (m *Matcher) Match(ctx context.Context, sc event.StateChanged) ([]string, error) {
	ids, err := m.store.FireTriggers(ctx, sc, m.now().UTC())
	if err != nil {
		return nil, fmt.Errorf("fire triggers of %s: %w", sc.MonitorID, err)
	}
	return ids, nil
}

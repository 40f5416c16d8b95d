package app

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/vigilhq/vigil/domain/event"
	"github.com/vigilhq/vigil/domain/monitor"
	"github.com/vigilhq/vigil/domain/trigger"
)

// Notification statuses the matcher creates.
const (
	NotificationPending       = "pending"        // to send now
	NotificationDigestPending = "digest_pending" // kept for the daily digest
	NotificationSuppressed    = "suppressed"     // recorded with the reason, never sent
)

// UnconfirmedRecipient is why a delivery to an address that has not confirmed is held back.
const UnconfirmedRecipient = "The recipient has not confirmed that they want these emails yet."

// Candidate is an enabled trigger, with its enabled action, that a state change may fire.
type Candidate struct {
	Trigger trigger.Trigger
	Channel string // ChannelEmail or ChannelWebhook
	// Recipients are the email action's addresses (none: the owner's) or the webhook's URL.
	Recipients []string
	Owner      string // the account's own address, lower-cased
}

// Fired names a trigger that already fired for an evaluation.
type Fired struct{ TriggerID, EvaluationID string }

// FiringState is what the matcher decides on, loaded in the transaction that persists the
// plan with the monitors' triggers locked, so concurrent matchers agree on once and cooldown.
type FiringState struct {
	// Candidates are the enabled triggers of each monitor, ordered by id.
	Candidates map[string][]Candidate
	// Confirmed holds, per user, the addresses that confirmed they want the emails.
	Confirmed map[string]map[string]bool
	// Fired holds the triggers that already fired for the evaluations of the changes: a
	// redelivered change fires nothing again.
	Fired map[Fired]bool
}

// NewNotification is a notification the matcher creates.
type NewNotification struct {
	ID           string
	UserID       string
	MonitorID    string
	TriggerID    string
	ActionID     string
	EvaluationID string
	Channel      string
	Recipient    string
	From, To     monitor.State
	Status       string // NotificationPending, NotificationDigestPending or NotificationSuppressed
	Reason       string // why it is suppressed
}

// TriggerFiring is how a trigger changes after firing.
type TriggerFiring struct {
	TriggerID string
	Times     int       // how many changes of the batch it fired for
	At        time.Time // the last
	Disable   bool      // a once trigger disarms itself
}

// FiringPlan is what the matcher decided: the notifications to create and the triggers that
// fired. The store appends NotificationRequested for each pending notification it created.
type FiringPlan struct {
	At            time.Time // when it was decided
	Notifications []NewNotification
	Triggers      []TriggerFiring
}

// TriggerStore fires triggers.
type TriggerStore interface {
	// FireTriggers, in one transaction: locks and loads the FiringState of the changes'
	// monitors and evaluations, calls decide with it, and persists the plan: it inserts the
	// notifications (unique per trigger, evaluation and recipient, so a redelivered change
	// creates none), updates the triggers that fired, and appends NotificationRequested to
	// the outbox for each pending notification. It returns the ids of the notifications
	// created.
	FireTriggers(ctx context.Context, changes []event.StateChanged, decide func(FiringState) (FiringPlan, error)) ([]string, error)
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

// newNotificationID makes time-ordered notification ids.
func newNotificationID() (string, error) {
	id, err := uuid.NewV7()
	return id.String(), err
}

// Matched is what one state change of a batch fired.
type Matched struct {
	Change        event.StateChanged
	Notifications int // created, of any status
	Suppressed    int // of which held back, for SuppressedUnconfirmed: the only one a matcher decides
}

// Match fires the triggers of a batch of state changes in one transaction. Redelivered
// changes fire nothing again.
func (m *Matcher) Match(ctx context.Context, changes []event.StateChanged) ([]Matched, error) {
	var plan FiringPlan
	created, err := m.store.FireTriggers(ctx, changes, func(st FiringState) (FiringPlan, error) {
		var err error
		plan, err = PlanFiring(changes, st, m.now().UTC(), newNotificationID)
		return plan, err
	})
	if err != nil {
		return nil, fmt.Errorf("fire triggers of %d state changes: %w", len(changes), err)
	}
	inserted := make(map[string]bool, len(created))
	for _, id := range created {
		inserted[id] = true
	}
	perEvaluation, suppressed := map[string]int{}, map[string]int{}
	for _, n := range plan.Notifications {
		if inserted[n.ID] {
			perEvaluation[n.EvaluationID]++
			if n.Status == NotificationSuppressed {
				suppressed[n.EvaluationID]++
			}
		}
	}
	out := make([]Matched, len(changes))
	for i, sc := range changes {
		out[i] = Matched{Change: sc, Notifications: perEvaluation[sc.EvaluationID], Suppressed: suppressed[sc.EvaluationID]}
		delete(perEvaluation, sc.EvaluationID) // a change listed twice counts once
		delete(suppressed, sc.EvaluationID)
	}
	return out, nil
}

// PlanFiring decides, in order, which triggers each change fires and the notifications
// they make: one per recipient of an email action, one for a webhook. A trigger fires for
// a change when trigger.Trigger.Fire says so, taking into account the firings before it in
// the same batch (a once trigger fires once, a cooldown counts from the last firing). An
// address other than the owner's that has not confirmed is recorded as suppressed, with
// the reason, so the user sees why it got nothing.
func PlanFiring(changes []event.StateChanged, st FiringState, now time.Time, newID func() (string, error)) (FiringPlan, error) {
	plan := FiringPlan{At: now}
	triggers := map[string]*trigger.Trigger{} // as changed by the firings so far
	firings := map[string]int{}               // trigger id -> index in plan.Triggers
	done := map[Fired]bool{}
	for _, sc := range changes {
		for _, c := range st.Candidates[sc.MonitorID] {
			key := Fired{TriggerID: c.Trigger.ID, EvaluationID: sc.EvaluationID}
			if st.Fired[key] || done[key] {
				continue
			}
			t, ok := triggers[c.Trigger.ID]
			if !ok {
				tc := c.Trigger
				t = &tc
				triggers[c.Trigger.ID] = t
			}
			firing, ok := t.Fire(sc.From, sc.To, now)
			if !ok {
				continue
			}
			done[key] = true
			recipients := c.Recipients
			if len(recipients) == 0 {
				recipients = []string{c.Owner}
			}
			for _, to := range recipients {
				id, err := newID()
				if err != nil {
					return FiringPlan{}, fmt.Errorf("new notification id: %w", err)
				}
				n := NewNotification{ID: id, UserID: sc.UserID, MonitorID: sc.MonitorID, TriggerID: t.ID, ActionID: t.ActionID,
					EvaluationID: sc.EvaluationID, Channel: c.Channel, Recipient: to, From: sc.From, To: sc.To, Status: NotificationPending}
				if firing.Digest {
					n.Status = NotificationDigestPending
				}
				if c.Channel == ChannelEmail && to != c.Owner && !st.Confirmed[sc.UserID][to] {
					n.Status, n.Reason = NotificationSuppressed, SuppressedUnconfirmed.Reason
				}
				plan.Notifications = append(plan.Notifications, n)
			}
			fired := now
			t.FiredCount++
			t.LastFiredAt = &fired
			t.Enabled = t.Enabled && !firing.Disable
			i, ok := firings[t.ID]
			if !ok {
				i = len(plan.Triggers)
				firings[t.ID] = i
				plan.Triggers = append(plan.Triggers, TriggerFiring{TriggerID: t.ID})
			}
			plan.Triggers[i].Times++
			plan.Triggers[i].At = now
			plan.Triggers[i].Disable = plan.Triggers[i].Disable || firing.Disable
		}
	}
	return plan, nil
}

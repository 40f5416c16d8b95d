package app

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/account"
)

// EmailEvent is what an email provider reports about a message after it accepted it.
type EmailEvent struct {
	Type           string // the provider's event name: delivered, bounce, dropped, spamreport...
	Email          string
	NotificationID string // from the Message-ID Vigil set; "" when unknown
	Reason         string
	At             time.Time
}

// Suppression reasons.
const (
	SuppressBounce    = "bounce"
	SuppressComplaint = "complaint"
	SuppressManual    = "manual"
)

// EmailEffect is what one provider event does: the notification's new status (and the
// statuses it may replace) and the reason to suppress the address, each "" for none.
type EmailEffect struct {
	Status   string
	From     []string
	Suppress string
}

// EffectOf returns what a provider event of type typ does. A bounce or a drop (the
// provider refusing an address it knows to be bad) suppresses the address; a spam report
// suppresses it as a complaint; delivered confirms a sent notification. Other events
// (opens, clicks, deferrals) change nothing.
func EffectOf(typ string) EmailEffect {
	switch strings.ToLower(typ) {
	case "delivered":
		return EmailEffect{Status: "delivered", From: []string{"sent"}}
	case "bounce", "dropped":
		return EmailEffect{Status: "bounced", From: []string{"sent", "delivered"}, Suppress: SuppressBounce}
	case "spamreport":
		return EmailEffect{Status: "complained", From: []string{"sent", "delivered"}, Suppress: SuppressComplaint}
	}
	return EmailEffect{}
}

// AppliedEmailEvent is one event with its effect, as the store applies it.
type AppliedEmailEvent struct {
	EmailEvent
	Effect EmailEffect
}

// EmailEventStore applies provider events.
type EmailEventStore interface {
	// ApplyEmailEvents, in one transaction: moves each event's notification (when known and
	// in one of Effect.From) to Effect.Status, and puts each address to suppress on the
	// suppression list with the reason, keeping an earlier entry.
	ApplyEmailEvents(ctx context.Context, events []AppliedEmailEvent) error
}

// EmailEvents is the bounces and complaints use case.
type EmailEvents struct {
	store EmailEventStore
}

// NewEmailEvents returns the bounces and complaints use case.
func NewEmailEvents(store EmailEventStore) *EmailEvents { return &EmailEvents{store: store} }

// Handle applies a provider's events and returns how many had an effect.
func (e *EmailEvents) Handle(ctx context.Context, events []EmailEvent) (int, error) {
	var applied []AppliedEmailEvent
	for _, ev := range events {
		eff := EffectOf(ev.Type)
		ev.Email = strings.ToLower(strings.TrimSpace(ev.Email))
		if eff.Status == "" || ev.Email == "" {
			continue
		}
		applied = append(applied, AppliedEmailEvent{EmailEvent: ev, Effect: eff})
	}
	if len(applied) == 0 {
		return 0, nil
	}
	if err := e.store.ApplyEmailEvents(ctx, applied); err != nil {
		return 0, fmt.Errorf("apply %d email events: %w", len(applied), err)
	}
	return len(applied), nil
}

// Suppression is one address Vigil never mails.
type Suppression struct {
	Email     string
	Reason    string
	Detail    string
	CreatedAt time.Time
}

// SuppressionStore lists and removes suppressions.
type SuppressionStore interface {
	// ListSuppressions returns up to limit suppressions whose address contains q, by
	// address, after the address after ("" for the first page).
	ListSuppressions(ctx context.Context, q, after string, limit int) ([]Suppression, error)
	// DeleteSuppression removes one; ENOTFOUND when the address is not suppressed.
	DeleteSuppression(ctx context.Context, email string) error
}

// RoleFinder tells an actor's role.
type RoleFinder interface {
	FindUserByID(ctx context.Context, id string) (*account.User, error)
}

// SuppressionService is the administrators' view of the suppression list.
type SuppressionService struct {
	store SuppressionStore
	users RoleFinder
	audit AuditRecorder
	now   func() time.Time
}

// NewSuppressionService returns the suppression list use cases.
func NewSuppressionService(store SuppressionStore, users RoleFinder, audit AuditRecorder, now func() time.Time) *SuppressionService {
	return &SuppressionService{store: store, users: users, audit: audit, now: now}
}

func (s *SuppressionService) admin(ctx context.Context, actorID string) error {
	u, err := s.users.FindUserByID(ctx, actorID)
	if err != nil {
		return fmt.Errorf("find actor: %w", err)
	}
	if u.Role != account.RoleAdmin {
		return domain.Errorf(domain.EFORBIDDEN, "Only administrators manage the suppression list.")
	}
	return nil
}

// List returns a page of suppressions; EFORBIDDEN for non-administrators.
func (s *SuppressionService) List(ctx context.Context, actorID, q, after string, limit int) ([]Suppression, error) {
	if err := s.admin(ctx, actorID); err != nil {
		return nil, err
	}
	return s.store.ListSuppressions(ctx, strings.ToLower(strings.TrimSpace(q)), strings.ToLower(after), limit)
}

// Remove takes an address off the list, so Vigil mails it again; EFORBIDDEN for
// non-administrators.
func (s *SuppressionService) Remove(ctx context.Context, actorID, email string) error {
	if err := s.admin(ctx, actorID); err != nil {
		return err
	}
	email = strings.ToLower(strings.TrimSpace(email))
	if err := s.store.DeleteSuppression(ctx, email); err != nil {
		return err
	}
	return recordAudit(ctx, s.audit, s.now(), actorID, "suppression_removed", "email", email, nil)
}

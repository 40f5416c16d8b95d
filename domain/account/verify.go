package account

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/vigilhq/vigil/domain"
)

// ActionEmailVerified is the audit action of a confirmed account address.
const ActionEmailVerified = "email_verified"

// WelcomeMail is the email a new account with a password gets: a welcome, and a link
// confirming that its address is its owner's.
type WelcomeMail struct {
	UserID string
	To     string
	Name   string
}

// WelcomeMailer delivers welcome emails, in the background (registration does not wait).
type WelcomeMailer interface {
	SendWelcome(ctx context.Context, m WelcomeMail)
}

// EmailVerifications records confirmed account addresses.
type EmailVerifications interface {
	// MarkEmailVerified sets the user's email_verified_at (once) if the user's address is
	// still email. ENOTFOUND otherwise.
	MarkEmailVerified(ctx context.Context, userID, email string, at time.Time) error
}

// welcome hands a new account's welcome email over, when a mailer is configured.
func (s *Service) welcome(ctx context.Context, u *User) {
	if s.d.Welcome != nil {
		s.d.Welcome.SendWelcome(ctx, WelcomeMail{UserID: u.ID, To: u.Email, Name: u.Name})
	}
}

// VerifyEmail confirms that email, which a welcome link was sent to, is userID's address.
// EINVALID when the account's address changed since, or the account is gone.
func (s *Service) VerifyEmail(ctx context.Context, userID, email string, cl Client) error {
	if s.d.Verifications == nil {
		return errors.New("account service: email verification is not configured")
	}
	err := s.d.Verifications.MarkEmailVerified(ctx, userID, strings.ToLower(email), s.now())
	if isNotFound(err) {
		return &domain.Error{Code: domain.EINVALID, Message: "This link is for an address the account no longer has.", Err: err}
	}
	if err != nil {
		return fmt.Errorf("verify email of %s: %w", userID, err)
	}
	return s.audit(ctx, AuditEvent{ActorID: userID, Action: ActionEmailVerified, TargetType: TargetUser, TargetID: userID,
		Outcome: OutcomeSuccess}, cl)
}

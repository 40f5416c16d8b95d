package account

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/google/uuid"

	"github.com/vigilhq/vigil/domain"
)

// Audit actions of Google sign-in. A new account made by Google sign-in is recorded as
// ActionRegister with metadata method "google".
const (
	ActionGoogleLogin  = "google_login"
	ActionGoogleLinked = "google_linked"
)

// Messages of Google sign-in. They are part of the API contract.
const (
	MsgGoogleLinkUnverified = "An account with this email exists; sign in with your password first."
	MsgGoogleNoEmail        = "The Google account did not share an email address."
	MsgGoogleOtherIdentity  = "This account is linked to another Google account."
)

// GoogleIdentity is who an OpenID Connect provider (Google) says signed in, after the
// adapter verified the ID token. Accounts are keyed by (Issuer, Subject).
type GoogleIdentity struct {
	Issuer        string
	Subject       string
	Email         string
	EmailVerified bool // the provider vouches for Email; only then may an account be linked
	Name          string
}

// GoogleIdentityStore finds, links and creates users by their Google identity.
type GoogleIdentityStore interface {
	// FindUserByGoogle returns the user linked to (issuer, subject), or ENOTFOUND.
	FindUserByGoogle(ctx context.Context, issuer, subject string) (*User, error)
	// LinkGoogle links (issuer, subject) to the user id at time at and, when verified is
	// true, marks the user's email verified at at (if it was not). Returns ECONFLICT when the
	// user is linked to another identity or another user has this one, ENOTFOUND when the
	// user is gone.
	LinkGoogle(ctx context.Context, userID, issuer, subject string, verified bool, at time.Time) error
	// CreateGoogleUser inserts u (without a password, EmailVerifiedAt as set) linked to
	// (issuer, subject), with its default email action as CreateUser does. Returns
	// ECONFLICT when the email or the identity is taken.
	CreateGoogleUser(ctx context.Context, u *User, issuer, subject string) error
}

// LoginWithGoogle signs in with a verified Google identity and starts a session:
//   - the user linked to (Issuer, Subject) logs in (google_login);
//   - else a user with the same email is linked, only when the provider verified the
//     email (google_linked), else ECONFLICT (MsgGoogleLinkUnverified): anyone can put an
//     unverified address on a Google account, and linking it would hand them the account;
//   - else a new user without a password is created (register, method google), its email
//     verified when the provider says so.
//
// In private beta the email must be allowlisted (EFORBIDDEN, MsgBeta), checked before
// anything reveals whether an account exists. Disabled accounts get EFORBIDDEN.
func (s *Service) LoginWithGoogle(ctx context.Context, id GoogleIdentity, cl Client) (*Auth, error) {
	if s.d.Google == nil {
		return nil, errors.New("google sign-in: identity store is not configured")
	}
	if id.Issuer == "" || id.Subject == "" {
		return nil, &domain.Error{Code: domain.EUNAUTHORIZED, Message: "The sign-in could not be verified.",
			Err: errors.New("identity without issuer or subject")}
	}
	u, err := s.d.Google.FindUserByGoogle(ctx, id.Issuer, id.Subject)
	if err != nil && !isNotFound(err) {
		return nil, fmt.Errorf("find user by google identity: %w", err)
	}
	if u != nil {
		if err := s.checkBeta(ctx, u.Email); err != nil {
			return nil, s.googleRefused(ctx, u.ID, "not_allowlisted", err, cl)
		}
		if u.Disabled() {
			return nil, s.googleRefused(ctx, u.ID, "disabled", errDisabled(), cl)
		}
		return s.googleSession(ctx, u, ActionGoogleLogin, nil, cl)
	}

	email := strings.TrimSpace(id.Email)
	if validateEmail(email) != "" {
		return nil, &domain.Error{Code: domain.EFORBIDDEN, Message: MsgGoogleNoEmail}
	}
	if err := s.checkBeta(ctx, email); err != nil {
		return nil, err
	}
	u, err = s.d.Users.FindUserByEmail(ctx, NormalizeEmail(email))
	if err != nil && !isNotFound(err) {
		return nil, fmt.Errorf("find user by email: %w", err)
	}
	if u != nil {
		return s.linkGoogle(ctx, u, id, cl)
	}
	return s.registerGoogle(ctx, id, email, cl)
}

// linkGoogle links id to the existing account u and logs in.
func (s *Service) linkGoogle(ctx context.Context, u *User, id GoogleIdentity, cl Client) (*Auth, error) {
	if !id.EmailVerified {
		return nil, s.googleRefused(ctx, u.ID, "email_unverified",
			&domain.Error{Code: domain.ECONFLICT, Message: MsgGoogleLinkUnverified}, cl)
	}
	if u.Disabled() {
		return nil, s.googleRefused(ctx, u.ID, "disabled", errDisabled(), cl)
	}
	now := s.now()
	if err := s.d.Google.LinkGoogle(ctx, u.ID, id.Issuer, id.Subject, true, now); err != nil {
		switch {
		case errors.Is(err, domain.ErrConflict):
			return nil, s.googleRefused(ctx, u.ID, "other_identity",
				&domain.Error{Code: domain.ECONFLICT, Message: MsgGoogleOtherIdentity, Err: err}, cl)
		case isNotFound(err):
			return nil, errAccountGone()
		}
		return nil, fmt.Errorf("link google identity to user %s: %w", u.ID, err)
	}
	if u.EmailVerifiedAt == nil {
		u.EmailVerifiedAt = &now
	}
	u.UpdatedAt = now
	return s.googleSession(ctx, u, ActionGoogleLinked, map[string]any{"issuer": id.Issuer}, cl)
}

// registerGoogle creates an account for id, which has no account yet.
func (s *Service) registerGoogle(ctx context.Context, id GoogleIdentity, email string, cl Client) (*Auth, error) {
	uid, err := uuid.NewV7()
	if err != nil {
		return nil, fmt.Errorf("new user id: %w", err)
	}
	now := s.now()
	u := &User{ID: uid.String(), Email: email, Name: googleName(id.Name), Role: RoleUser, Timezone: TimezoneDefault,
		DigestHour: DigestHourDefault, NotificationsEnabled: true, LastLoginAt: &now, CreatedAt: now, UpdatedAt: now}
	if id.EmailVerified {
		u.EmailVerifiedAt = &now
	}
	if err := s.d.Google.CreateGoogleUser(ctx, u, id.Issuer, id.Subject); err != nil {
		if errors.Is(err, domain.ErrConflict) { // a concurrent register or sign-in won
			return nil, &domain.Error{Code: domain.ECONFLICT, Message: MsgEmailTaken, Err: err}
		}
		return nil, fmt.Errorf("create google user: %w", err)
	}
	if err := s.audit(ctx, AuditEvent{ActorID: u.ID, Action: ActionRegister, TargetType: TargetUser, TargetID: u.ID,
		Outcome: OutcomeSuccess, Metadata: map[string]any{"method": "google", "issuer": id.Issuer}}, cl); err != nil {
		return nil, err
	}
	return s.startSession(ctx, u, cl)
}

// googleSession records the login of u, audits action and starts a session.
func (s *Service) googleSession(ctx context.Context, u *User, action string, meta map[string]any, cl Client) (*Auth, error) {
	now := s.now()
	if err := s.d.Users.RecordLogin(ctx, u.ID, now); err != nil {
		return nil, fmt.Errorf("record login: %w", err)
	}
	u.LastLoginAt = &now
	if err := s.audit(ctx, AuditEvent{ActorID: u.ID, Action: action, TargetType: TargetUser, TargetID: u.ID,
		Outcome: OutcomeSuccess, Metadata: meta}, cl); err != nil {
		return nil, err
	}
	return s.startSession(ctx, u, cl)
}

// googleRefused records a refused Google sign-in of a known user and returns answer.
func (s *Service) googleRefused(ctx context.Context, userID, reason string, answer error, cl Client) error {
	if domain.ErrorCode(answer) == domain.EINTERNAL {
		return answer
	}
	if err := s.audit(ctx, AuditEvent{ActorID: userID, Action: ActionGoogleLogin, TargetType: TargetUser, TargetID: userID,
		Outcome: OutcomeFailure, Metadata: map[string]any{"reason": reason}}, cl); err != nil {
		return err
	}
	return answer
}

// googleName makes the provider's display name acceptable as a profile name: control
// characters dropped, at most NameMaxLen characters.
func googleName(name string) string {
	name = strings.TrimSpace(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, name))
	if r := []rune(name); len(r) > NameMaxLen {
		name = strings.TrimSpace(string(r[:NameMaxLen]))
	}
	return name
}

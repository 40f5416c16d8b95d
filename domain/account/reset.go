package account

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/vigilhq/vigil/domain"
)

// ResetTokenTTL is how long a password reset link works.
const ResetTokenTTL = time.Hour

// Audit actions of password reset.
const (
	ActionPasswordResetRequested = "password_reset_requested"
	ActionPasswordResetCompleted = "password_reset_completed"
)

// MsgResetTokenInvalid answers every reset with a token that is unknown, expired or spent:
// the three are not told apart, so a token cannot be probed.
const MsgResetTokenInvalid = "This password reset link is invalid, has expired or was already used; ask for a new one."

func errResetTokenInvalid() error {
	return &domain.Error{Code: domain.EINVALID, Message: MsgResetTokenInvalid,
		Fields: map[string]string{"token": "is invalid, expired or already used"}}
}

// ResetToken is one password reset link. Only the SHA-256 of the token is stored.
type ResetToken struct {
	ID        string
	UserID    string
	TokenHash []byte
	ExpiresAt time.Time
	UsedAt    *time.Time
	CreatedAt time.Time
}

// ResetCompletion is what CompleteReset writes in one transaction.
type ResetCompletion struct {
	TokenHash    []byte
	PasswordHash string
	At           time.Time
}

// ResetTokenStore persists password reset tokens.
type ResetTokenStore interface {
	// ReplaceResetToken inserts t and, in the same transaction, deletes every other unused
	// token of t.UserID, so only the newest link works. Returns ENOTFOUND when the user is
	// gone.
	ReplaceResetToken(ctx context.Context, t *ResetToken) error
	// FindResetToken returns the token whose hash is tokenHash, or ENOTFOUND.
	FindResetToken(ctx context.Context, tokenHash []byte) (*ResetToken, error)
	// CompleteReset, in one transaction: marks the token with c.TokenHash used at c.At —
	// only if it is unused and c.At is before its expiry —, sets its user's password hash
	// (and marks the email verified: the reset proved the mailbox), deletes the user's
	// other unused reset tokens and revokes every refresh token of the user. A user whose
	// email was not verified before also loses a linked Google identity, which was never
	// proven to belong to the mailbox's owner. Returns the user's id, or ENOTFOUND (and
	// changes nothing) when the token is unknown, spent or expired, or its user is gone.
	CompleteReset(ctx context.Context, c ResetCompletion) (userID string, err error)
}

// ResetMail is a password reset email to send.
type ResetMail struct {
	UserID    string // for the sender's logs; the token never goes there
	To        string
	Name      string
	Token     string // the secret the link carries
	ExpiresIn time.Duration
}

// ResetMailer delivers password reset emails.
type ResetMailer interface {
	// SendPasswordReset hands m over for delivery and returns without waiting for the mail
	// server, so the time ForgotPassword takes does not tell whether an account exists.
	// Delivery failures are the implementation's to log (never with the token); they do not
	// reach the requester, whose answer must be the same either way.
	SendPasswordReset(ctx context.Context, m ResetMail)
}

// ForgotPassword starts a password reset for email. For an active account it stores the
// hash of a new single-use token valid ResetTokenTTL (voiding the account's older links)
// and hands the link to the ResetMailer; for an unknown or disabled account it does the
// same lookup and token work and sends nothing. Both are recorded as
// password_reset_requested (failure for no account) and answer alike: nil. Returns
// EINVALID only for a malformed email, which says nothing about accounts.
func (s *Service) ForgotPassword(ctx context.Context, email string, cl Client) error {
	if s.d.ResetTokens == nil || s.d.ResetMailer == nil {
		return fmt.Errorf("forgot password: reset tokens and mailer are not configured")
	}
	email = strings.TrimSpace(email)
	if msg := validateEmail(email); msg != "" {
		return invalid(map[string]string{"email": msg})
	}
	token, hash, err := newRefreshToken() // same format as refresh tokens: 256 bits, base64url
	if err != nil {
		return err
	}
	u, err := s.d.Users.FindUserByEmail(ctx, NormalizeEmail(email))
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("find user: %w", err)
	}
	if u == nil || u.Disabled() {
		e := AuditEvent{Action: ActionPasswordResetRequested, Outcome: OutcomeFailure,
			Metadata: map[string]any{"email": NormalizeEmail(email), "reason": "unknown_email"}}
		if u != nil {
			e.ActorID, e.TargetType, e.TargetID = u.ID, TargetUser, u.ID
			e.Metadata = map[string]any{"reason": "disabled"}
		}
		return s.audit(ctx, e, cl)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return fmt.Errorf("new reset token id: %w", err)
	}
	now := s.now()
	t := &ResetToken{ID: id.String(), UserID: u.ID, TokenHash: hash, ExpiresAt: now.Add(ResetTokenTTL), CreatedAt: now}
	if err := s.d.ResetTokens.ReplaceResetToken(ctx, t); err != nil {
		if isNotFound(err) { // deleted meanwhile: as if it never existed
			return nil
		}
		return fmt.Errorf("store reset token of user %s: %w", u.ID, err)
	}
	if err := s.audit(ctx, AuditEvent{ActorID: u.ID, Action: ActionPasswordResetRequested, TargetType: TargetUser,
		TargetID: u.ID, Outcome: OutcomeSuccess}, cl); err != nil {
		return err
	}
	s.d.ResetMailer.SendPasswordReset(ctx, ResetMail{UserID: u.ID, To: u.Email, Name: u.Name, Token: token,
		ExpiresIn: ResetTokenTTL})
	return nil
}

// ResetPassword sets a new password with a token from a reset email. The token is spent
// in the same transaction that changes the password, so a link works once; every session
// of the user is revoked. Returns EINVALID with a "token" field error (MsgResetTokenInvalid)
// for a token that is unknown, expired or spent, EINVALID with a "password" field error
// when the password breaks the policy (the token stays usable), EFORBIDDEN for a disabled
// account.
func (s *Service) ResetPassword(ctx context.Context, token, password string, cl Client) error {
	if s.d.ResetTokens == nil {
		return fmt.Errorf("reset password: reset tokens are not configured")
	}
	hash, ok := hashRefreshToken(token)
	if !ok {
		return s.resetFailed(ctx, "", "malformed_token", cl)
	}
	now := s.now()
	t, err := s.d.ResetTokens.FindResetToken(ctx, hash)
	switch {
	case isNotFound(err):
		return s.resetFailed(ctx, "", "unknown_token", cl)
	case err != nil:
		return fmt.Errorf("find reset token: %w", err)
	case t.UsedAt != nil:
		return s.resetFailed(ctx, t.UserID, "used_token", cl)
	case !now.Before(t.ExpiresAt):
		return s.resetFailed(ctx, t.UserID, "expired_token", cl)
	}
	if msg := s.policy.Check(password); msg != "" {
		return invalid(map[string]string{"password": msg})
	}
	u, err := s.d.Users.FindUserByID(ctx, t.UserID)
	if isNotFound(err) {
		return errResetTokenInvalid()
	}
	if err != nil {
		return fmt.Errorf("find user %s: %w", t.UserID, err)
	}
	if u.Disabled() {
		return errDisabled()
	}
	pwHash, err := s.d.Hasher.Hash(password)
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	// The lookup above was only a fast path: CompleteReset checks the token again under a
	// row lock, so of two concurrent uses exactly one wins.
	userID, err := s.d.ResetTokens.CompleteReset(ctx, ResetCompletion{TokenHash: hash, PasswordHash: pwHash, At: s.now()})
	if isNotFound(err) {
		return s.resetFailed(ctx, t.UserID, "used_token", cl)
	}
	if err != nil {
		return fmt.Errorf("complete password reset of user %s: %w", t.UserID, err)
	}
	return s.audit(ctx, AuditEvent{ActorID: userID, Action: ActionPasswordResetCompleted, TargetType: TargetUser,
		TargetID: userID, Outcome: OutcomeSuccess}, cl)
}

// resetFailed records a refused reset and returns the one answer every bad token gets.
func (s *Service) resetFailed(ctx context.Context, userID, reason string, cl Client) error {
	e := AuditEvent{ActorID: userID, Action: ActionPasswordResetCompleted, Outcome: OutcomeFailure,
		Metadata: map[string]any{"reason": reason}}
	if userID != "" {
		e.TargetType, e.TargetID = TargetUser, userID
	}
	if err := s.audit(ctx, e, cl); err != nil {
		return err
	}
	return errResetTokenInvalid()
}

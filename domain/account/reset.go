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
const MsgResetTokenInvalid = "This password reset link is invalid, has expired or was already used; ask for a new one." // #nosec G101 -- a message, not a credential

func errResetTokenInvalid() error {
	return &domain.Error{Code: domain.EINVALID, Message: MsgResetTokenInvalid,
		Fields: map[string]string{"token": "is invalid, expired or already used"}} // #nosec G101 -- a message, not a credential
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

// ResetRequest is a forgot-password request waiting in the ResetQueue.
type ResetRequest struct {
	ID     string
	Email  string // normalised
	Client Client // who asked, for the audit record
	At     time.Time
}

// ResetQueue holds forgot-password requests between the request that makes one and the
// worker that handles it, durably: a request survives a crash of either.
type ResetQueue interface {
	// EnqueueReset adds r to the queue.
	EnqueueReset(ctx context.Context, r ResetRequest) error
	// HandleResetRequests takes up to limit requests, oldest first, and hands each to
	// handle; the requests handled are removed in the same transaction, and one whose
	// handle fails stays for a later try (if the commit fails, every one is handled again,
	// and the second link voids the first). Requests another worker holds are skipped.
	// Returns how many were handled, with the errors of those that were not.
	HandleResetRequests(ctx context.Context, limit int, handle func(context.Context, ResetRequest) error) (int, error)
}

// ForgotPassword starts a password reset for email. The request does the same work
// whatever the email, so its timing cannot tell whether an account exists (ASVS V2.5.x,
// V3.x): it checks the email's form and queues the request; HandleResetRequests, in the
// background, looks the account up and, for an active one, stores the hash of a new
// single-use token valid ResetTokenTTL (voiding the account's older links) and hands the
// link to the ResetMailer. Returns EINVALID only for a malformed email, which says nothing
// about accounts.
func (s *Service) ForgotPassword(ctx context.Context, email string, cl Client) error {
	if s.d.ResetTokens == nil || s.d.ResetMailer == nil || s.d.ResetQueue == nil {
		return fmt.Errorf("forgot password: reset tokens, queue and mailer are not configured")
	}
	email = strings.TrimSpace(email)
	if msg := validateEmail(email); msg != "" {
		return invalid(map[string]string{"email": msg})
	}
	id, err := uuid.NewV7()
	if err != nil {
		return fmt.Errorf("new reset request id: %w", err)
	}
	if err := s.d.ResetQueue.EnqueueReset(ctx, ResetRequest{ID: id.String(), Email: NormalizeEmail(email), Client: cl,
		At: s.now()}); err != nil {
		return fmt.Errorf("queue reset request: %w", err)
	}
	select { // wake this process's worker; others find the request on their next poll
	case s.resetQueued <- struct{}{}:
	default:
	}
	return nil
}

// ResetBatch is how many queued forgot-password requests one transaction handles.
const ResetBatch = 20

// ResetPollInterval is how often RunResetWorker looks for requests another process
// queued, or a crash left.
const ResetPollInterval = 2 * time.Second

// RunResetWorker handles queued forgot-password requests until ctx ends: at once when
// this process queued one, and every ResetPollInterval otherwise. A failed batch is
// logged through onError and tried again at the next wake.
func (s *Service) RunResetWorker(ctx context.Context, onError func(error)) error {
	t := time.NewTicker(ResetPollInterval)
	defer t.Stop()
	for {
		for {
			n, err := s.HandleResetRequests(ctx, ResetBatch)
			if err != nil && ctx.Err() == nil && onError != nil {
				onError(err)
			}
			if n < ResetBatch {
				break
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.resetQueued:
		case <-t.C:
		}
	}
}

// HandleResetRequests handles up to limit queued forgot-password requests and returns how
// many it handled. Both outcomes are recorded as password_reset_requested (failure for no
// account, or a disabled one).
func (s *Service) HandleResetRequests(ctx context.Context, limit int) (int, error) {
	return s.d.ResetQueue.HandleResetRequests(ctx, limit, func(ctx context.Context, r ResetRequest) error {
		return s.startReset(ctx, r.Email, r.Client)
	})
}

// startReset is the work of one forgot-password request, off the request's path.
func (s *Service) startReset(ctx context.Context, email string, cl Client) error {
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

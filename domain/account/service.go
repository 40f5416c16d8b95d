package account

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/vigilhq/vigil/domain"
)

// Messages users see. They are part of the API contract.
const (
	MsgBadCredentials = "Email or password is incorrect."
	MsgBeta           = "Vigil is in private beta; ask for an invitation."
	MsgSessionEnded   = "The session has ended; log in again."
	MsgDisabled       = "This account is disabled."
	MsgEmailTaken     = "An account with this email already exists."
	MsgAccountGone    = "The account no longer exists."
)

// Target types in audit events.
const (
	TargetUser          = "user"
	TargetRefreshFamily = "refresh_family"
)

func errBadCredentials() error {
	return &domain.Error{Code: domain.EUNAUTHORIZED, Message: MsgBadCredentials}
}
func errBeta() error { return &domain.Error{Code: domain.EFORBIDDEN, Message: MsgBeta} }
func errSessionEnded() error {
	return &domain.Error{Code: domain.EUNAUTHORIZED, Message: MsgSessionEnded}
}
func errDisabled() error { return &domain.Error{Code: domain.EFORBIDDEN, Message: MsgDisabled} }
func errAccountGone() error {
	return &domain.Error{Code: domain.EUNAUTHORIZED, Message: MsgAccountGone}
}
func isNotFound(e error) bool { return errors.Is(e, domain.ErrNotFound) }

// Client describes who sent a request, for the audit log.
type Client struct {
	IP        string
	UserAgent string
}

// RegisterInput is a new account.
type RegisterInput struct {
	Email    string
	Password string
	Name     string
}

// LoginInput is a password login.
type LoginInput struct {
	Email    string
	Password string
}

// ProfileUpdate changes the fields that are set. Changing the password needs the current one.
type ProfileUpdate struct {
	Name                 *string
	Timezone             *string
	DigestHour           *int
	NotificationsEnabled *bool
	CurrentPassword      *string
	NewPassword          *string
}

// Auth is the result of a successful register, login or refresh.
type Auth struct {
	User         *User
	AccessToken  string
	RefreshToken string
	ExpiresIn    time.Duration // of the access token
}

// AccessClaims is what a verified access token says about its bearer.
type AccessClaims struct {
	UserID    string
	Role      Role
	SessionID string // the refresh family the token was issued in
	ExpiresAt time.Time
}

// Deps are the ports the Service needs; all are required.
type Deps struct {
	Users     UserStore
	Sessions  SessionStore
	Audit     AuditLog
	Allowlist Allowlist
	Hasher    PasswordHasher
	Tokens    AccessTokens
	Clock     Clock

	// password reset: optional; ForgotPassword and ResetPassword need them.
	ResetTokens ResetTokenStore
	ResetMailer ResetMailer
	ResetQueue  ResetQueue
	// google sign-in: optional; LoginWithGoogle needs it.
	Google GoogleIdentityStore
	// Welcome, optional, emails new password accounts a link confirming their address;
	// VerifyEmail needs Verifications.
	Welcome       WelcomeMailer
	Verifications EmailVerifications
}

// Config tunes the Service.
type Config struct {
	// Beta limits register and login to allowlisted emails and @domains.
	Beta bool
	// FamilyLifetime bounds a login, however often it refreshes; FamilyLifetimeDefault when 0.
	FamilyLifetime time.Duration
}

// Service runs the account use cases.
type Service struct {
	d         Deps
	cfg       Config
	policy    *PasswordPolicy
	dummyHash string // compared against for unknown emails, so they cost what known ones do
	// resetQueued wakes this process's reset worker when a request was queued here.
	resetQueued chan struct{}
}

// NewService returns the account use cases. It hashes a random password once, with the
// hasher's cost, to use as the dummy hash for logins of unknown emails.
func NewService(d Deps, cfg Config) (*Service, error) {
	if d.Users == nil || d.Sessions == nil || d.Audit == nil || d.Allowlist == nil || d.Hasher == nil ||
		d.Tokens == nil || d.Clock == nil {
		return nil, errors.New("account service: every dependency is required")
	}
	if cfg.FamilyLifetime <= 0 {
		cfg.FamilyLifetime = FamilyLifetimeDefault
	}
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("account service: random dummy password: %w", err)
	}
	dummy, err := d.Hasher.Hash(base64.RawURLEncoding.EncodeToString(b))
	if err != nil {
		return nil, fmt.Errorf("account service: dummy hash: %w", err)
	}
	return &Service{d: d, cfg: cfg, policy: NewPasswordPolicy(), dummyHash: dummy, resetQueued: make(chan struct{}, 1)}, nil
}

// Register creates an account with a password and logs it in. Returns EINVALID with field
// errors, EFORBIDDEN in private beta for emails not on the allowlist, ECONFLICT when the
// email is taken.
func (s *Service) Register(ctx context.Context, in RegisterInput, cl Client) (*Auth, error) {
	email := strings.TrimSpace(in.Email)
	name := strings.TrimSpace(in.Name)
	fields := map[string]string{}
	if msg := validateEmail(email); msg != "" {
		fields["email"] = msg
	}
	if msg := validateName(name); msg != "" {
		fields["name"] = msg
	}
	if msg := s.policy.Check(in.Password); msg != "" {
		fields["password"] = msg
	}
	if err := invalid(fields); err != nil {
		return nil, err
	}
	if err := s.checkBeta(ctx, email); err != nil {
		return nil, err
	}
	hash, err := s.d.Hasher.Hash(in.Password)
	if err != nil {
		return nil, fmt.Errorf("hash password: %w", err)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, fmt.Errorf("new user id: %w", err)
	}
	now := s.now()
	u := &User{ID: id.String(), Email: email, Name: name, Role: RoleUser, PasswordHash: hash,
		Timezone: TimezoneDefault, DigestHour: DigestHourDefault, NotificationsEnabled: true,
		LastLoginAt: &now, CreatedAt: now, UpdatedAt: now}
	if err := s.d.Users.CreateUser(ctx, u); err != nil {
		if errors.Is(err, domain.ErrConflict) {
			return nil, &domain.Error{Code: domain.ECONFLICT, Message: MsgEmailTaken,
				Fields: map[string]string{"email": "is already registered"}, Err: err}
		}
		return nil, fmt.Errorf("create user: %w", err)
	}
	if err := s.audit(ctx, AuditEvent{ActorID: u.ID, Action: ActionRegister, TargetType: TargetUser, TargetID: u.ID,
		Outcome: OutcomeSuccess}, cl); err != nil {
		return nil, err
	}
	s.welcome(ctx, u)
	return s.startSession(ctx, u, cl)
}

// Login checks an email and password and starts a session. Returns EUNAUTHORIZED
// (MsgBadCredentials) for an unknown email, a user without a password and a wrong password
// alike, after one password compare in each case; EFORBIDDEN for disabled accounts and, in
// private beta, emails not on the allowlist (only once the password was right).
func (s *Service) Login(ctx context.Context, in LoginInput, cl Client) (*Auth, error) {
	email := NormalizeEmail(in.Email)
	fields := map[string]string{}
	if email == "" {
		fields["email"] = "is required"
	}
	if in.Password == "" {
		fields["password"] = "is required"
	}
	if err := invalid(fields); err != nil {
		return nil, err
	}
	u, err := s.d.Users.FindUserByEmail(ctx, email)
	if err != nil && !isNotFound(err) {
		return nil, fmt.Errorf("find user: %w", err)
	}
	if u == nil || !u.HasPassword() {
		// Pay for a compare anyway so the answer takes as long as for a real account.
		if _, err := s.d.Hasher.Compare(s.dummyHash, in.Password); err != nil {
			return nil, fmt.Errorf("dummy compare: %w", err)
		}
		e := AuditEvent{Action: ActionLogin, Outcome: OutcomeFailure, Metadata: map[string]any{"email": email}}
		if u != nil {
			e.ActorID, e.TargetType, e.TargetID = u.ID, TargetUser, u.ID
			e.Metadata = map[string]any{"reason": "no_password"}
		} else {
			e.Metadata["reason"] = "unknown_email"
		}
		if err := s.audit(ctx, e, cl); err != nil {
			return nil, err
		}
		return nil, errBadCredentials()
	}
	ok, err := s.d.Hasher.Compare(u.PasswordHash, in.Password)
	if err != nil {
		return nil, fmt.Errorf("compare password of user %s: %w", u.ID, err)
	}
	failed := func(reason string, answer error) (*Auth, error) {
		if err := s.audit(ctx, AuditEvent{ActorID: u.ID, Action: ActionLogin, TargetType: TargetUser, TargetID: u.ID,
			Outcome: OutcomeFailure, Metadata: map[string]any{"reason": reason}}, cl); err != nil {
			return nil, err
		}
		return nil, answer
	}
	if !ok {
		return failed("bad_password", errBadCredentials())
	}
	if err := s.checkBeta(ctx, email); err != nil {
		if domain.ErrorCode(err) == domain.EFORBIDDEN {
			return failed("not_allowlisted", err)
		}
		return nil, err
	}
	if u.Disabled() {
		return failed("disabled", errDisabled())
	}
	now := s.now()
	if err := s.d.Users.RecordLogin(ctx, u.ID, now); err != nil {
		return nil, fmt.Errorf("record login: %w", err)
	}
	u.LastLoginAt = &now
	if err := s.audit(ctx, AuditEvent{ActorID: u.ID, Action: ActionLogin, TargetType: TargetUser, TargetID: u.ID,
		Outcome: OutcomeSuccess}, cl); err != nil {
		return nil, err
	}
	return s.startSession(ctx, u, cl)
}

// Refresh spends refreshToken and returns a new access and refresh token in the same
// family. A token that was spent before revokes its whole family and is recorded as
// refresh_reuse_detected. Returns EUNAUTHORIZED (MsgSessionEnded) for unknown, spent,
// revoked and expired tokens; EFORBIDDEN for disabled accounts.
func (s *Service) Refresh(ctx context.Context, refreshToken string, cl Client) (*Auth, error) {
	hash, ok := hashRefreshToken(refreshToken)
	if !ok {
		return nil, errSessionEnded()
	}
	now := s.now()
	newToken, newHash, err := newRefreshToken()
	if err != nil {
		return nil, err
	}
	var (
		reused *Session
		next   *Session
	)
	err = s.d.Sessions.RotateSession(ctx, hash, func(cur Session) (SessionChange, error) {
		switch {
		case cur.UsedAt != nil:
			reused = &cur
			return SessionChange{At: now, RevokeFamily: true}, errSessionEnded()
		case cur.RevokedAt != nil, !now.Before(cur.ExpiresAt), !now.Before(cur.FamilyExpiresAt):
			return SessionChange{}, errSessionEnded()
		}
		id, err := uuid.NewV7()
		if err != nil {
			return SessionChange{}, fmt.Errorf("new session id: %w", err)
		}
		next = &Session{ID: id.String(), UserID: cur.UserID, FamilyID: cur.FamilyID, ParentID: cur.ID,
			TokenHash: newHash, ExpiresAt: cur.FamilyExpiresAt, FamilyExpiresAt: cur.FamilyExpiresAt,
			IP: cl.IP, UserAgent: cl.UserAgent, CreatedAt: now}
		return SessionChange{At: now, Spend: true, Next: next}, nil
	})
	if reused != nil {
		if aerr := s.audit(ctx, AuditEvent{ActorID: reused.UserID, Action: ActionRefreshReuseDetected,
			TargetType: TargetRefreshFamily, TargetID: reused.FamilyID, Outcome: OutcomeFailure,
			Metadata: map[string]any{"token_id": reused.ID}}, cl); aerr != nil {
			return nil, aerr
		}
	}
	if isNotFound(err) {
		return nil, errSessionEnded()
	}
	if err != nil {
		return nil, fmt.Errorf("rotate refresh token: %w", err)
	}
	u, err := s.d.Users.FindUserByID(ctx, next.UserID)
	if isNotFound(err) {
		return nil, errSessionEnded()
	}
	if err != nil {
		return nil, fmt.Errorf("find user: %w", err)
	}
	if u.Disabled() {
		return nil, errDisabled()
	}
	return s.issue(u, next.FamilyID, newToken)
}

// Logout revokes the family of refreshToken. Unknown and malformed tokens are ignored, so
// logging out twice is fine.
func (s *Service) Logout(ctx context.Context, refreshToken string, cl Client) error {
	hash, ok := hashRefreshToken(refreshToken)
	if !ok {
		return nil
	}
	sess, err := s.d.Sessions.FindSessionByHash(ctx, hash)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("find session: %w", err)
	}
	if err := s.d.Sessions.RevokeFamily(ctx, sess.FamilyID, s.now()); err != nil {
		return fmt.Errorf("revoke session family %s: %w", sess.FamilyID, err)
	}
	return s.audit(ctx, AuditEvent{ActorID: sess.UserID, Action: ActionLogout, TargetType: TargetRefreshFamily,
		TargetID: sess.FamilyID, Outcome: OutcomeSuccess}, cl)
}

// GetMe returns the caller's account; EUNAUTHORIZED when it was deleted meanwhile.
func (s *Service) GetMe(ctx context.Context, userID string) (*User, error) {
	u, err := s.d.Users.FindUserByID(ctx, userID)
	if isNotFound(err) {
		return nil, errAccountGone()
	}
	if err != nil {
		return nil, fmt.Errorf("find user %s: %w", userID, err)
	}
	return u, nil
}

// UpdateMe changes the caller's profile. A new password needs the current one and, once
// set, revokes every session of the user except sessionID (the caller's own). Returns
// EINVALID with field errors.
func (s *Service) UpdateMe(ctx context.Context, userID, sessionID string, in ProfileUpdate, cl Client) (*User, error) {
	u, err := s.GetMe(ctx, userID)
	if err != nil {
		return nil, err
	}
	fields := map[string]string{}
	if in.Name != nil {
		name := strings.TrimSpace(*in.Name)
		if msg := validateName(name); msg != "" {
			fields["name"] = msg
		}
		u.Name = name
	}
	if in.Timezone != nil {
		if msg := validateTimezone(*in.Timezone); msg != "" {
			fields["timezone"] = msg
		}
		u.Timezone = *in.Timezone
	}
	if in.DigestHour != nil {
		if *in.DigestHour < 0 || *in.DigestHour > 23 {
			fields["digest_hour"] = "must be an hour from 0 to 23"
		}
		u.DigestHour = *in.DigestHour
	}
	if in.NotificationsEnabled != nil {
		u.NotificationsEnabled = *in.NotificationsEnabled
		if u.NotificationsEnabled {
			u.UnsubscribedAt = nil // turning notifications on is how a user re-subscribes
		}
	}
	changePassword := in.NewPassword != nil
	switch {
	case changePassword && !u.HasPassword():
		fields["new_password"] = "cannot be set here for an account without a password; use password reset"
	case changePassword:
		if msg := s.policy.Check(*in.NewPassword); msg != "" {
			fields["new_password"] = msg
		}
		if in.CurrentPassword == nil || *in.CurrentPassword == "" {
			fields["current_password"] = "is required to change the password"
		}
	case in.CurrentPassword != nil:
		fields["new_password"] = "is required with current_password"
	}
	if err := invalid(fields); err != nil {
		return nil, err
	}
	if changePassword {
		if err := s.checkCurrentPassword(ctx, u, *in.CurrentPassword, ActionPasswordChanged, cl); err != nil {
			return nil, err
		}
		var err error
		if u.PasswordHash, err = s.d.Hasher.Hash(*in.NewPassword); err != nil {
			return nil, fmt.Errorf("hash password: %w", err)
		}
	}
	u.UpdatedAt = s.now()
	if err := s.d.Users.UpdateUser(ctx, u); err != nil {
		if isNotFound(err) {
			return nil, errAccountGone()
		}
		return nil, fmt.Errorf("update user %s: %w", u.ID, err)
	}
	if changePassword {
		if err := s.d.Sessions.RevokeUserSessions(ctx, u.ID, sessionID, u.UpdatedAt); err != nil {
			return nil, fmt.Errorf("revoke other sessions of user %s: %w", u.ID, err)
		}
		if err := s.audit(ctx, AuditEvent{ActorID: u.ID, Action: ActionPasswordChanged, TargetType: TargetUser,
			TargetID: u.ID, Outcome: OutcomeSuccess}, cl); err != nil {
			return nil, err
		}
	}
	return u, nil
}

// ReauthWindow is how recent a sign-in must be to stand for the password, for an account
// that has none (Google sign-in only), when it deletes itself.
const ReauthWindow = 10 * time.Minute

// DeleteMe deletes the caller's account and everything it owns (monitors, actions,
// sessions, API keys...) and records account_deleted with the user id as target. The
// owner must prove it is them again (ASVS V2.5.x, V3.7.1): with the current password or,
// for an account without one, a sign-in of the session no older than ReauthWindow.
// Returns EINVALID naming current_password when it is missing or wrong, EFORBIDDEN when the
// sign-in is too old.
func (s *Service) DeleteMe(ctx context.Context, userID, sessionID string, currentPassword string, cl Client) error {
	if err := s.reauthenticate(ctx, userID, sessionID, currentPassword, ActionAccountDeleted, cl); err != nil {
		return err
	}
	if err := s.d.Users.DeleteUser(ctx, userID); err != nil {
		if isNotFound(err) {
			return errAccountGone()
		}
		return fmt.Errorf("delete user %s: %w", userID, err)
	}
	return s.audit(ctx, AuditEvent{Action: ActionAccountDeleted, TargetType: TargetUser, TargetID: userID,
		Outcome: OutcomeSuccess}, cl)
}

// reauthenticate checks that the caller of a destructive operation is the account's owner
// now: the current password when the account has one, else a sign-in of sessionID within
// ReauthWindow. A wrong password is audited as a failed attempt at action.
func (s *Service) reauthenticate(ctx context.Context, userID, sessionID, currentPassword, action string, cl Client) error {
	u, err := s.GetMe(ctx, userID)
	if err != nil {
		return err
	}
	if !u.HasPassword() {
		started, err := s.d.Sessions.SessionStartedAt(ctx, userID, sessionID)
		if err != nil && !isNotFound(err) {
			return fmt.Errorf("session of user %s: %w", userID, err)
		}
		if err != nil || s.now().Sub(started) > ReauthWindow {
			return domain.Errorf(domain.EFORBIDDEN,
				"Sign in with Google again, then do this within %d minutes.", int(ReauthWindow/time.Minute))
		}
		return nil
	}
	if currentPassword == "" {
		return invalid(map[string]string{"current_password": "is required: confirm it is you"})
	}
	return s.checkCurrentPassword(ctx, u, currentPassword, action, cl)
}

// checkCurrentPassword compares the password the owner gave with u's. A wrong one is
// audited as a failed attempt at action and is EINVALID naming current_password.
func (s *Service) checkCurrentPassword(ctx context.Context, u *User, password, action string, cl Client) error {
	ok, err := s.d.Hasher.Compare(u.PasswordHash, password)
	if err != nil {
		return fmt.Errorf("compare password of user %s: %w", u.ID, err)
	}
	if !ok {
		if err := s.audit(ctx, AuditEvent{ActorID: u.ID, Action: action, TargetType: TargetUser, TargetID: u.ID,
			Outcome: OutcomeFailure, Metadata: map[string]any{"reason": "bad_current_password"}}, cl); err != nil {
			return err
		}
		return invalid(map[string]string{"current_password": "is incorrect"})
	}
	return nil
}

// Audit page size limits.
const (
	AuditLimitDefault = 50
	AuditLimitMax     = 100
)

// ListAudit returns the caller's own audit events, newest first. limit 0 means
// AuditLimitDefault; more than AuditLimitMax or less than 0 is EINVALID.
func (s *Service) ListAudit(ctx context.Context, userID string, limit int, cursor string) (AuditPage, error) {
	if limit == 0 {
		limit = AuditLimitDefault
	}
	if limit < 1 || limit > AuditLimitMax {
		return AuditPage{}, invalid(map[string]string{"limit": fmt.Sprintf("must be from 1 to %d", AuditLimitMax)})
	}
	page, err := s.d.Audit.ListAuditByActor(ctx, userID, limit, cursor)
	if err != nil {
		return AuditPage{}, fmt.Errorf("list audit events: %w", err)
	}
	return page, nil
}

// checkBeta returns EFORBIDDEN (MsgBeta) in private beta for emails not on the allowlist.
func (s *Service) checkBeta(ctx context.Context, email string) error {
	if !s.cfg.Beta {
		return nil
	}
	ok, err := s.d.Allowlist.Allowed(ctx, NormalizeEmail(email))
	if err != nil {
		return fmt.Errorf("check allowlist: %w", err)
	}
	if !ok {
		return errBeta()
	}
	return nil
}

// startSession opens a new refresh family for u and issues its first token pair.
func (s *Service) startSession(ctx context.Context, u *User, cl Client) (*Auth, error) {
	token, hash, err := newRefreshToken()
	if err != nil {
		return nil, err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, fmt.Errorf("new session id: %w", err)
	}
	now := s.now()
	expires := now.Add(s.cfg.FamilyLifetime)
	sess := &Session{ID: id.String(), UserID: u.ID, FamilyID: id.String(), TokenHash: hash, ExpiresAt: expires,
		FamilyExpiresAt: expires, IP: cl.IP, UserAgent: cl.UserAgent, CreatedAt: now}
	if err := s.d.Sessions.CreateSession(ctx, sess); err != nil {
		return nil, fmt.Errorf("create session: %w", err)
	}
	return s.issue(u, sess.FamilyID, token)
}

func (s *Service) issue(u *User, familyID, refreshToken string) (*Auth, error) {
	access, expiresIn, err := s.d.Tokens.Issue(u, familyID)
	if err != nil {
		return nil, fmt.Errorf("issue access token: %w", err)
	}
	return &Auth{User: u, AccessToken: access, RefreshToken: refreshToken, ExpiresIn: expiresIn}, nil
}

func (s *Service) audit(ctx context.Context, e AuditEvent, cl Client) error {
	id, err := uuid.NewV7()
	if err != nil {
		return fmt.Errorf("new audit id: %w", err)
	}
	e.ID, e.IP, e.UserAgent = id.String(), cl.IP, cl.UserAgent
	if e.CreatedAt.IsZero() {
		e.CreatedAt = s.now()
	}
	if err := s.d.Audit.RecordAudit(ctx, e); err != nil {
		return fmt.Errorf("record audit event %s: %w", e.Action, err)
	}
	return nil
}

// now is the clock's time in UTC at the microsecond precision storage keeps, so what a use
// case returns equals what a later read returns.
func (s *Service) now() time.Time { return s.d.Clock.Now().UTC().Truncate(time.Microsecond) }

package account

import (
	"context"
	"time"
)

// UserStore persists users.
type UserStore interface {
	// CreateUser inserts u (its ID set by the caller) and, in the same transaction, its
	// default email action, to u.Email. Returns ECONFLICT when another user has the same
	// email, compared case-insensitively.
	CreateUser(ctx context.Context, u *User) error
	// FindUserByID returns the user or ENOTFOUND.
	FindUserByID(ctx context.Context, id string) (*User, error)
	// FindUserByEmail returns the user whose email equals email case-insensitively, or
	// ENOTFOUND.
	FindUserByEmail(ctx context.Context, email string) (*User, error)
	// UpdateUser writes u's name, timezone, digest hour, notification switch, unsubscribe
	// time and password hash, and sets UpdatedAt. Returns ENOTFOUND when the user is gone.
	UpdateUser(ctx context.Context, u *User) error
	// RecordLogin sets the user's last login time.
	RecordLogin(ctx context.Context, id string, at time.Time) error
	// DeleteUser deletes the user and, by cascade, everything the user owns. Returns
	// ENOTFOUND when there is no such user.
	DeleteUser(ctx context.Context, id string) error
}

// Session is one refresh token. A family is every token descending from one login; only
// the newest unused, unrevoked token of a family is live.
type Session struct {
	ID              string
	UserID          string
	FamilyID        string
	ParentID        string // "" for the first token of a family
	TokenHash       []byte // SHA-256 of the token; the token itself is never stored
	ExpiresAt       time.Time
	FamilyExpiresAt time.Time
	UsedAt          *time.Time
	RevokedAt       *time.Time
	IP              string
	UserAgent       string
	CreatedAt       time.Time
}

// SessionChange is what RotateSession writes after its decide function looked at the
// presented token.
type SessionChange struct {
	At           time.Time
	Spend        bool     // mark the presented token used at At
	Next         *Session // insert this token (the presented token's successor)
	RevokeFamily bool     // revoke every token of the presented token's family at At
}

// SessionStore persists refresh tokens.
type SessionStore interface {
	// CreateSession inserts s.
	CreateSession(ctx context.Context, s *Session) error
	// FindSessionByHash returns the token whose hash is tokenHash, or ENOTFOUND.
	FindSessionByHash(ctx context.Context, tokenHash []byte) (*Session, error)
	// RotateSession finds the token whose hash is tokenHash, locks it for the rest of one
	// transaction (so two concurrent uses are serialised and the second sees the first's
	// writes), calls decide with it, applies the returned change and commits — also when
	// decide returns an error, which RotateSession then returns. Returns ENOTFOUND, without
	// calling decide, when there is no such token.
	RotateSession(ctx context.Context, tokenHash []byte, decide func(cur Session) (SessionChange, error)) error
	// RevokeFamily revokes every not yet revoked token of the family.
	RevokeFamily(ctx context.Context, familyID string, at time.Time) error
	// RevokeUserSessions revokes every not yet revoked token of the user except those of
	// the family keep ("" keeps none).
	RevokeUserSessions(ctx context.Context, userID, keep string, at time.Time) error
	// SessionStartedAt returns when the user signed in to start the family: the creation
	// of its first token. ENOTFOUND when the user has no such family.
	SessionStartedAt(ctx context.Context, userID, familyID string) (time.Time, error)
}

// Audit outcomes.
const (
	OutcomeSuccess = "success"
	OutcomeFailure = "failure"
)

// Audit actions this package records.
const (
	ActionRegister             = "register"
	ActionLogin                = "login"
	ActionLogout               = "logout"
	ActionRefreshReuseDetected = "refresh_reuse_detected"
	ActionPasswordChanged      = "password_changed"
	ActionAccountDeleted       = "account_deleted"
)

// AuditEvent is one row of the audit log.
type AuditEvent struct {
	ID         string
	ActorID    string // "" when nobody known acted (a login attempt on an unknown email)
	Action     string
	TargetType string
	TargetID   string
	IP         string
	UserAgent  string
	Outcome    string
	Metadata   map[string]any // never secrets: no passwords, no tokens
	CreatedAt  time.Time
}

// AuditPage is one page of audit events, newest first.
type AuditPage struct {
	Events     []AuditEvent
	NextCursor string // "" on the last page
}

// AuditLog records and lists audit events.
type AuditLog interface {
	// RecordAudit appends e.
	RecordAudit(ctx context.Context, e AuditEvent) error
	// ListAuditByActor returns up to limit events of actorID, newest first, after cursor
	// ("" for the first page). Returns EINVALID for a cursor it did not issue.
	ListAuditByActor(ctx context.Context, actorID string, limit int, cursor string) (AuditPage, error)
}

// Allowlist answers who may use Vigil during the private beta.
type Allowlist interface {
	// Allowed reports whether email (lower-cased) is listed itself or by its "@domain".
	Allowed(ctx context.Context, email string) (bool, error)
}

// PasswordHasher hashes and checks passwords.
type PasswordHasher interface {
	// Hash returns a salted, slow hash of password.
	Hash(password string) (string, error)
	// Compare reports whether password matches hash; an error means hash is malformed.
	Compare(hash, password string) (bool, error)
}

// AccessTokens issues short-lived access tokens.
type AccessTokens interface {
	// Issue returns a signed access token for u within the refresh family sessionID, and
	// how long it is valid.
	Issue(u *User, sessionID string) (token string, expiresIn time.Duration, err error)
}

// Clock tells the time; tests inject a fixed one.
type Clock interface {
	Now() time.Time
}

// ClockFunc adapts a function to Clock.
type ClockFunc func() time.Time

// Now returns f().
func (f ClockFunc) Now() time.Time { return f() }

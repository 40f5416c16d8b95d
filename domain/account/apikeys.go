package account

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/vigilhq/vigil/domain"
)

// API key format: "vgl_" + an 8-character public prefix + "_" + 32 random bytes in
// base64url without padding, 56 characters in all. The prefix is stored in clear so a key
// can be found with one indexed lookup and recognised in a list; only the SHA-256 of the
// whole key is stored besides it.
const (
	// APIKeyTag starts every API key, so scanners and the authentication middleware can
	// tell an API key from an access token.
	APIKeyTag = "vgl_"
	// APIKeyPrefixLen is the length of the public prefix after APIKeyTag.
	APIKeyPrefixLen = 8
	// APIKeySecretBytes is the entropy of an API key: 256 bits.
	APIKeySecretBytes = 32
	// APIKeyLen is the length of a whole API key.
	APIKeyLen = len(APIKeyTag) + APIKeyPrefixLen + 1 + 43 // base64url of 32 bytes is 43 characters

	// APIKeysActiveMax is how many usable (unrevoked, unexpired) keys a user may hold: enough
	// for one per integration and environment, few enough that a leaked session cannot mint
	// keys without bound.
	APIKeysActiveMax = 20
	// APIKeyTouchInterval is how stale last_used_at may be: a key used many times a second
	// writes its row at most once a minute.
	APIKeyTouchInterval = time.Minute
)

// apiKeyPrefixAlphabet has no "_" or "-", so a prefix reads as one word.
const apiKeyPrefixAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// Audit actions and target type of API keys.
const (
	ActionAPIKeyCreated = "api_key_created"
	ActionAPIKeyRevoked = "api_key_revoked"
	TargetAPIKey        = "api_key"
)

// MsgAPIKeyInvalid is the answer for every API key that does not authenticate, whatever
// the reason, so the answer does not tell a guessed prefix from a revoked key.
const MsgAPIKeyInvalid = "The API key is not valid." // #nosec G101 -- a message, not a credential

// Scope is what an API key may do. A key for a dashboard reads; one for a script that
// manages monitors changes only those; none, whatever its scope, may delete the account or
// change its password or email, which need the owner signed in (see Service.DeleteMe).
type Scope string

// Scopes of API keys.
const (
	ScopeRead     Scope = "read"     // GET and HEAD only
	ScopeMonitors Scope = "monitors" // reads, and changes to monitors and their triggers
	ScopeFull     Scope = "full"     // everything an access token may, but the account itself
)

// ScopeDefault is the scope of a key made without one: what keys could do before scopes.
const ScopeDefault = ScopeFull

// ParseScope returns the scope named s ("" is ScopeDefault); ok is false for any other.
func ParseScope(s string) (Scope, bool) {
	switch Scope(s) {
	case "":
		return ScopeDefault, true
	case ScopeRead, ScopeMonitors, ScopeFull:
		return Scope(s), true
	}
	return "", false
}

// Permits reports whether a key of this scope may make a request: one that changes
// nothing (write false) always; one that changes something only with ScopeFull, or with
// ScopeMonitors when what it changes is a monitor or one of its triggers.
func (s Scope) Permits(write, monitors bool) bool {
	switch {
	case !write:
		return true
	case s == ScopeFull:
		return true
	case s == ScopeMonitors:
		return monitors
	}
	return false
}

// APIKey is a long-lived credential of a user for REST clients.
type APIKey struct {
	ID         string
	UserID     string
	Name       string
	Scope      Scope
	Prefix     string // the 8 public characters after "vgl_"
	KeyHash    []byte // SHA-256 of the whole key; the key itself is never stored
	ExpiresAt  *time.Time
	LastUsedAt *time.Time
	RevokedAt  *time.Time
	CreatedAt  time.Time
}

// Usable reports whether the key authenticates at now: not revoked and not expired.
func (k *APIKey) Usable(now time.Time) bool {
	return k.RevokedAt == nil && (k.ExpiresAt == nil || now.Before(*k.ExpiresAt))
}

// APIKeyStore persists API keys.
type APIKeyStore interface {
	// CreateAPIKey inserts k unless its user already holds maxActive keys usable at
	// k.CreatedAt; created is false then. The count and the insert are atomic per user, so
	// concurrent creations cannot pass the limit. Returns ECONFLICT when the prefix is taken.
	CreateAPIKey(ctx context.Context, k *APIKey, maxActive int) (created bool, err error)
	// ListAPIKeys returns the user's unrevoked keys, newest first.
	ListAPIKeys(ctx context.Context, userID string) ([]APIKey, error)
	// RevokeAPIKey revokes the user's unrevoked key id at at and returns it. Returns
	// ENOTFOUND when the user has no such unrevoked key (another user's key included).
	RevokeAPIKey(ctx context.Context, userID, id string, at time.Time) (*APIKey, error)
	// FindAPIKeyByPrefix returns the key with the prefix, revoked or not, or ENOTFOUND.
	FindAPIKeyByPrefix(ctx context.Context, prefix string) (*APIKey, error)
	// TouchAPIKey sets last_used_at to at unless it is already later than at minus
	// minInterval, so processes racing on one key write it once.
	TouchAPIKey(ctx context.Context, id string, at time.Time, minInterval time.Duration) error
}

// APIKeyDeps are the ports the APIKeyService needs; all are required.
type APIKeyDeps struct {
	Keys  APIKeyStore
	Users UserStore
	Audit AuditLog
	Clock Clock
}

// APIKeyService runs the API key use cases: create, list and revoke one's keys, and
// resolve a presented key to its owner.
type APIKeyService struct {
	d APIKeyDeps
}

// NewAPIKeyService returns the API key use cases.
func NewAPIKeyService(d APIKeyDeps) (*APIKeyService, error) {
	if d.Keys == nil || d.Users == nil || d.Audit == nil || d.Clock == nil {
		return nil, errors.New("api key service: every dependency is required")
	}
	return &APIKeyService{d: d}, nil
}

// NewAPIKey is a key just created, with the only copy of its secret form.
type NewAPIKey struct {
	APIKey
	Key string // "vgl_…"; shown once
}

// APIKeyPrincipal is who an API key authenticates.
type APIKeyPrincipal struct {
	UserID string
	Role   Role
	KeyID  string
	Scope  Scope
}

// CreateAPIKey makes a key for the user with scope ("" is ScopeDefault). Returns EINVALID
// with field errors for a name that is empty, longer than NameMaxLen or has control
// characters, an unknown scope, and an expiry that is not in the future; ECONFLICT when the user already holds
// APIKeysActiveMax usable keys.
func (s *APIKeyService) CreateAPIKey(ctx context.Context, userID, name string, scope Scope, expiresAt *time.Time, cl Client) (*NewAPIKey, error) {
	now := s.now()
	name = strings.TrimSpace(name)
	fields := map[string]string{}
	if name == "" {
		fields["name"] = "is required"
	} else if msg := validateName(name); msg != "" {
		fields["name"] = msg
	}
	scope, ok := ParseScope(string(scope))
	if !ok {
		fields["scope"] = "must be read, monitors or full"
	}
	if expiresAt != nil {
		t := expiresAt.UTC().Truncate(time.Microsecond)
		if !t.After(now) {
			fields["expires_at"] = "must be in the future"
		}
		expiresAt = &t
	}
	if err := invalid(fields); err != nil {
		return nil, err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, fmt.Errorf("new api key id: %w", err)
	}
	var (
		k       *APIKey
		key     string
		created bool
	)
	// A prefix collision (48 bits of randomness) is all but impossible; retry a few times
	// rather than fail the request if it happens.
	for attempt := 0; ; attempt++ {
		var prefix string
		key, prefix, err = newAPIKey()
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256([]byte(key))
		k = &APIKey{ID: id.String(), UserID: userID, Name: name, Scope: scope, Prefix: prefix, KeyHash: sum[:],
			ExpiresAt: expiresAt, CreatedAt: now}
		created, err = s.d.Keys.CreateAPIKey(ctx, k, APIKeysActiveMax)
		if errors.Is(err, domain.ErrConflict) && attempt < 2 {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("create api key for user %s: %w", userID, err)
		}
		break
	}
	if !created {
		return nil, &domain.Error{Code: domain.ECONFLICT,
			Message: fmt.Sprintf("You already have %d active API keys; revoke one first.", APIKeysActiveMax)}
	}
	if err := recordAudit(ctx, s.d.Audit, now, AuditEvent{ActorID: userID, Action: ActionAPIKeyCreated, TargetType: TargetAPIKey,
		TargetID: k.ID, Outcome: OutcomeSuccess, Metadata: map[string]any{"name": name, "prefix": k.Prefix, "scope": string(scope)}}, cl); err != nil {
		return nil, err
	}
	return &NewAPIKey{APIKey: *k, Key: key}, nil
}

// ListAPIKeys returns the user's unrevoked keys (expired ones included), newest first.
func (s *APIKeyService) ListAPIKeys(ctx context.Context, userID string) ([]APIKey, error) {
	keys, err := s.d.Keys.ListAPIKeys(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("list api keys of user %s: %w", userID, err)
	}
	return keys, nil
}

// RevokeAPIKey revokes one of the user's keys; it stops working at once. Returns
// ENOTFOUND for an unknown id, an already revoked key and another user's key alike.
func (s *APIKeyService) RevokeAPIKey(ctx context.Context, userID, id string, cl Client) error {
	if _, err := uuid.Parse(id); err != nil {
		return domain.Errorf(domain.ENOTFOUND, "There is no such API key.")
	}
	now := s.now()
	k, err := s.d.Keys.RevokeAPIKey(ctx, userID, id, now)
	if isNotFound(err) {
		return domain.Errorf(domain.ENOTFOUND, "There is no such API key.")
	}
	if err != nil {
		return fmt.Errorf("revoke api key %s: %w", id, err)
	}
	return recordAudit(ctx, s.d.Audit, now, AuditEvent{ActorID: userID, Action: ActionAPIKeyRevoked, TargetType: TargetAPIKey,
		TargetID: k.ID, Outcome: OutcomeSuccess, Metadata: map[string]any{"name": k.Name, "prefix": k.Prefix}}, cl)
}

// ResolveAPIKey returns who key authenticates and notes its use (at most once per
// APIKeyTouchInterval). Returns EUNAUTHORIZED (MsgAPIKeyInvalid) for malformed, unknown,
// tampered, revoked and expired keys and for keys whose owner is gone; EFORBIDDEN when the
// owner is disabled.
func (s *APIKeyService) ResolveAPIKey(ctx context.Context, key string) (APIKeyPrincipal, error) {
	prefix, ok := parseAPIKey(key)
	if !ok {
		return APIKeyPrincipal{}, errAPIKeyInvalid()
	}
	k, err := s.d.Keys.FindAPIKeyByPrefix(ctx, prefix)
	if isNotFound(err) {
		return APIKeyPrincipal{}, errAPIKeyInvalid()
	}
	if err != nil {
		return APIKeyPrincipal{}, fmt.Errorf("find api key: %w", err)
	}
	sum := sha256.Sum256([]byte(key))
	if subtle.ConstantTimeCompare(sum[:], k.KeyHash) != 1 {
		return APIKeyPrincipal{}, errAPIKeyInvalid()
	}
	now := s.now()
	if !k.Usable(now) {
		return APIKeyPrincipal{}, errAPIKeyInvalid()
	}
	u, err := s.d.Users.FindUserByID(ctx, k.UserID)
	if isNotFound(err) {
		return APIKeyPrincipal{}, errAPIKeyInvalid()
	}
	if err != nil {
		return APIKeyPrincipal{}, fmt.Errorf("find owner of api key %s: %w", k.ID, err)
	}
	if u.Disabled() {
		return APIKeyPrincipal{}, errDisabled()
	}
	if k.LastUsedAt == nil || now.Sub(*k.LastUsedAt) >= APIKeyTouchInterval {
		if err := s.d.Keys.TouchAPIKey(ctx, k.ID, now, APIKeyTouchInterval); err != nil {
			return APIKeyPrincipal{}, fmt.Errorf("note use of api key %s: %w", k.ID, err)
		}
	}
	return APIKeyPrincipal{UserID: u.ID, Role: u.Role, KeyID: k.ID, Scope: k.Scope}, nil
}

func (s *APIKeyService) now() time.Time { return s.d.Clock.Now().UTC().Truncate(time.Microsecond) }

func errAPIKeyInvalid() error {
	return &domain.Error{Code: domain.EUNAUTHORIZED, Message: MsgAPIKeyInvalid}
}

// newAPIKey returns a fresh key and its public prefix.
func newAPIKey() (key, prefix string, err error) {
	b := make([]byte, APIKeyPrefixLen+APIKeySecretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", "", fmt.Errorf("read random api key: %w", err)
	}
	p := make([]byte, APIKeyPrefixLen)
	for i := range p {
		// 256 = 4*62 + 8: the bias of a plain modulo is under 2%, on a part that only has
		// to be unique, not secret; the secret part below is uniform.
		p[i] = apiKeyPrefixAlphabet[int(b[i])%len(apiKeyPrefixAlphabet)]
	}
	prefix = string(p)
	return APIKeyTag + prefix + "_" + base64.RawURLEncoding.EncodeToString(b[APIKeyPrefixLen:]), prefix, nil
}

// parseAPIKey returns the prefix of a well-formed key; ok is false for anything Vigil
// cannot have issued, so such input never reaches the database.
func parseAPIKey(key string) (prefix string, ok bool) {
	if len(key) != APIKeyLen || !strings.HasPrefix(key, APIKeyTag) || key[len(APIKeyTag)+APIKeyPrefixLen] != '_' {
		return "", false
	}
	prefix = key[len(APIKeyTag) : len(APIKeyTag)+APIKeyPrefixLen]
	for i := 0; i < len(prefix); i++ {
		if !strings.Contains(apiKeyPrefixAlphabet, prefix[i:i+1]) {
			return "", false
		}
	}
	secret, err := base64.RawURLEncoding.Strict().DecodeString(key[len(APIKeyTag)+APIKeyPrefixLen+1:])
	if err != nil || len(secret) != APIKeySecretBytes {
		return "", false
	}
	return prefix, true
}

// recordAudit appends e, stamped with a new id, the client and now (unless set).
func recordAudit(ctx context.Context, log AuditLog, now time.Time, e AuditEvent, cl Client) error {
	id, err := uuid.NewV7()
	if err != nil {
		return fmt.Errorf("new audit id: %w", err)
	}
	e.ID, e.IP, e.UserAgent = id.String(), cl.IP, cl.UserAgent
	if e.CreatedAt.IsZero() {
		e.CreatedAt = now
	}
	if err := log.RecordAudit(ctx, e); err != nil {
		return fmt.Errorf("record audit event %s: %w", e.Action, err)
	}
	return nil
}

package postgres

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/account"
	"github.com/vigilhq/vigil/domain/event"
	"github.com/vigilhq/vigil/streams"
)

// userAgentMaxLen bounds the user agent stored with sessions and audit events.
const userAgentMaxLen = 512

var (
	_ account.UserStore    = (*AccountStore)(nil)
	_ account.SessionStore = (*SessionStore)(nil)
	_ account.AuditLog     = (*AuditStore)(nil)
	_ account.Allowlist    = (*AllowlistStore)(nil)
)

// AccountStore stores users for the account use cases.
type AccountStore struct {
	pool   *pgxpool.Pool
	source string // CloudEvents source of the events it writes to the outbox
}

// NewAccountStore returns an AccountStore; source names the role writing events.
func NewAccountStore(pool *pgxpool.Pool, source string) *AccountStore {
	return &AccountStore{pool: pool, source: source}
}

const userColumns = `id, email, name, role, coalesce(password_hash, ''), timezone, digest_hour, notifications_enabled,
	unsubscribed_at, email_verified_at, disabled_at, last_login_at, created_at, updated_at`

func scanUser(row pgx.Row) (*account.User, error) {
	var u account.User
	var role string
	err := row.Scan(&u.ID, &u.Email, &u.Name, &role, &u.PasswordHash, &u.Timezone, &u.DigestHour, &u.NotificationsEnabled,
		&u.UnsubscribedAt, &u.EmailVerifiedAt, &u.DisabledAt, &u.LastLoginAt, &u.CreatedAt, &u.UpdatedAt)
	if err != nil {
		return nil, err
	}
	u.Role = account.Role(role)
	return &u, nil
}

// CreateUser implements account.UserStore.
func (s *AccountStore) CreateUser(ctx context.Context, u *account.User) error {
	return InTx(ctx, s.pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `
			INSERT INTO users (id, email, name, role, password_hash, timezone, digest_hour, notifications_enabled,
			                   last_login_at, created_at, updated_at)
			VALUES ($1, $2, $3, $4, NULLIF($5, ''), $6, $7, $8, $9, $10, $11)`,
			u.ID, u.Email, u.Name, string(u.Role), u.PasswordHash, u.Timezone, u.DigestHour, u.NotificationsEnabled,
			u.LastLoginAt, u.CreatedAt, u.UpdatedAt)
		if err != nil {
			return fmt.Errorf("insert user: %w", translate(err))
		}
		return insertDefaultAction(ctx, tx, u)
	})
}

// DefaultActionName names the email action every account starts with.
const DefaultActionName = "Email me"

// insertDefaultAction gives a new account its default email action, to its own address.
func insertDefaultAction(ctx context.Context, tx pgx.Tx, u *account.User) error {
	_, err := tx.Exec(ctx, `
		INSERT INTO actions (user_id, name, type, config, is_default, created_at, updated_at)
		VALUES ($1, $2, 'email', jsonb_build_object('to', jsonb_build_array(lower($3::text))), true, $4, $4)`,
		u.ID, DefaultActionName, u.Email, u.CreatedAt)
	if err != nil {
		return fmt.Errorf("insert default action: %w", translate(err))
	}
	return nil
}

// FindUserByID implements account.UserStore.
func (s *AccountStore) FindUserByID(ctx context.Context, id string) (*account.User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id))
	if err != nil {
		return nil, fmt.Errorf("find user %s: %w", id, translate(err))
	}
	return u, nil
}

// FindUserByEmail implements account.UserStore; it uses the unique index on lower(email).
func (s *AccountStore) FindUserByEmail(ctx context.Context, email string) (*account.User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE lower(email) = lower($1)`, email))
	if err != nil {
		return nil, fmt.Errorf("find user by email: %w", translate(err))
	}
	return u, nil
}

// UpdateUser implements account.UserStore.
func (s *AccountStore) UpdateUser(ctx context.Context, u *account.User) error {
	tag, err := s.pool.Exec(ctx, `
		UPDATE users SET name = $2, timezone = $3, digest_hour = $4, notifications_enabled = $5,
		       password_hash = NULLIF($6, ''), unsubscribed_at = $8, updated_at = $7
		WHERE id = $1`,
		u.ID, u.Name, u.Timezone, u.DigestHour, u.NotificationsEnabled, u.PasswordHash, u.UpdatedAt, u.UnsubscribedAt)
	if err != nil {
		return fmt.Errorf("update user %s: %w", u.ID, translate(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("update user %s: %w", u.ID, domain.Errorf(domain.ENOTFOUND, "Not found."))
	}
	return nil
}

// RecordLogin implements account.UserStore.
func (s *AccountStore) RecordLogin(ctx context.Context, id string, at time.Time) error {
	if _, err := s.pool.Exec(ctx, `UPDATE users SET last_login_at = $2 WHERE id = $1`, id, at); err != nil {
		return fmt.Errorf("record login of %s: %w", id, translate(err))
	}
	return nil
}

// DeleteUser implements account.UserStore. Foreign keys cascade to the user's monitors
// (and their evaluations, facts, triggers, notifications), actions, sessions, reset tokens
// and API keys; audit rows keep their ids with the actor set null. A MonitorDeleted event
// for each monitor goes to the outbox in the same transaction.
func (s *AccountStore) DeleteUser(ctx context.Context, id string) error {
	return InTx(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id, version FROM monitors WHERE user_id = $1 FOR UPDATE`, id)
		if err != nil {
			return fmt.Errorf("lock monitors of user %s: %w", id, translate(err))
		}
		type mon struct {
			id      string
			version int64
		}
		mons, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (mon, error) {
			var m mon
			return m, r.Scan(&m.id, &m.version)
		})
		if err != nil {
			return fmt.Errorf("lock monitors of user %s: %w", id, translate(err))
		}
		tag, err := tx.Exec(ctx, `DELETE FROM users WHERE id = $1`, id)
		if err != nil {
			return fmt.Errorf("delete user %s: %w", id, translate(err))
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("delete user %s: %w", id, domain.Errorf(domain.ENOTFOUND, "Not found."))
		}
		now := time.Now().UTC()
		evs := make([]event.Event, 0, len(mons))
		for _, m := range mons {
			evs = append(evs, event.MonitorDeleted{MonitorChange: event.MonitorChange{
				ID: "monitor-deleted:" + m.id, MonitorID: m.id, UserID: id, Version: m.version + 1, At: now}})
		}
		return streams.AppendOutbox(ctx, tx, s.source, evs...)
	})
}

// SessionStore stores refresh tokens.
type SessionStore struct {
	pool *pgxpool.Pool
}

// NewSessionStore returns a SessionStore.
func NewSessionStore(pool *pgxpool.Pool) *SessionStore { return &SessionStore{pool: pool} }

const sessionColumns = `id, user_id, family_id, coalesce(parent_id::text, ''), token_hash, expires_at, family_expires_at,
	used_at, revoked_at, coalesce(host(ip), ''), coalesce(user_agent, ''), created_at`

func scanSession(row pgx.Row) (*account.Session, error) {
	var s account.Session
	err := row.Scan(&s.ID, &s.UserID, &s.FamilyID, &s.ParentID, &s.TokenHash, &s.ExpiresAt, &s.FamilyExpiresAt,
		&s.UsedAt, &s.RevokedAt, &s.IP, &s.UserAgent, &s.CreatedAt)
	if err != nil {
		return nil, err
	}
	return &s, nil
}

// dbExecer is what pgxpool.Pool and pgx.Tx have in common for writes.
type dbExecer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

func insertSession(ctx context.Context, q dbExecer, s *account.Session) error {
	_, err := q.Exec(ctx, `
		INSERT INTO refresh_tokens (id, user_id, family_id, parent_id, token_hash, expires_at, family_expires_at,
		                            ip, user_agent, created_at)
		VALUES ($1, $2, $3, NULLIF($4, '')::uuid, $5, $6, $7, $8, NULLIF($9, ''), $10)`,
		s.ID, s.UserID, s.FamilyID, s.ParentID, s.TokenHash, s.ExpiresAt, s.FamilyExpiresAt,
		inet(s.IP), truncate(s.UserAgent, userAgentMaxLen), s.CreatedAt)
	if err != nil {
		return fmt.Errorf("insert refresh token: %w", translate(err))
	}
	return nil
}

// CreateSession implements account.SessionStore.
func (s *SessionStore) CreateSession(ctx context.Context, sess *account.Session) error {
	return insertSession(ctx, s.pool, sess)
}

// FindSessionByHash implements account.SessionStore.
func (s *SessionStore) FindSessionByHash(ctx context.Context, tokenHash []byte) (*account.Session, error) {
	sess, err := scanSession(s.pool.QueryRow(ctx, `SELECT `+sessionColumns+` FROM refresh_tokens WHERE token_hash = $1`, tokenHash))
	if err != nil {
		return nil, fmt.Errorf("find refresh token: %w", translate(err))
	}
	return sess, nil
}

// RotateSession implements account.SessionStore. The presented token's row is locked with
// FOR UPDATE: a second, concurrent use of the same token waits for the first to commit and
// then sees it spent, so at most one of them gets a successor.
func (s *SessionStore) RotateSession(ctx context.Context, tokenHash []byte, decide func(account.Session) (account.SessionChange, error)) error {
	var decided error
	err := InTx(ctx, s.pool, func(tx pgx.Tx) error {
		cur, err := scanSession(tx.QueryRow(ctx, `SELECT `+sessionColumns+` FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE`, tokenHash))
		if err != nil {
			return fmt.Errorf("lock refresh token: %w", translate(err))
		}
		ch, err := decide(*cur)
		decided = err
		if ch.RevokeFamily {
			if _, err := tx.Exec(ctx, `UPDATE refresh_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL`,
				cur.FamilyID, ch.At); err != nil {
				return fmt.Errorf("revoke refresh family %s: %w", cur.FamilyID, translate(err))
			}
		}
		if ch.Spend {
			if _, err := tx.Exec(ctx, `UPDATE refresh_tokens SET used_at = $2 WHERE id = $1`, cur.ID, ch.At); err != nil {
				return fmt.Errorf("spend refresh token %s: %w", cur.ID, translate(err))
			}
		}
		if ch.Next != nil {
			return insertSession(ctx, tx, ch.Next)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return decided
}

// RevokeFamily implements account.SessionStore.
func (s *SessionStore) RevokeFamily(ctx context.Context, familyID string, at time.Time) error {
	_, err := s.pool.Exec(ctx, `UPDATE refresh_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL`, familyID, at)
	if err != nil {
		return fmt.Errorf("revoke refresh family %s: %w", familyID, translate(err))
	}
	return nil
}

// RevokeUserSessions implements account.SessionStore.
func (s *SessionStore) RevokeUserSessions(ctx context.Context, userID, keep string, at time.Time) error {
	_, err := s.pool.Exec(ctx, `
		UPDATE refresh_tokens SET revoked_at = $3
		WHERE user_id = $1 AND revoked_at IS NULL AND ($2 = '' OR family_id::text <> $2)`, userID, keep, at)
	if err != nil {
		return fmt.Errorf("revoke sessions of user %s: %w", userID, translate(err))
	}
	return nil
}

// AuditStore stores audit events.
type AuditStore struct {
	pool *pgxpool.Pool
}

// NewAuditStore returns an AuditStore.
func NewAuditStore(pool *pgxpool.Pool) *AuditStore { return &AuditStore{pool: pool} }

// RecordAudit implements account.AuditLog.
func (s *AuditStore) RecordAudit(ctx context.Context, e account.AuditEvent) error {
	meta := e.Metadata
	if meta == nil {
		meta = map[string]any{}
	}
	raw, err := json.Marshal(meta)
	if err != nil {
		return fmt.Errorf("encode audit metadata: %w", err)
	}
	createdAt := e.CreatedAt
	if createdAt.IsZero() {
		createdAt = time.Now()
	}
	_, err = s.pool.Exec(ctx, `
		INSERT INTO audit_log (id, actor_user_id, action, target_type, target_id, ip, user_agent, outcome, metadata, created_at)
		VALUES ($1, NULLIF($2, '')::uuid, $3, NULLIF($4, ''), NULLIF($5, ''), $6, NULLIF($7, ''), $8, $9, $10)`,
		e.ID, e.ActorID, e.Action, e.TargetType, e.TargetID, inet(e.IP), truncate(e.UserAgent, userAgentMaxLen),
		e.Outcome, raw, createdAt)
	if err != nil {
		return fmt.Errorf("insert audit event %s: %w", e.Action, translate(err))
	}
	return nil
}

// ListAuditByActor implements account.AuditLog with keyset pagination on
// (created_at, id), newest first; the cursor is opaque to callers.
func (s *AuditStore) ListAuditByActor(ctx context.Context, actorID string, limit int, cursor string) (account.AuditPage, error) {
	return s.page(ctx, "actor_user_id = $1", actorID, limit, cursor)
}

// page lists audit events matching where (whose one parameter is $1, bound to arg) with
// keyset pagination on (created_at, id), newest first.
func (s *AuditStore) page(ctx context.Context, where string, arg any, limit int, cursor string) (account.AuditPage, error) {
	var (
		afterAt *time.Time
		afterID *string
	)
	if cursor != "" {
		at, id, err := decodeCursor(cursor)
		if err != nil {
			return account.AuditPage{}, &domain.Error{Code: domain.EINVALID, Message: "The cursor is not valid.",
				Fields: map[string]string{"cursor": "is not a cursor this API returned"}, Err: err}
		}
		afterAt, afterID = &at, &id
	}
	rows, err := s.pool.Query(ctx, `
		SELECT id, coalesce(actor_user_id::text, ''), action, coalesce(target_type, ''), coalesce(target_id, ''),
		       coalesce(host(ip), ''), coalesce(user_agent, ''), outcome, metadata, created_at
		FROM audit_log
		WHERE `+where+` AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3::uuid))
		ORDER BY created_at DESC, id DESC
		LIMIT $4`, arg, afterAt, afterID, limit+1)
	if err != nil {
		return account.AuditPage{}, fmt.Errorf("list audit events: %w", translate(err))
	}
	events, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (account.AuditEvent, error) {
		var e account.AuditEvent
		var meta []byte
		if err := r.Scan(&e.ID, &e.ActorID, &e.Action, &e.TargetType, &e.TargetID, &e.IP, &e.UserAgent, &e.Outcome,
			&meta, &e.CreatedAt); err != nil {
			return e, err
		}
		if err := json.Unmarshal(meta, &e.Metadata); err != nil {
			return e, fmt.Errorf("decode audit metadata: %w", err)
		}
		return e, nil
	})
	if err != nil {
		return account.AuditPage{}, fmt.Errorf("list audit events: %w", translate(err))
	}
	page := account.AuditPage{Events: events}
	if len(events) > limit {
		page.Events = events[:limit]
		last := page.Events[limit-1]
		page.NextCursor = encodeCursor(last.CreatedAt, last.ID)
	}
	return page, nil
}

func encodeCursor(at time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(at.UTC().Format(time.RFC3339Nano) + "|" + id))
}

func decodeCursor(cursor string) (time.Time, string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return time.Time{}, "", fmt.Errorf("cursor is not base64url: %w", err)
	}
	ts, id, ok := strings.Cut(string(raw), "|")
	if !ok {
		return time.Time{}, "", errors.New("cursor has no id")
	}
	at, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return time.Time{}, "", fmt.Errorf("cursor time: %w", err)
	}
	if len(id) != 36 || strings.Count(id, "-") != 4 {
		return time.Time{}, "", errors.New("cursor id is not a uuid")
	}
	return at, id, nil
}

// AllowlistStore answers beta allowlist questions.
type AllowlistStore struct {
	pool *pgxpool.Pool
}

// NewAllowlistStore returns an AllowlistStore.
func NewAllowlistStore(pool *pgxpool.Pool) *AllowlistStore { return &AllowlistStore{pool: pool} }

// Allowed implements account.Allowlist: the address itself or its "@domain" is listed.
func (s *AllowlistStore) Allowed(ctx context.Context, email string) (bool, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	at := strings.LastIndexByte(email, '@')
	if at < 0 {
		return false, nil
	}
	var ok bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM beta_allowlist WHERE pattern = $1 OR pattern = $2)`,
		email, email[at:]).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("check allowlist: %w", translate(err))
	}
	return ok, nil
}

// inet returns ip for an inet column, or nil (NULL) when it is not an IP address.
func inet(ip string) any {
	if net.ParseIP(ip) == nil {
		return nil
	}
	return ip
}

// truncate makes s storable as text (valid UTF-8 without NUL bytes) of at most n bytes.
func truncate(s string, n int) string {
	s = strings.ReplaceAll(strings.ToValidUTF8(s, ""), "\x00", "")
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

var _ account.EmailVerifications = (*AccountStore)(nil)

// MarkEmailVerified implements account.EmailVerifications.
func (s *AccountStore) MarkEmailVerified(ctx context.Context, userID, email string, at time.Time) error {
	if !validID(userID) {
		return domain.Errorf(domain.ENOTFOUND, "Not found.")
	}
	tag, err := s.pool.Exec(ctx, `
		UPDATE users SET email_verified_at = coalesce(email_verified_at, $3), updated_at = $3
		WHERE id = $1 AND lower(email) = lower($2)`, userID, email, at)
	if err != nil {
		return fmt.Errorf("mark email verified: %w", translate(err))
	}
	if tag.RowsAffected() == 0 {
		return domain.Errorf(domain.ENOTFOUND, "Not found.")
	}
	return nil
}

// SessionStartedAt implements account.SessionStore.
func (s *SessionStore) SessionStartedAt(ctx context.Context, userID, familyID string) (time.Time, error) {
	var at *time.Time
	err := s.pool.QueryRow(ctx, `SELECT min(created_at) FROM refresh_tokens WHERE family_id = $1 AND user_id = $2`,
		familyID, userID).Scan(&at)
	if err != nil {
		return time.Time{}, fmt.Errorf("session %s: %w", familyID, translate(err))
	}
	if at == nil {
		return time.Time{}, &domain.Error{Code: domain.ENOTFOUND, Message: "No such session."}
	}
	return *at, nil
}

package postgres_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/postgres"
	"github.com/vigilhq/vigil/adapters/postgres/pgtest"
	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/account"
)

type accountsBundle struct {
	pool      *pgxpool.Pool
	users     *postgres.AccountStore
	sessions  *postgres.SessionStore
	audit     *postgres.AuditStore
	allowlist *postgres.AllowlistStore
	now       time.Time
}

func setupAccounts(t *testing.T) *accountsBundle {
	t.Helper()
	pool := pgtest.New(t)
	return &accountsBundle{pool: pool, users: postgres.NewAccountStore(pool, "vigil/test"),
		sessions: postgres.NewSessionStore(pool), audit: postgres.NewAuditStore(pool),
		allowlist: postgres.NewAllowlistStore(pool), now: time.Now().UTC().Truncate(time.Microsecond)}
}

func newID(t *testing.T) string {
	t.Helper()
	id, err := uuid.NewV7()
	require.NoError(t, err)
	return id.String()
}

func (b *accountsBundle) createUser(t *testing.T, email string) *account.User {
	t.Helper()
	u := &account.User{ID: newID(t), Email: email, Name: "Ann", Role: account.RoleUser, PasswordHash: "$sha256b64$x",
		Timezone: "UTC", DigestHour: 8, NotificationsEnabled: true, CreatedAt: b.now, UpdatedAt: b.now}
	require.NoError(t, b.users.CreateUser(context.Background(), u))
	return u
}

func (b *accountsBundle) createSession(t *testing.T, userID, familyID string) (*account.Session, []byte) {
	t.Helper()
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	sum := sha256.Sum256(raw)
	id := newID(t)
	if familyID == "" {
		familyID = id
	}
	s := &account.Session{ID: id, UserID: userID, FamilyID: familyID, TokenHash: sum[:], ExpiresAt: b.now.Add(time.Hour),
		FamilyExpiresAt: b.now.Add(time.Hour), IP: "203.0.113.7", UserAgent: "test", CreatedAt: b.now}
	require.NoError(t, b.sessions.CreateSession(context.Background(), s))
	return s, sum[:]
}

func TestAccountStoreUsers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupAccounts(t)
	u := b.createUser(t, "Ann@Example.com")

	got, err := b.users.FindUserByEmail(ctx, "ann@EXAMPLE.com")
	require.NoError(t, err)
	require.Equal(t, u.ID, got.ID)
	require.Equal(t, "Ann@Example.com", got.Email)
	require.Equal(t, account.RoleUser, got.Role)
	var to string
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT config->'to'->>0 FROM actions WHERE user_id = $1 AND is_default AND type = 'email'`, u.ID).Scan(&to))
	require.Equal(t, "ann@example.com", to, "a new account has its default email action")

	g := &account.User{ID: newID(t), Email: "gina@example.com", Role: account.RoleUser, Timezone: "UTC", DigestHour: 8,
		NotificationsEnabled: true, EmailVerifiedAt: &b.now, CreatedAt: b.now, UpdatedAt: b.now}
	require.NoError(t, b.users.CreateGoogleUser(ctx, g, "https://accounts.google.com", "sub-1"))
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT config->'to'->>0 FROM actions WHERE user_id = $1 AND is_default`, g.ID).Scan(&to))
	require.Equal(t, "gina@example.com", to, "so does one made with Google")

	dup := &account.User{ID: newID(t), Email: "ANN@example.COM", Role: account.RoleUser, Timezone: "UTC", DigestHour: 8,
		CreatedAt: b.now, UpdatedAt: b.now}
	err = b.users.CreateUser(ctx, dup)
	require.True(t, errors.Is(err, domain.ErrConflict), "duplicate email: %v", err)

	_, err = b.users.FindUserByEmail(ctx, "nobody@example.com")
	require.True(t, errors.Is(err, domain.ErrNotFound))
	_, err = b.users.FindUserByID(ctx, newID(t))
	require.True(t, errors.Is(err, domain.ErrNotFound))

	got.Name, got.Timezone, got.DigestHour, got.NotificationsEnabled, got.PasswordHash = "Ann B", "Europe/Berlin", 6, false, "$sha256b64$y"
	got.UpdatedAt = b.now.Add(time.Minute)
	require.NoError(t, b.users.UpdateUser(ctx, got))
	again, err := b.users.FindUserByID(ctx, u.ID)
	require.NoError(t, err)
	require.Equal(t, "Ann B", again.Name)
	require.Equal(t, "Europe/Berlin", again.Timezone)
	require.Equal(t, 6, again.DigestHour)
	require.False(t, again.NotificationsEnabled)
	require.Equal(t, "$sha256b64$y", again.PasswordHash)

	require.NoError(t, b.users.RecordLogin(ctx, u.ID, b.now))
	again, err = b.users.FindUserByID(ctx, u.ID)
	require.NoError(t, err)
	require.NotNil(t, again.LastLoginAt)
	require.True(t, again.LastLoginAt.Equal(b.now))

	missing := *again
	missing.ID = newID(t)
	require.True(t, errors.Is(b.users.UpdateUser(ctx, &missing), domain.ErrNotFound))
}

func TestDeleteUserCascades(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupAccounts(t)
	u := b.createUser(t, "gone@example.com")
	other := b.createUser(t, "stays@example.com")
	for _, owner := range []string{u.ID, other.ID} {
		_, err := b.pool.Exec(ctx, `
			INSERT INTO monitors (user_id, name, prompt, kind, spec, interval_seconds, next_run_at)
			VALUES ($1, 'm', 'watch it', 'current_state', '{}', 60, now())`, owner)
		require.NoError(t, err)
	}
	b.createSession(t, u.ID, "")
	b.createSession(t, other.ID, "")
	require.NoError(t, b.audit.RecordAudit(ctx, account.AuditEvent{ID: newID(t), ActorID: u.ID, Action: "login",
		Outcome: "success", CreatedAt: b.now}))

	require.NoError(t, b.users.DeleteUser(ctx, u.ID))
	count := func(sql string, args ...any) int {
		var n int
		require.NoError(t, b.pool.QueryRow(ctx, sql, args...).Scan(&n))
		return n
	}
	require.Zero(t, count(`SELECT count(*) FROM monitors WHERE user_id = $1`, u.ID))
	require.Zero(t, count(`SELECT count(*) FROM refresh_tokens WHERE user_id = $1`, u.ID))
	require.Equal(t, 1, count(`SELECT count(*) FROM monitors WHERE user_id = $1`, other.ID))
	require.Equal(t, 1, count(`SELECT count(*) FROM refresh_tokens WHERE user_id = $1`, other.ID))
	require.Equal(t, 1, count(`SELECT count(*) FROM audit_log WHERE actor_user_id IS NULL`), "audit rows outlive the account")
	require.Equal(t, 1, count(`SELECT count(*) FROM outbox WHERE type = 'vigil.monitor.deleted.v1' AND convert_from(payload, 'UTF8')::jsonb->>'user_id' = $1`, u.ID), "a MonitorDeleted event")

	require.True(t, errors.Is(b.users.DeleteUser(ctx, u.ID), domain.ErrNotFound))
}

func TestRotateSession(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupAccounts(t)
	u := b.createUser(t, "rot@example.com")
	first, hash := b.createSession(t, u.ID, "")

	next := &account.Session{ID: newID(t), UserID: u.ID, FamilyID: first.FamilyID, ParentID: first.ID, TokenHash: []byte("next-hash-32-bytes-long-enough!!"),
		ExpiresAt: first.FamilyExpiresAt, FamilyExpiresAt: first.FamilyExpiresAt, CreatedAt: b.now}
	err := b.sessions.RotateSession(ctx, hash, func(cur account.Session) (account.SessionChange, error) {
		require.Equal(t, first.ID, cur.ID)
		require.Nil(t, cur.UsedAt)
		require.Equal(t, "203.0.113.7", cur.IP)
		return account.SessionChange{At: b.now, Spend: true, Next: next}, nil
	})
	require.NoError(t, err)
	got, err := b.sessions.FindSessionByHash(ctx, next.TokenHash)
	require.NoError(t, err)
	require.Equal(t, first.ID, got.ParentID)
	require.Equal(t, first.FamilyID, got.FamilyID)

	// A decide error still commits the change it returned (reuse revokes the family).
	reuse := errors.New("reused")
	err = b.sessions.RotateSession(ctx, hash, func(cur account.Session) (account.SessionChange, error) {
		require.NotNil(t, cur.UsedAt)
		return account.SessionChange{At: b.now, RevokeFamily: true}, reuse
	})
	require.ErrorIs(t, err, reuse)
	got, err = b.sessions.FindSessionByHash(ctx, next.TokenHash)
	require.NoError(t, err)
	require.NotNil(t, got.RevokedAt, "the newest token of the family is revoked too")

	err = b.sessions.RotateSession(ctx, []byte("unknown"), func(account.Session) (account.SessionChange, error) {
		t.Fatal("decide called for an unknown token")
		return account.SessionChange{}, nil
	})
	require.True(t, errors.Is(err, domain.ErrNotFound))
}

// Two concurrent uses of one refresh token: the row lock lets exactly one rotate it.
func TestRotateSessionConcurrentUseSucceedsOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupAccounts(t)
	u := b.createUser(t, "race@example.com")
	first, hash := b.createSession(t, u.ID, "")

	const n = 6
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		successes int
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := b.sessions.RotateSession(ctx, hash, func(cur account.Session) (account.SessionChange, error) {
				if cur.UsedAt != nil {
					return account.SessionChange{}, errors.New("spent")
				}
				time.Sleep(20 * time.Millisecond) // widen the race window
				h := sha256.Sum256([]byte{byte(i)})
				return account.SessionChange{At: time.Now(), Spend: true, Next: &account.Session{ID: uuid.Must(uuid.NewV7()).String(),
					UserID: u.ID, FamilyID: first.FamilyID, ParentID: cur.ID, TokenHash: h[:], ExpiresAt: cur.FamilyExpiresAt,
					FamilyExpiresAt: cur.FamilyExpiresAt, CreatedAt: time.Now()}}, nil
			})
			if err == nil {
				mu.Lock()
				successes++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	require.Equal(t, 1, successes)
	var children int
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM refresh_tokens WHERE parent_id = $1`, first.ID).Scan(&children))
	require.Equal(t, 1, children)
}

func TestRevokeUserSessionsKeepsOneFamily(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupAccounts(t)
	u := b.createUser(t, "multi@example.com")
	keep, keepHash := b.createSession(t, u.ID, "")
	_, otherHash := b.createSession(t, u.ID, "")
	stranger := b.createUser(t, "stranger@example.com")
	_, strangerHash := b.createSession(t, stranger.ID, "")

	require.NoError(t, b.sessions.RevokeUserSessions(ctx, u.ID, keep.FamilyID, b.now))
	for hash, revoked := range map[*[]byte]bool{&keepHash: false, &otherHash: true, &strangerHash: false} {
		s, err := b.sessions.FindSessionByHash(ctx, *hash)
		require.NoError(t, err)
		require.Equal(t, revoked, s.RevokedAt != nil)
	}
	require.NoError(t, b.sessions.RevokeFamily(ctx, keep.FamilyID, b.now))
	s, err := b.sessions.FindSessionByHash(ctx, keepHash)
	require.NoError(t, err)
	require.NotNil(t, s.RevokedAt)
}

func TestAuditPagination(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupAccounts(t)
	u := b.createUser(t, "audit@example.com")
	other := b.createUser(t, "other@example.com")
	const total = 7
	for i := range total {
		at := b.now.Add(time.Duration(i) * time.Second)
		if i >= 5 {
			at = b.now.Add(5 * time.Second) // equal times: the id breaks the tie
		}
		require.NoError(t, b.audit.RecordAudit(ctx, account.AuditEvent{ID: newID(t), ActorID: u.ID, Action: "login",
			Outcome: "success", IP: "2001:db8::1", UserAgent: "ua\x00with nul", Metadata: map[string]any{"i": i}, CreatedAt: at}))
	}
	require.NoError(t, b.audit.RecordAudit(ctx, account.AuditEvent{ID: newID(t), ActorID: other.ID, Action: "login",
		Outcome: "failure", IP: "not an ip", CreatedAt: b.now}))

	var seen []float64
	cursor := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 5)
		page, err := b.audit.ListAuditByActor(ctx, u.ID, 3, cursor)
		require.NoError(t, err)
		for _, e := range page.Events {
			require.Equal(t, u.ID, e.ActorID)
			require.Equal(t, "2001:db8::1", e.IP)
			require.Equal(t, "uawith nul", e.UserAgent)
			seen = append(seen, e.Metadata["i"].(float64))
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	require.Len(t, seen, total)
	require.ElementsMatch(t, []float64{0, 1, 2, 3, 4, 5, 6}, seen)
	require.Equal(t, []float64{4, 3, 2, 1, 0}, seen[2:], "newest first")

	_, err := b.audit.ListAuditByActor(ctx, u.ID, 3, "garbage!")
	require.True(t, errors.Is(err, domain.ErrInvalid), "%v", err)
}

func TestAllowlist(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupAccounts(t)
	_, err := b.pool.Exec(ctx, `INSERT INTO beta_allowlist (pattern, kind) VALUES ('ann@example.com', 'email'), ('@invited.example', 'domain')`)
	require.NoError(t, err)
	for email, want := range map[string]bool{
		"ann@example.com":            true,
		"ANN@Example.com":            true,
		"bob@example.com":            false,
		"anyone@invited.example":     true,
		"x@sub.invited.example":      false,
		"invited.example@evil.test":  false,
		"ann@example.com.evil.test":  false,
		"not-an-email":               false,
		"someone@@invited.example":   true, // the domain is what follows the last @
		"@invited.example@evil.test": false,
	} {
		got, err := b.allowlist.Allowed(ctx, email)
		require.NoError(t, err)
		require.Equal(t, want, got, email)
	}
}

package postgres_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/postgres"
	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/account"
)

func (b *accountsBundle) resetToken(t *testing.T, store *postgres.ResetTokenStore, userID string, ttl time.Duration) []byte {
	t.Helper()
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	sum := sha256.Sum256(raw)
	require.NoError(t, store.ReplaceResetToken(context.Background(), &account.ResetToken{ID: newID(t), UserID: userID,
		TokenHash: sum[:], ExpiresAt: b.now.Add(ttl), CreatedAt: b.now}))
	return sum[:]
}

func TestResetTokenStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupAccounts(t)
	store := postgres.NewResetTokenStore(b.pool)
	u := b.createUser(t, "reset@example.com")
	b.createSession(t, u.ID, "")
	b.createSession(t, u.ID, "")

	first := b.resetToken(t, store, u.ID, time.Hour)
	second := b.resetToken(t, store, u.ID, time.Hour)
	_, err := store.FindResetToken(ctx, first)
	require.ErrorIs(t, err, domain.ErrNotFound, "a new token voids the older one")
	got, err := store.FindResetToken(ctx, second)
	require.NoError(t, err)
	require.Equal(t, u.ID, got.UserID)
	require.Nil(t, got.UsedAt)

	_, err = store.CompleteReset(ctx, account.ResetCompletion{TokenHash: second, PasswordHash: "$sha256b64$new", At: b.now.Add(time.Hour)})
	require.ErrorIs(t, err, domain.ErrNotFound, "expired at its expiry")

	at := b.now.Add(time.Minute)
	userID, err := store.CompleteReset(ctx, account.ResetCompletion{TokenHash: second, PasswordHash: "$sha256b64$new", At: at})
	require.NoError(t, err)
	require.Equal(t, u.ID, userID)
	after, err := b.users.FindUserByID(ctx, u.ID)
	require.NoError(t, err)
	require.Equal(t, "$sha256b64$new", after.PasswordHash)
	require.NotNil(t, after.EmailVerifiedAt, "the reset proved the mailbox")
	var live int
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM refresh_tokens WHERE user_id = $1 AND revoked_at IS NULL`, u.ID).Scan(&live))
	require.Zero(t, live, "every session is revoked")

	_, err = store.CompleteReset(ctx, account.ResetCompletion{TokenHash: second, PasswordHash: "$sha256b64$again", At: at})
	require.ErrorIs(t, err, domain.ErrNotFound, "a token works once")
	spent, err := store.FindResetToken(ctx, second)
	require.NoError(t, err)
	require.NotNil(t, spent.UsedAt)

	require.ErrorIs(t, store.ReplaceResetToken(ctx, &account.ResetToken{ID: newID(t), UserID: newID(t), TokenHash: []byte("x"),
		ExpiresAt: b.now, CreatedAt: b.now}), domain.ErrNotFound)
}

// A Google identity that signed up with an email it had not verified must not survive the
// mailbox owner's password reset, or its holder would keep a way into the account.
func TestCompleteResetDropsGoogleIdentityOfUnverifiedEmail(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupAccounts(t)
	store := postgres.NewResetTokenStore(b.pool)
	newGoogleUser := func(email, subject string, verified bool) *account.User {
		u := &account.User{ID: newID(t), Email: email, Role: account.RoleUser, Timezone: "UTC", DigestHour: 8,
			CreatedAt: b.now, UpdatedAt: b.now}
		if verified {
			u.EmailVerifiedAt = &b.now
		}
		require.NoError(t, b.users.CreateGoogleUser(ctx, u, "https://accounts.google.com", subject))
		return u
	}
	squatter := newGoogleUser("victim@example.com", "squatter", false)
	owner := newGoogleUser("owner@example.com", "owner", true)

	for _, u := range []*account.User{squatter, owner} {
		tok := b.resetToken(t, store, u.ID, time.Hour)
		_, err := store.CompleteReset(ctx, account.ResetCompletion{TokenHash: tok, PasswordHash: "$sha256b64$new", At: b.now})
		require.NoError(t, err)
	}
	_, err := b.users.FindUserByGoogle(ctx, "https://accounts.google.com", "squatter")
	require.ErrorIs(t, err, domain.ErrNotFound)
	got, err := b.users.FindUserByGoogle(ctx, "https://accounts.google.com", "owner")
	require.NoError(t, err)
	require.Equal(t, owner.ID, got.ID)
	require.True(t, got.HasPassword(), "a Google-only account can get a password by reset")
}

func TestLinkGoogle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupAccounts(t)
	u := b.createUser(t, "link@example.com")
	other := b.createUser(t, "other@example.com")
	require.NoError(t, b.users.LinkGoogle(ctx, u.ID, "https://idp.example", "sub-1", true, b.now))
	require.NoError(t, b.users.LinkGoogle(ctx, u.ID, "https://idp.example", "sub-1", true, b.now), "idempotent")
	require.ErrorIs(t, b.users.LinkGoogle(ctx, u.ID, "https://idp.example", "sub-2", true, b.now), domain.ErrConflict)
	require.ErrorIs(t, b.users.LinkGoogle(ctx, other.ID, "https://idp.example", "sub-1", true, b.now), domain.ErrConflict)
	require.ErrorIs(t, b.users.LinkGoogle(ctx, newID(t), "https://idp.example", "sub-3", true, b.now), domain.ErrNotFound)
	got, err := b.users.FindUserByGoogle(ctx, "https://idp.example", "sub-1")
	require.NoError(t, err)
	require.Equal(t, u.ID, got.ID)
	require.NotNil(t, got.EmailVerifiedAt)
	require.ErrorIs(t, b.users.CreateGoogleUser(ctx, &account.User{ID: newID(t), Email: "LINK@example.com", Role: account.RoleUser,
		Timezone: "UTC", DigestHour: 8, CreatedAt: b.now, UpdatedAt: b.now}, "https://idp.example", "sub-9"), domain.ErrConflict)
}

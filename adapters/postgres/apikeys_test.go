package postgres_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/postgres"
	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/account"
)

func newAPIKey(t *testing.T, userID, prefix string, at time.Time) *account.APIKey {
	t.Helper()
	sum := sha256.Sum256([]byte("vgl_" + prefix + "_secret"))
	return &account.APIKey{ID: newID(t), UserID: userID, Name: "key " + prefix, Scope: account.ScopeRead, Prefix: prefix, KeyHash: sum[:], CreatedAt: at}
}

func TestAPIKeyStore(t *testing.T) {
	t.Parallel()
	b := setupAccounts(t)
	ctx := context.Background()
	keys := postgres.NewAPIKeyStore(b.pool)
	ann, bob := b.createUser(t, "ann@example.com"), b.createUser(t, "bob@example.com")

	k := newAPIKey(t, ann.ID, "AAAAAAAA", b.now)
	created, err := keys.CreateAPIKey(ctx, k, 5)
	require.NoError(t, err)
	require.True(t, created)
	_, err = keys.CreateAPIKey(ctx, newAPIKey(t, bob.ID, "AAAAAAAA", b.now), 5)
	require.ErrorIs(t, err, domain.ErrConflict, "prefixes are unique")

	got, err := keys.FindAPIKeyByPrefix(ctx, "AAAAAAAA")
	require.NoError(t, err)
	require.Equal(t, []any{k.ID, k.UserID, k.Name, k.Scope, k.Prefix, k.KeyHash}, []any{got.ID, got.UserID, got.Name, got.Scope, got.Prefix, got.KeyHash})
	require.True(t, k.CreatedAt.Equal(got.CreatedAt))
	require.Nil(t, got.ExpiresAt)
	require.Nil(t, got.LastUsedAt)
	require.Nil(t, got.RevokedAt)
	_, err = keys.FindAPIKeyByPrefix(ctx, "BBBBBBBB")
	require.ErrorIs(t, err, domain.ErrNotFound)

	// Touch writes at most once per interval.
	require.NoError(t, keys.TouchAPIKey(ctx, k.ID, b.now, time.Minute))
	require.NoError(t, keys.TouchAPIKey(ctx, k.ID, b.now.Add(30*time.Second), time.Minute))
	got, err = keys.FindAPIKeyByPrefix(ctx, "AAAAAAAA")
	require.NoError(t, err)
	require.True(t, b.now.Equal(*got.LastUsedAt))
	require.NoError(t, keys.TouchAPIKey(ctx, k.ID, b.now.Add(time.Minute), time.Minute))
	got, err = keys.FindAPIKeyByPrefix(ctx, "AAAAAAAA")
	require.NoError(t, err)
	require.True(t, b.now.Add(time.Minute).Equal(*got.LastUsedAt))

	// Revoking is scoped to the owner and happens once.
	_, err = keys.RevokeAPIKey(ctx, bob.ID, k.ID, b.now)
	require.ErrorIs(t, err, domain.ErrNotFound)
	revoked, err := keys.RevokeAPIKey(ctx, ann.ID, k.ID, b.now)
	require.NoError(t, err)
	require.True(t, b.now.Equal(*revoked.RevokedAt))
	_, err = keys.RevokeAPIKey(ctx, ann.ID, k.ID, b.now)
	require.ErrorIs(t, err, domain.ErrNotFound)
	list, err := keys.ListAPIKeys(ctx, ann.ID)
	require.NoError(t, err)
	require.Empty(t, list, "revoked keys are not listed")
}

// TestAPIKeyStoreLimitUnderConcurrency: concurrent creations for one user never pass the
// limit of usable keys; expired and revoked keys do not count.
func TestAPIKeyStoreLimitUnderConcurrency(t *testing.T) {
	t.Parallel()
	b := setupAccounts(t)
	ctx := context.Background()
	keys := postgres.NewAPIKeyStore(b.pool)
	ann := b.createUser(t, "ann@example.com")
	expired := newAPIKey(t, ann.ID, "EXPIRED0", b.now.Add(-time.Hour))
	past := b.now.Add(-time.Minute)
	expired.ExpiresAt = &past
	created, err := keys.CreateAPIKey(ctx, expired, 5)
	require.NoError(t, err)
	require.True(t, created)

	var (
		wg sync.WaitGroup
		mu sync.Mutex
		n  int
	)
	for i := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := keys.CreateAPIKey(ctx, newAPIKey(t, ann.ID, fmt.Sprintf("CONC%04d", i), b.now), 5)
			if err != nil {
				t.Error(err)
				return
			}
			if ok {
				mu.Lock()
				n++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	require.Equal(t, 5, n)
	list, err := keys.ListAPIKeys(ctx, ann.ID)
	require.NoError(t, err)
	require.Len(t, list, 6, "five usable keys and the expired one")
	require.Equal(t, "EXPIRED0", list[len(list)-1].Prefix, "newest first")
}

package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigilhq/vigil/domain/account"
)

var _ account.APIKeyStore = (*APIKeyStore)(nil)

// APIKeyStore stores API keys: the public prefix and the SHA-256 of the key, never the key.
type APIKeyStore struct {
	pool *pgxpool.Pool
}

// NewAPIKeyStore returns an APIKeyStore.
func NewAPIKeyStore(pool *pgxpool.Pool) *APIKeyStore { return &APIKeyStore{pool: pool} }

const apiKeyColumns = `id, user_id, name, scope, prefix, key_hash, expires_at, last_used_at, revoked_at, created_at` // #nosec G101 -- column names, not a credential

func scanAPIKey(row pgx.Row) (*account.APIKey, error) {
	var k account.APIKey
	if err := row.Scan(&k.ID, &k.UserID, &k.Name, &k.Scope, &k.Prefix, &k.KeyHash, &k.ExpiresAt, &k.LastUsedAt, &k.RevokedAt,
		&k.CreatedAt); err != nil {
		return nil, err
	}
	return &k, nil
}

// CreateAPIKey implements account.APIKeyStore. A transaction-scoped advisory lock per user
// serialises the count and the insert of concurrent creations for one user without
// locking the user's row.
func (s *APIKeyStore) CreateAPIKey(ctx context.Context, k *account.APIKey, maxActive int) (bool, error) {
	created := false
	err := InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('api_keys:' || $1::text, 0))`, k.UserID); err != nil {
			return fmt.Errorf("lock api keys of user %s: %w", k.UserID, translate(err))
		}
		var active int
		if err := tx.QueryRow(ctx, `
			SELECT count(*) FROM api_keys
			WHERE user_id = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)`,
			k.UserID, k.CreatedAt).Scan(&active); err != nil {
			return fmt.Errorf("count api keys of user %s: %w", k.UserID, translate(err))
		}
		if active >= maxActive {
			return nil
		}
		if _, err := tx.Exec(ctx, `
			INSERT INTO api_keys (id, user_id, name, scope, prefix, key_hash, expires_at, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			k.ID, k.UserID, k.Name, string(k.Scope), k.Prefix, k.KeyHash, k.ExpiresAt, k.CreatedAt); err != nil {
			return fmt.Errorf("insert api key: %w", translate(err))
		}
		created = true
		return nil
	})
	if err != nil {
		return false, err
	}
	return created, nil
}

// ListAPIKeys implements account.APIKeyStore.
func (s *APIKeyStore) ListAPIKeys(ctx context.Context, userID string) ([]account.APIKey, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+apiKeyColumns+` FROM api_keys
		WHERE user_id = $1 AND revoked_at IS NULL ORDER BY created_at DESC, id DESC`, userID)
	if err != nil {
		return nil, fmt.Errorf("list api keys of user %s: %w", userID, translate(err))
	}
	keys, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (account.APIKey, error) {
		k, err := scanAPIKey(r)
		if err != nil {
			return account.APIKey{}, err
		}
		return *k, nil
	})
	if err != nil {
		return nil, fmt.Errorf("list api keys of user %s: %w", userID, translate(err))
	}
	return keys, nil
}

// RevokeAPIKey implements account.APIKeyStore.
func (s *APIKeyStore) RevokeAPIKey(ctx context.Context, userID, id string, at time.Time) (*account.APIKey, error) {
	k, err := scanAPIKey(s.pool.QueryRow(ctx, `
		UPDATE api_keys SET revoked_at = $3
		WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL
		RETURNING `+apiKeyColumns, id, userID, at))
	if err != nil {
		return nil, fmt.Errorf("revoke api key %s: %w", id, translate(err))
	}
	return k, nil
}

// FindAPIKeyByPrefix implements account.APIKeyStore with the unique index on prefix.
func (s *APIKeyStore) FindAPIKeyByPrefix(ctx context.Context, prefix string) (*account.APIKey, error) {
	k, err := scanAPIKey(s.pool.QueryRow(ctx, `SELECT `+apiKeyColumns+` FROM api_keys WHERE prefix = $1`, prefix))
	if err != nil {
		return nil, fmt.Errorf("find api key by prefix: %w", translate(err))
	}
	return k, nil
}

// TouchAPIKey implements account.APIKeyStore; the condition in the WHERE clause makes
// concurrent touches from several processes write the row once.
func (s *APIKeyStore) TouchAPIKey(ctx context.Context, id string, at time.Time, minInterval time.Duration) error {
	_, err := s.pool.Exec(ctx, `
		UPDATE api_keys SET last_used_at = $2
		WHERE id = $1 AND (last_used_at IS NULL OR last_used_at <= $2::timestamptz - $3::bigint * interval '1 microsecond')`,
		id, at, minInterval.Microseconds())
	if err != nil {
		return fmt.Errorf("touch api key %s: %w", id, translate(err))
	}
	return nil
}

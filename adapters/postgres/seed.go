package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// SeedStore creates the rows `vigil seed` needs, idempotently, without going through the
// API (the admin user is made before any API runs).
type SeedStore struct {
	pool *pgxpool.Pool
}

// NewSeedStore returns a SeedStore.
func NewSeedStore(pool *pgxpool.Pool) *SeedStore { return &SeedStore{pool: pool} }

// EnsureUser returns the id of the user with email, creating it with passwordHash (bcrypt)
// and role when missing; created says whether it did.
func (s *SeedStore) EnsureUser(ctx context.Context, email, name, role, passwordHash string) (id string, created bool, err error) {
	err = s.pool.QueryRow(ctx, `
		INSERT INTO users (email, name, role, password_hash, email_verified_at) VALUES ($1, $2, $3, $4, now())
		ON CONFLICT ((lower(email))) DO NOTHING RETURNING id`, email, name, role, passwordHash).Scan(&id)
	if err == nil {
		return id, true, nil
	}
	if err != pgx.ErrNoRows {
		return "", false, fmt.Errorf("insert user %s: %w", email, translate(err))
	}
	if err := s.pool.QueryRow(ctx, `SELECT id FROM users WHERE lower(email) = lower($1)`, email).Scan(&id); err != nil {
		return "", false, fmt.Errorf("find user %s: %w", email, translate(err))
	}
	return id, false, nil
}

// EnsureAllowlisted puts email on the beta allowlist.
func (s *SeedStore) EnsureAllowlisted(ctx context.Context, email, addedBy string) error {
	_, err := s.pool.Exec(ctx, `
		INSERT INTO beta_allowlist (pattern, kind, added_by) VALUES (lower($1), 'email', $2)
		ON CONFLICT (pattern) DO NOTHING`, email, addedBy)
	if err != nil {
		return fmt.Errorf("allowlist %s: %w", email, translate(err))
	}
	return nil
}

// EnsureEmailAction returns the id of the user's email action called name, creating it
// (sending to the user's own address) when missing; the user's first becomes the default
// action, as registration's does.
func (s *SeedStore) EnsureEmailAction(ctx context.Context, userID, name string) (string, error) {
	var id string
	err := s.pool.QueryRow(ctx, `SELECT id FROM actions WHERE user_id = $1 AND name = $2 AND type = 'email'`, userID, name).Scan(&id)
	if err == nil {
		return id, nil
	}
	if err != pgx.ErrNoRows {
		return "", fmt.Errorf("find action: %w", translate(err))
	}
	if err := s.pool.QueryRow(ctx, `
		INSERT INTO actions (user_id, name, type, config, is_default)
		SELECT id, $2, 'email', jsonb_build_object('to', jsonb_build_array(lower(email))),
		       NOT EXISTS (SELECT 1 FROM actions WHERE user_id = $1 AND is_default)
		FROM users WHERE id = $1
		RETURNING id`, userID, name).Scan(&id); err != nil {
		return "", fmt.Errorf("insert action: %w", translate(err))
	}
	return id, nil
}

// EnsureTrigger links a monitor to an action for condition with frequency every_time.
func (s *SeedStore) EnsureTrigger(ctx context.Context, monitorID, actionID, condition, frequency string) error {
	_, err := s.pool.Exec(ctx, `
		INSERT INTO triggers (monitor_id, action_id, condition, frequency) VALUES ($1, $2, $3, $4)
		ON CONFLICT (monitor_id, action_id, condition) DO NOTHING`, monitorID, actionID, condition, frequency)
	if err != nil {
		return fmt.Errorf("insert trigger: %w", translate(err))
	}
	return nil
}

// FindMonitorIDByName returns the id of the user's monitor called name, or "" when none.
func (s *SeedStore) FindMonitorIDByName(ctx context.Context, userID, name string) (string, error) {
	var id string
	err := s.pool.QueryRow(ctx, `SELECT id FROM monitors WHERE user_id = $1 AND name = $2 ORDER BY created_at LIMIT 1`, userID, name).Scan(&id)
	if err == pgx.ErrNoRows {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("find monitor %q: %w", name, translate(err))
	}
	return id, nil
}

package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// UserStore holds user settings the pipeline needs.
type UserStore struct {
	pool *pgxpool.Pool
}

// NewUserStore returns a UserStore.
func NewUserStore(pool *pgxpool.Pool) *UserStore { return &UserStore{pool: pool} }

// Unsubscribe turns notification email off for the user when email is the user's own
// address, and puts email on the suppression list otherwise. Idempotent.
func (s *UserStore) Unsubscribe(ctx context.Context, userID, email string) error {
	return InTx(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `
			UPDATE users SET unsubscribed_at = coalesce(unsubscribed_at, now()), updated_at = now()
			WHERE id = $1 AND lower(email) = lower($2)`, userID, email)
		if err != nil {
			return fmt.Errorf("unsubscribe user: %w", translate(err))
		}
		if tag.RowsAffected() > 0 {
			return nil
		}
		_, err = tx.Exec(ctx, `
			INSERT INTO email_suppressions (email, reason, detail) VALUES (lower($1), 'unsubscribe', 'one-click link')
			ON CONFLICT (email) DO NOTHING`, email)
		if err != nil {
			return fmt.Errorf("suppress address: %w", translate(err))
		}
		return nil
	})
}

// Resubscribe undoes Unsubscribe: notification email to the user's own address starts
// again, and another address leaves the suppression list if an unsubscribe (not a bounce
// or a complaint) put it there.
func (s *UserStore) Resubscribe(ctx context.Context, userID, email string) error {
	return InTx(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `
			UPDATE users SET unsubscribed_at = NULL, updated_at = now()
			WHERE id = $1 AND lower(email) = lower($2)`, userID, email)
		if err != nil {
			return fmt.Errorf("resubscribe user: %w", translate(err))
		}
		if tag.RowsAffected() > 0 {
			return nil
		}
		if _, err := tx.Exec(ctx, `DELETE FROM email_suppressions WHERE email = lower($1) AND reason = 'unsubscribe'`, email); err != nil {
			return fmt.Errorf("unsuppress address: %w", translate(err))
		}
		return nil
	})
}

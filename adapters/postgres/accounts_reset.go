package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/account"
)

var _ account.ResetTokenStore = (*ResetTokenStore)(nil)

// ResetTokenStore stores password reset tokens (only their SHA-256 hashes).
type ResetTokenStore struct {
	pool *pgxpool.Pool
}

// NewResetTokenStore returns a ResetTokenStore.
func NewResetTokenStore(pool *pgxpool.Pool) *ResetTokenStore { return &ResetTokenStore{pool: pool} }

// ReplaceResetToken implements account.ResetTokenStore. The user's row is locked first, so
// two concurrent requests for one user are serialised and only the later token survives.
// Expired tokens of the user are cleared on the way; spent ones stay as a record.
func (s *ResetTokenStore) ReplaceResetToken(ctx context.Context, t *account.ResetToken) error {
	return InTx(ctx, s.pool, func(tx pgx.Tx) error {
		var one int
		if err := tx.QueryRow(ctx, `SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE`, t.UserID).Scan(&one); err != nil {
			return fmt.Errorf("lock user %s: %w", t.UserID, translate(err))
		}
		if _, err := tx.Exec(ctx, `DELETE FROM password_reset_tokens WHERE user_id = $1 AND used_at IS NULL`, t.UserID); err != nil {
			return fmt.Errorf("void older reset tokens of user %s: %w", t.UserID, translate(err))
		}
		_, err := tx.Exec(ctx, `
			INSERT INTO password_reset_tokens (id, user_id, token_hash, expires_at, created_at)
			VALUES ($1, $2, $3, $4, $5)`, t.ID, t.UserID, t.TokenHash, t.ExpiresAt, t.CreatedAt)
		if err != nil {
			return fmt.Errorf("insert reset token: %w", translate(err))
		}
		return nil
	})
}

// FindResetToken implements account.ResetTokenStore.
func (s *ResetTokenStore) FindResetToken(ctx context.Context, tokenHash []byte) (*account.ResetToken, error) {
	var t account.ResetToken
	err := s.pool.QueryRow(ctx, `
		SELECT id, user_id, token_hash, expires_at, used_at, created_at
		FROM password_reset_tokens WHERE token_hash = $1`, tokenHash).
		Scan(&t.ID, &t.UserID, &t.TokenHash, &t.ExpiresAt, &t.UsedAt, &t.CreatedAt)
	if err != nil {
		return nil, fmt.Errorf("find reset token: %w", translate(err))
	}
	return &t, nil
}

// CompleteReset implements account.ResetTokenStore. The conditional UPDATE that spends the
// token takes its row lock: a concurrent use of the same token waits, then finds it used
// and changes nothing.
func (s *ResetTokenStore) CompleteReset(ctx context.Context, c account.ResetCompletion) (string, error) {
	var userID string
	err := InTx(ctx, s.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `
			UPDATE password_reset_tokens SET used_at = $2
			WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2
			RETURNING user_id`, c.TokenHash, c.At).Scan(&userID)
		if err != nil {
			return fmt.Errorf("spend reset token: %w", translate(err))
		}
		// A Google identity linked while the email was unverified goes: whoever linked it
		// never proved they own the mailbox that just proved itself.
		tag, err := tx.Exec(ctx, `
			UPDATE users SET password_hash = $2, updated_at = $3,
			       google_issuer = CASE WHEN email_verified_at IS NULL THEN NULL ELSE google_issuer END,
			       google_subject = CASE WHEN email_verified_at IS NULL THEN NULL ELSE google_subject END,
			       email_verified_at = coalesce(email_verified_at, $3)
			WHERE id = $1`, userID, c.PasswordHash, c.At)
		if err != nil {
			return fmt.Errorf("set password of user %s: %w", userID, translate(err))
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("set password of user %s: %w", userID, domain.Errorf(domain.ENOTFOUND, "Not found."))
		}
		if _, err := tx.Exec(ctx, `DELETE FROM password_reset_tokens WHERE user_id = $1 AND used_at IS NULL`, userID); err != nil {
			return fmt.Errorf("void other reset tokens of user %s: %w", userID, translate(err))
		}
		if _, err := tx.Exec(ctx, `UPDATE refresh_tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL`,
			userID, c.At); err != nil {
			return fmt.Errorf("revoke sessions of user %s: %w", userID, translate(err))
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return userID, nil
}

package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/account"
)

var _ account.GoogleIdentityStore = (*AccountStore)(nil)

// FindUserByGoogle implements account.GoogleIdentityStore with the unique index on
// (google_issuer, google_subject).
func (s *AccountStore) FindUserByGoogle(ctx context.Context, issuer, subject string) (*account.User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE google_issuer = $1 AND google_subject = $2`,
		issuer, subject))
	if err != nil {
		return nil, fmt.Errorf("find user by google identity: %w", translate(err))
	}
	return u, nil
}

// LinkGoogle implements account.GoogleIdentityStore. Linking the identity the user already
// has is a no-op success.
func (s *AccountStore) LinkGoogle(ctx context.Context, userID, issuer, subject string, verified bool, at time.Time) error {
	return InTx(ctx, s.pool, func(tx pgx.Tx) error {
		var curIssuer, curSubject *string
		err := tx.QueryRow(ctx, `SELECT google_issuer, google_subject FROM users WHERE id = $1 FOR NO KEY UPDATE`, userID).
			Scan(&curIssuer, &curSubject)
		if err != nil {
			return fmt.Errorf("lock user %s: %w", userID, translate(err))
		}
		if curSubject != nil && (*curIssuer != issuer || *curSubject != subject) {
			return fmt.Errorf("link google identity to user %s: %w", userID,
				domain.Errorf(domain.ECONFLICT, "The account is linked to another identity."))
		}
		_, err = tx.Exec(ctx, `
			UPDATE users SET google_issuer = $2, google_subject = $3, updated_at = $5,
			       email_verified_at = CASE WHEN $4 THEN coalesce(email_verified_at, $5) ELSE email_verified_at END
			WHERE id = $1`, userID, issuer, subject, verified, at)
		if err != nil {
			return fmt.Errorf("link google identity to user %s: %w", userID, translate(err))
		}
		return nil
	})
}

// CreateGoogleUser implements account.GoogleIdentityStore.
func (s *AccountStore) CreateGoogleUser(ctx context.Context, u *account.User, issuer, subject string) error {
	return InTx(ctx, s.pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `
			INSERT INTO users (id, email, name, role, timezone, digest_hour, notifications_enabled, email_verified_at,
			                   google_issuer, google_subject, last_login_at, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
			u.ID, u.Email, u.Name, string(u.Role), u.Timezone, u.DigestHour, u.NotificationsEnabled, u.EmailVerifiedAt,
			issuer, subject, u.LastLoginAt, u.CreatedAt, u.UpdatedAt)
		if err != nil {
			return fmt.Errorf("insert google user: %w", translate(err))
		}
		return insertDefaultAction(ctx, tx, u)
	})
}

package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/app"
)

// SuppressionStore keeps the addresses Vigil never mails, and applies the email provider's
// events (bounces, complaints, deliveries) to notifications.
type SuppressionStore struct {
	pool *pgxpool.Pool
}

var (
	_ app.SuppressionStore = (*SuppressionStore)(nil)
	_ app.EmailEventStore  = (*SuppressionStore)(nil)
)

// NewSuppressionStore returns a SuppressionStore.
func NewSuppressionStore(pool *pgxpool.Pool) *SuppressionStore { return &SuppressionStore{pool: pool} }

// ApplyEmailEvents implements app.EmailEventStore.
func (s *SuppressionStore) ApplyEmailEvents(ctx context.Context, events []app.AppliedEmailEvent) error {
	return InTx(ctx, s.pool, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		for _, ev := range events {
			if ev.NotificationID != "" && validID(ev.NotificationID) {
				b.Queue(`UPDATE notifications SET status = $2, last_error = NULLIF($3, ''), updated_at = now()
					WHERE id = $1 AND status = ANY($4) AND lower(recipient) = $5`,
					ev.NotificationID, ev.Effect.Status, ev.Reason, ev.Effect.From, ev.Email)
			}
			if ev.Effect.Suppress != "" {
				b.Queue(`INSERT INTO email_suppressions (email, reason, detail) VALUES ($1, $2, left(NULLIF($3, ''), 500))
					ON CONFLICT (email) DO NOTHING`, ev.Email, ev.Effect.Suppress, ev.Reason)
			}
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("apply email events: %w", translate(err))
		}
		return nil
	})
}

// ListSuppressions implements app.SuppressionStore.
func (s *SuppressionStore) ListSuppressions(ctx context.Context, q, after string, limit int) ([]app.Suppression, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT email, reason, coalesce(detail, ''), created_at FROM email_suppressions
		WHERE ($1 = '' OR email LIKE '%' || $1 || '%' ESCAPE '\') AND email > $2
		ORDER BY email LIMIT $3`, likeEscaper.Replace(q), after, min(max(limit, 1), 100))
	if err != nil {
		return nil, fmt.Errorf("list suppressions: %w", translate(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (app.Suppression, error) {
		var sp app.Suppression
		return sp, r.Scan(&sp.Email, &sp.Reason, &sp.Detail, &sp.CreatedAt)
	})
	if err != nil {
		return nil, fmt.Errorf("list suppressions: %w", translate(err))
	}
	return out, nil
}

// DeleteSuppression implements app.SuppressionStore.
func (s *SuppressionStore) DeleteSuppression(ctx context.Context, email string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM email_suppressions WHERE email = $1`, email)
	if err != nil {
		return fmt.Errorf("delete suppression: %w", translate(err))
	}
	if tag.RowsAffected() == 0 {
		return domain.Errorf(domain.ENOTFOUND, "The address is not suppressed.")
	}
	return nil
}

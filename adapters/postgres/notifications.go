package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigilhq/vigil/domain/app"
)

// NotificationStore tracks notification deliveries.
type NotificationStore struct {
	pool *pgxpool.Pool
}

var _ app.NotificationStore = (*NotificationStore)(nil)

// NewNotificationStore returns a NotificationStore.
func NewNotificationStore(pool *pgxpool.Pool) *NotificationStore {
	return &NotificationStore{pool: pool}
}

// ClaimNotification implements app.NotificationStore.
func (s *NotificationStore) ClaimNotification(ctx context.Context, id string, now time.Time, lease time.Duration) (app.Delivery, error) {
	var (
		d          app.Delivery
		suppressed bool
	)
	err := InTx(ctx, s.pool, func(tx pgx.Tx) error {
		var (
			status, email  string
			onList         bool
			updatedAt      time.Time
			evaluationID   *string
			notifyOn       bool
			unsubscribedAt *time.Time
			explanation    *string
			changedAt      *time.Time
			startedAt      *time.Time
			keys           []string
		)
		err := tx.QueryRow(ctx, `
			SELECT n.status, n.updated_at, n.attempts, n.kind, m.consecutive_failures, coalesce(e.error, ''),
			       n.user_id, n.recipient, n.monitor_id, n.evaluation_id,
			       n.from_state, n.to_state, u.email, u.name, u.timezone, u.notifications_enabled, u.unsubscribed_at,
			       m.name, m.prompt, e.explanation, e.finished_at, e.started_at,
			       ARRAY(SELECT f->>'name' FROM jsonb_array_elements(m.spec->'facts') f),
			       EXISTS (SELECT 1 FROM email_suppressions s WHERE s.email = lower(n.recipient))
			FROM notifications n
			JOIN users u ON u.id = n.user_id
			JOIN monitors m ON m.id = n.monitor_id
			LEFT JOIN evaluations e ON e.id = n.evaluation_id
			WHERE n.id = $1
			FOR UPDATE OF n`, id).
			Scan(&status, &updatedAt, &d.Attempt, &d.Kind, &d.Failures, &d.LastError, &d.UserID, &d.Recipient, &d.MonitorID, &evaluationID,
				&d.From, &d.To, &email, &d.RecipientName, &d.Timezone, &notifyOn, &unsubscribedAt,
				&d.MonitorName, &d.Prompt, &explanation, &changedAt, &startedAt, &keys, &onList)
		if err != nil {
			return fmt.Errorf("load notification: %w", translate(err))
		}
		switch {
		case status == "sending" && now.Sub(updatedAt) < lease:
			return app.ErrInFlight
		case status != "pending" && status != "sending":
			return app.ErrDelivered
		}
		if onList || !notifyOn || (unsubscribedAt != nil && strings.EqualFold(d.Recipient, email)) {
			// Committed, unlike an error return: the suppression is the outcome.
			suppressed = true
			if _, err := tx.Exec(ctx, `UPDATE notifications SET status = 'suppressed', updated_at = $2 WHERE id = $1`, id, now); err != nil {
				return fmt.Errorf("suppress notification: %w", translate(err))
			}
			return nil
		}
		if _, err := tx.Exec(ctx, `
			UPDATE notifications SET status = 'sending', attempts = attempts + 1, updated_at = $2 WHERE id = $1`, id, now); err != nil {
			return fmt.Errorf("claim notification: %w", translate(err))
		}
		d.NotificationID = id
		d.Attempt++
		if explanation != nil {
			d.Explanation = *explanation
		}
		d.ChangedAt = now
		if changedAt != nil {
			d.ChangedAt = *changedAt
		}
		if evaluationID == nil || startedAt == nil || changedAt == nil {
			return nil
		}
		facts, err := factsOfEvaluation(ctx, tx, d.MonitorID, *evaluationID, keys, *startedAt, *changedAt)
		d.Facts = facts
		return err
	})
	if errors.Is(err, app.ErrDelivered) || errors.Is(err, app.ErrInFlight) {
		return app.Delivery{}, err
	}
	if err == nil && suppressed {
		return app.Delivery{}, app.ErrDelivered
	}
	return d, err
}

// MarkSent implements app.NotificationStore.
func (s *NotificationStore) MarkSent(ctx context.Context, id string, now time.Time) error {
	_, err := s.pool.Exec(ctx, `
		UPDATE notifications SET status = 'sent', sent_at = $2, last_error = NULL, updated_at = $2
		WHERE id = $1 AND status = 'sending'`, id, now)
	if err != nil {
		return fmt.Errorf("mark notification sent: %w", translate(err))
	}
	return nil
}

// MarkFailed implements app.NotificationStore.
func (s *NotificationStore) MarkFailed(ctx context.Context, id string, reason string, permanent bool) error {
	status := "pending"
	if permanent {
		status = "failed"
	}
	_, err := s.pool.Exec(ctx, `
		UPDATE notifications SET status = $2, last_error = $3, updated_at = now()
		WHERE id = $1 AND status = 'sending'`, id, status, reason)
	if err != nil {
		return fmt.Errorf("mark notification failed: %w", translate(err))
	}
	return nil
}

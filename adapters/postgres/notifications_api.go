package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/app"
	"github.com/vigilhq/vigil/domain/event"
	"github.com/vigilhq/vigil/streams"
)

var _ app.NotificationRepository = (*NotificationStore)(nil)

func notificationNotFound() error { return domain.Errorf(domain.ENOTFOUND, "Notification not found.") }

const notificationColumns = `n.id, coalesce(n.monitor_id::text, ''), coalesce(n.trigger_id::text, ''), coalesce(n.action_id::text, ''),
	coalesce(n.evaluation_id::text, ''), n.kind, n.channel, n.recipient, n.from_state, n.to_state, n.status, n.attempts,
	coalesce(n.last_error, ''), n.sent_at, n.next_attempt_at, n.created_at, n.updated_at`

func scanNotification(r pgx.Row) (app.NotificationRecord, error) {
	var n app.NotificationRecord
	err := r.Scan(&n.ID, &n.MonitorID, &n.TriggerID, &n.ActionID, &n.EvaluationID, &n.Kind, &n.Channel, &n.Recipient,
		&n.From, &n.To, &n.Status, &n.Attempts, &n.LastError, &n.SentAt, &n.NextAttemptAt, &n.CreatedAt, &n.UpdatedAt)
	if n.Status != "pending" && n.Status != "sending" {
		n.NextAttemptAt = nil
	}
	return n, err
}

// ListNotifications implements app.NotificationRepository: keyset pagination on
// (created_at, id) over notifications_user_idx.
func (s *NotificationStore) ListNotifications(ctx context.Context, q app.NotificationQuery) ([]app.NotificationRecord, *app.NotificationCursor, error) {
	limit := min(max(q.Limit, 1), 100)
	where := []string{"n.user_id = $1"}
	args := []any{q.UserID}
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.ReplaceAll(cond, "$?", fmt.Sprintf("$%d", len(args))))
	}
	if q.MonitorID != "" {
		if !validID(q.MonitorID) {
			return nil, nil, nil
		}
		add("n.monitor_id = $?", q.MonitorID)
	}
	if q.Status != "" {
		add("n.status = $?", q.Status)
	}
	if q.Channel != "" {
		add("n.channel = $?", q.Channel)
	}
	if q.From != nil {
		add("n.created_at >= $?", *q.From)
	}
	if q.To != nil {
		add("n.created_at < $?", *q.To)
	}
	if q.Before != nil {
		args = append(args, q.Before.CreatedAt, q.Before.ID)
		where = append(where, fmt.Sprintf("(n.created_at, n.id) < ($%d, $%d::uuid)", len(args)-1, len(args)))
	}
	rows, err := s.pool.Query(ctx, fmt.Sprintf(`SELECT %s FROM notifications n WHERE %s ORDER BY n.created_at DESC, n.id DESC LIMIT %d`,
		notificationColumns, strings.Join(where, " AND "), limit+1), args...)
	if err != nil {
		return nil, nil, fmt.Errorf("list notifications: %w", translate(err))
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (app.NotificationRecord, error) { return scanNotification(r) })
	if err != nil {
		return nil, nil, fmt.Errorf("list notifications: %w", translate(err))
	}
	var next *app.NotificationCursor
	if len(list) > limit {
		list = list[:limit]
		last := list[limit-1]
		next = &app.NotificationCursor{CreatedAt: last.CreatedAt, ID: last.ID}
	}
	return list, next, nil
}

// GetNotification implements app.NotificationRepository.
func (s *NotificationStore) GetNotification(ctx context.Context, userID, id string) (app.NotificationRecord, error) {
	if !validID(id) {
		return app.NotificationRecord{}, notificationNotFound()
	}
	n, err := scanNotification(s.pool.QueryRow(ctx, `SELECT `+notificationColumns+` FROM notifications n WHERE n.id = $1 AND n.user_id = $2`, id, userID))
	if errors.Is(err, pgx.ErrNoRows) {
		return n, notificationNotFound()
	}
	if err != nil {
		return n, fmt.Errorf("get notification %s: %w", id, translate(err))
	}
	rows, err := s.pool.Query(ctx, `
		SELECT attempt, started_at, finished_at, outcome, coalesce(code, 0), detail
		FROM notification_attempts WHERE notification_id = $1 ORDER BY attempt`, id)
	if err != nil {
		return n, fmt.Errorf("attempts of notification %s: %w", id, translate(err))
	}
	n.History, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (app.AttemptView, error) {
		var a app.AttemptView
		err := r.Scan(&a.Number, &a.StartedAt, &a.FinishedAt, &a.Result, &a.Code, &a.Detail)
		return a, err
	})
	if err != nil {
		return n, fmt.Errorf("attempts of notification %s: %w", id, translate(err))
	}
	return n, nil
}

// ResendNotification implements app.NotificationRepository.
func (s *NotificationStore) ResendNotification(ctx context.Context, userID, id string, now time.Time) (app.NotificationRecord, error) {
	if !validID(id) {
		return app.NotificationRecord{}, notificationNotFound()
	}
	var n app.NotificationRecord
	err := InTx(ctx, s.pool, func(tx pgx.Tx) error {
		cur, err := scanNotification(tx.QueryRow(ctx, `
			SELECT `+notificationColumns+` FROM notifications n WHERE n.id = $1 AND n.user_id = $2 FOR UPDATE`, id, userID))
		if errors.Is(err, pgx.ErrNoRows) {
			return notificationNotFound()
		}
		if err != nil {
			return fmt.Errorf("lock notification: %w", translate(err))
		}
		if !app.Resendable(cur.Status) {
			return domain.Errorf(domain.ECONFLICT, "The notification is %s.", cur.Status)
		}
		n, err = scanNotification(tx.QueryRow(ctx, `
			UPDATE notifications n SET status = 'pending', last_error = NULL, next_attempt_at = $2, updated_at = $3
			WHERE n.id = $1 RETURNING `+notificationColumns, id, now.Add(requestGrace), now))
		if err != nil {
			return fmt.Errorf("resend notification: %w", translate(err))
		}
		return streams.AppendOutbox(ctx, tx, s.source, event.NotificationRequested{NotificationID: id, UserID: userID,
			MonitorID: n.MonitorID, At: now, Channel: n.Channel, Retry: n.Attempts + 1, RequestedAt: now.UnixNano()})
	})
	return n, err
}

package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigilhq/vigil/domain/app"
	"github.com/vigilhq/vigil/domain/event"
	"github.com/vigilhq/vigil/streams"
)

// NotificationStore tracks notification deliveries. It opens webhook secrets with box.
type NotificationStore struct {
	pool   *pgxpool.Pool
	box    Sealer
	source string
}

var _ app.NotificationStore = (*NotificationStore)(nil)

// requestGrace is how long a requested notification waits before the sweeper asks again,
// should the request be lost.
const requestGrace = 2 * time.Minute

// NewNotificationStore returns a NotificationStore; source names the role writing events.
func NewNotificationStore(pool *pgxpool.Pool, box Sealer, source string) *NotificationStore {
	return &NotificationStore{pool: pool, box: box, source: source}
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
		var (
			actionEnabled  *bool
			sealed         string
			allowed        bool // the account's own address, or one its owner confirmed
			disabledReason string
		)
		err := tx.QueryRow(ctx, `
			SELECT n.status, n.updated_at, n.attempts, n.kind, n.channel, coalesce(m.consecutive_failures, 0), coalesce(e.error, ''),
			       n.user_id, n.recipient, coalesce(n.monitor_id::text, ''), n.evaluation_id,
			       n.from_state, n.to_state, u.email, u.name, u.timezone, u.notifications_enabled, u.unsubscribed_at,
			       coalesce(m.name, ''), coalesce(m.prompt, ''), e.explanation, e.finished_at, e.started_at,
			       ARRAY(SELECT f->>'name' FROM jsonb_array_elements(m.spec->'facts') f),
			       EXISTS (SELECT 1 FROM email_suppressions s WHERE s.email = lower(n.recipient)),
			       lower(n.recipient) = lower(u.email) OR EXISTS (SELECT 1 FROM email_recipients r
			         WHERE r.user_id = n.user_id AND r.email = lower(n.recipient) AND r.confirmed_at IS NOT NULL),
			       coalesce(a.id::text, ''), a.enabled, coalesce(a.config->>'secret', ''), coalesce(n.digest_day::text, ''),
			       coalesce(a.name, ''), coalesce(a.config->>'url', ''), coalesce(a.disabled_reason, '')
			FROM notifications n
			JOIN users u ON u.id = n.user_id
			LEFT JOIN monitors m ON m.id = n.monitor_id
			LEFT JOIN evaluations e ON e.id = n.evaluation_id
			LEFT JOIN actions a ON a.id = n.action_id
			WHERE n.id = $1
			FOR UPDATE OF n`, id).
			Scan(&status, &updatedAt, &d.Attempt, &d.Kind, &d.Channel, &d.Failures, &d.LastError, &d.UserID, &d.Recipient, &d.MonitorID, &evaluationID,
				&d.From, &d.To, &email, &d.RecipientName, &d.Timezone, &notifyOn, &unsubscribedAt,
				&d.MonitorName, &d.Prompt, &explanation, &changedAt, &startedAt, &keys, &onList, &allowed,
				&d.ActionID, &actionEnabled, &sealed, &d.DigestDay, &d.ActionName, &d.ActionURL, &disabledReason)
		if err != nil {
			return fmt.Errorf("load notification: %w", translate(err))
		}
		switch {
		case status == "sending" && now.Sub(updatedAt) < lease:
			return app.ErrInFlight
		case status != "pending" && status != "sending":
			return app.ErrDelivered
		}
		reason := ""
		switch {
		case d.Channel == app.ChannelWebhook && (actionEnabled == nil || !*actionEnabled):
			reason = "The webhook action was turned off or deleted before delivery."
		case d.Channel == app.ChannelEmail && !allowed:
			reason = app.UnconfirmedRecipient
		case d.Channel == app.ChannelEmail && (onList || !notifyOn || (unsubscribedAt != nil && strings.EqualFold(d.Recipient, email))):
			reason = "The address is unsubscribed, on the suppression list, or notifications are off."
		}
		if reason != "" {
			// Committed, unlike an error return: the suppression is the outcome.
			suppressed = true
			if _, err := tx.Exec(ctx, `
				UPDATE notifications SET status = 'suppressed', last_error = $3, next_attempt_at = NULL, updated_at = $2
				WHERE id = $1`, id, now, reason); err != nil {
				return fmt.Errorf("suppress notification: %w", translate(err))
			}
			return nil
		}
		if d.Channel == app.ChannelWebhook {
			secret, err := s.box.Open(sealed, []byte(d.ActionID))
			if err != nil {
				return fmt.Errorf("open the secret of action %s: %w", d.ActionID, err)
			}
			d.Secret = string(secret)
		}
		// A claim whose mailer dies is due again once its lease is over.
		if _, err := tx.Exec(ctx, `
			UPDATE notifications SET status = 'sending', attempts = attempts + 1, updated_at = $2, next_attempt_at = $3
			WHERE id = $1`, id, now, now.Add(lease)); err != nil {
			return fmt.Errorf("claim notification: %w", translate(err))
		}
		d.NotificationID = id
		d.Attempt++
		switch d.Kind {
		case app.KindDigest:
			d.Digest, err = digestItems(ctx, tx, id)
			return err
		case app.KindWebhookDisabled:
			d.LastError, d.ChangedAt = disabledReason, updatedAt
			return nil
		}
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
		if d.Facts, err = factsOfEvaluation(ctx, tx, d.MonitorID, *evaluationID, keys, *startedAt, *changedAt); err != nil {
			return err
		}
		if d.Channel != app.ChannelEmail {
			return nil // only emails chart recent values
		}
		d.History, d.HistoryKey, d.HistoryUnit, err = recentValues(ctx, tx, d.MonitorID, *changedAt)
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

// RecordAttempt implements app.NotificationStore.
func (s *NotificationStore) RecordAttempt(ctx context.Context, r app.AttemptRecord) error {
	d := r.Decision
	return InTx(ctx, s.pool, func(tx pgx.Tx) error {
		var code *int
		if r.Attempt.Code != 0 {
			code = &r.Attempt.Code
		}
		_, err := tx.Exec(ctx, `
			INSERT INTO notification_attempts (notification_id, attempt, started_at, finished_at, outcome, code, detail)
			VALUES ($1, $2, $3, $4, $5, $6, left($7, 1000))
			ON CONFLICT (notification_id, attempt) DO NOTHING`,
			r.NotificationID, r.Number, r.StartedAt, r.FinishedAt, string(r.Attempt.Result), code, r.Attempt.Detail)
		if err != nil {
			return fmt.Errorf("insert attempt: %w", translate(err))
		}
		var sentAt *time.Time
		if d.Status == app.StatusSent {
			sentAt = &r.FinishedAt
		}
		_, err = tx.Exec(ctx, `
			UPDATE notifications SET status = $2, last_error = NULLIF(left($3, 1000), ''), next_attempt_at = $4,
			       sent_at = coalesce($5, sent_at), updated_at = $6
			WHERE id = $1 AND status = 'sending'`,
			r.NotificationID, d.Status, d.Error, d.NextAttemptAt, sentAt, r.FinishedAt)
		if err != nil {
			return fmt.Errorf("update notification: %w", translate(err))
		}
		if d.SuppressRecipient {
			_, err := tx.Exec(ctx, `
				INSERT INTO email_suppressions (email, reason, detail) VALUES (lower($1), 'bounce', left($2, 500))
				ON CONFLICT (email) DO NOTHING`, r.Recipient, r.Attempt.Detail)
			if err != nil {
				return fmt.Errorf("suppress address: %w", translate(err))
			}
		}
		if d.DisableAction && r.ActionID != "" {
			return disableWebhook(ctx, tx, s.source, r)
		}
		return nil
	})
}

// RequestDue implements app.NotificationStore. SKIP LOCKED lets several mailers sweep at
// once without requesting a notification twice.
func (s *NotificationStore) RequestDue(ctx context.Context, now time.Time, lease time.Duration, limit int) (int, error) {
	var n int
	err := InTx(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			WITH due AS (
			  SELECT id FROM notifications
			  WHERE status IN ('pending', 'sending') AND next_attempt_at <= $1
			  ORDER BY next_attempt_at LIMIT $2
			  FOR UPDATE SKIP LOCKED)
			UPDATE notifications n SET next_attempt_at = $3
			FROM due WHERE n.id = due.id
			RETURNING n.id::text, n.user_id::text, n.monitor_id::text, n.attempts`, now, limit, now.Add(requestGrace))
		if err != nil {
			return fmt.Errorf("select due notifications: %w", translate(err))
		}
		var events []event.Event
		var id, userID, monitorID string
		var attempts int
		_, err = pgx.ForEachRow(rows, []any{&id, &userID, &monitorID, &attempts}, func() error {
			events = append(events, event.NotificationRequested{NotificationID: id, UserID: userID, MonitorID: monitorID,
				At: now, Retry: attempts + 1, RequestedAt: now.UnixNano()})
			return nil
		})
		if err != nil {
			return fmt.Errorf("select due notifications: %w", translate(err))
		}
		n = len(events)
		return streams.AppendOutbox(ctx, tx, s.source, events...)
	})
	return n, err
}

// historyPoints is how many recent values a state-changed email charts.
const historyPoints = 12

// recentValues returns the last values, up to until, of the monitor's first numeric fact,
// oldest first, with the fact's name and unit; none for a monitor without numeric facts.
func recentValues(ctx context.Context, tx pgx.Tx, monitorID string, until time.Time) ([]app.HistoryPoint, string, string, error) {
	var key, unit string
	err := tx.QueryRow(ctx, `
		SELECT f->>'name', coalesce(f->>'unit', '') FROM monitors m, jsonb_array_elements(m.spec->'facts') f
		WHERE m.id = $1 AND f->>'type' = 'number' LIMIT 1`, monitorID).Scan(&key, &unit)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, "", "", nil
	}
	if err != nil {
		return nil, "", "", fmt.Errorf("charted fact: %w", translate(err))
	}
	rows, err := tx.Query(ctx, `
		SELECT observed_at, value_number FROM facts
		WHERE monitor_id = $1 AND key = $2 AND value_number IS NOT NULL AND observed_at <= $3
		ORDER BY observed_at DESC LIMIT $4`, monitorID, key, until, historyPoints)
	if err != nil {
		return nil, "", "", fmt.Errorf("recent values: %w", translate(err))
	}
	points, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (app.HistoryPoint, error) {
		var p app.HistoryPoint
		return p, r.Scan(&p.At, &p.Value)
	})
	if err != nil {
		return nil, "", "", fmt.Errorf("recent values: %w", translate(err))
	}
	slices.Reverse(points)
	return points, key, unit, nil
}

// disableWebhook turns off the webhook action of r, which answered 410 Gone, and tells
// its owner by email (once per turning off, whatever the number of deliveries that saw it).
func disableWebhook(ctx context.Context, tx pgx.Tx, source string, r app.AttemptRecord) error {
	var ownerID, ownerEmail string
	err := tx.QueryRow(ctx, `
		UPDATE actions a SET enabled = false, disabled_reason = $2, updated_at = $3
		FROM users u WHERE a.id = $1 AND a.enabled AND u.id = a.user_id
		RETURNING u.id::text, u.email`, r.ActionID, "The endpoint answered 410 Gone: "+r.Decision.Error, r.FinishedAt).Scan(&ownerID, &ownerEmail)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil // already off
	}
	if err != nil {
		return fmt.Errorf("disable action: %w", translate(err))
	}
	id, err := uuid.NewV7()
	if err != nil {
		return fmt.Errorf("new notification id: %w", err)
	}
	_, err = tx.Exec(ctx, `
		INSERT INTO notifications (id, user_id, monitor_id, action_id, kind, channel, recipient, from_state, to_state, status,
		                           created_at, updated_at)
		SELECT $1, $2, n.monitor_id, $3, 'webhook_disabled', 'email', $4, n.from_state, n.to_state, 'pending', $5, $5
		FROM notifications n WHERE n.id = $6`, id, ownerID, r.ActionID, ownerEmail, r.FinishedAt, r.NotificationID)
	if err != nil {
		return fmt.Errorf("insert webhook-disabled notification: %w", translate(err))
	}
	return streams.AppendOutbox(ctx, tx, source, event.NotificationRequested{NotificationID: id.String(), UserID: ownerID, At: r.FinishedAt})
}

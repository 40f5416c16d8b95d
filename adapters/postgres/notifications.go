package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/app"
	"github.com/vigilhq/vigil/domain/event"
	"github.com/vigilhq/vigil/domain/monitor"
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

// claimRow is one notification as ClaimNotifications reads it.
type claimRow struct {
	id             string
	state          app.ClaimState
	d              app.Delivery
	evaluationID   *string
	explanation    *string
	changedAt      *time.Time
	slotAt         *time.Time // the evaluation's slot: its facts were observed at or after it
	keys           []string
	sealed         string
	disabledReason string
	chartKey       *string
	chartUnit      string
	miss, repair   []byte
}

// ClaimNotifications implements app.NotificationStore in a fixed number of round trips
// whatever the batch size: one read that locks the notifications (in id order, so
// concurrent mailers cannot deadlock), one update per outcome, and one pipelined batch of
// the facts and recent values the deliveries show. Digests read their items on their own.
func (s *NotificationStore) ClaimNotifications(ctx context.Context, ids []string, now time.Time, lease time.Duration) ([]app.Claim, error) {
	claims := make([]app.Claim, len(ids))
	err := InTx(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			SELECT n.id::text, n.status, n.updated_at, n.attempts, n.kind, n.channel, coalesce(m.consecutive_failures, 0), coalesce(e.error, ''),
			       n.user_id, n.recipient, coalesce(n.monitor_id::text, ''), n.evaluation_id,
			       n.from_state, n.to_state, u.email, u.name, u.timezone, u.notifications_enabled, u.unsubscribed_at,
			       coalesce(m.name, ''), coalesce(m.prompt, ''), e.explanation, e.finished_at, e.scheduled_for,
			       ARRAY(SELECT f->>'name' FROM jsonb_array_elements(m.spec->'facts') f),
			       EXISTS (SELECT 1 FROM email_suppressions s WHERE s.email = lower(n.recipient)),
			       lower(n.recipient) = lower(u.email) OR EXISTS (SELECT 1 FROM email_recipients r
			         WHERE r.user_id = n.user_id AND r.email = lower(n.recipient) AND r.confirmed_at IS NOT NULL),
			       coalesce(a.id::text, ''), a.enabled, coalesce(a.config->>'secret', ''), coalesce(n.digest_day::text, ''),
			       coalesce(a.name, ''), coalesce(a.config->>'url', ''), coalesce(a.disabled_reason, ''),
			       chart.key, coalesce(chart.unit, ''), e.miss, e.repair, coalesce(m.extraction_misses, 0)
			FROM notifications n
			JOIN users u ON u.id = n.user_id
			LEFT JOIN monitors m ON m.id = n.monitor_id
			LEFT JOIN evaluations e ON e.id = n.evaluation_id
			LEFT JOIN actions a ON a.id = n.action_id
			LEFT JOIN LATERAL (SELECT f->>'name' AS key, f->>'unit' AS unit FROM jsonb_array_elements(m.spec->'facts') f
			                   WHERE f->>'type' = 'number' LIMIT 1) chart ON true
			WHERE n.id = ANY($1::uuid[])
			ORDER BY n.id
			FOR UPDATE OF n`, ids)
		if err != nil {
			return fmt.Errorf("load notifications: %w", translate(err))
		}
		found := map[string]*claimRow{}
		var r claimRow
		_, err = pgx.ForEachRow(rows, []any{&r.id, &r.state.Status, &r.state.UpdatedAt, &r.d.Attempt, &r.d.Kind, &r.d.Channel, &r.d.Failures,
			&r.d.LastError, &r.d.UserID, &r.d.Recipient, &r.d.MonitorID, &r.evaluationID,
			&r.d.From, &r.d.To, &r.state.OwnerEmail, &r.d.RecipientName, &r.d.Timezone, &r.state.NotificationsOn, &r.state.UnsubscribedAt,
			&r.d.MonitorName, &r.d.Prompt, &r.explanation, &r.changedAt, &r.slotAt, &r.keys, &r.state.Suppressed, &r.state.Allowed,
			&r.d.ActionID, &r.state.ActionEnabled, &r.sealed, &r.d.DigestDay, &r.d.ActionName, &r.d.ActionURL, &r.disabledReason,
			&r.chartKey, &r.chartUnit, &r.miss, &r.repair, &r.d.Misses}, func() error {
			row := r
			row.state.Channel, row.state.Recipient = row.d.Channel, row.d.Recipient
			found[row.id] = &row
			r = claimRow{}
			return nil
		})
		if err != nil {
			return fmt.Errorf("load notifications: %w", translate(err))
		}
		var claimed []*claimRow
		var claimIDs, suppressIDs, reasons []string
		for i, id := range ids {
			claims[i] = app.Claim{NotificationID: id}
			row, ok := found[id]
			if !ok {
				claims[i].Err = fmt.Errorf("notification %s: %w", id, domain.ErrNotFound)
				continue
			}
			suppressed, err := app.DecideClaim(row.state, now, lease)
			switch {
			case err != nil:
				claims[i].Err = err
			case suppressed.Code != "":
				claims[i].Err, claims[i].Suppressed, claims[i].Channel = app.ErrDelivered, &suppressed, row.state.Channel
				suppressIDs, reasons = append(suppressIDs, id), append(reasons, suppressed.Reason)
			default:
				claimed = append(claimed, row)
				claimIDs = append(claimIDs, id)
			}
		}
		if len(suppressIDs) > 0 {
			if _, err := tx.Exec(ctx, `
				UPDATE notifications n SET status = 'suppressed', last_error = s.reason, next_attempt_at = NULL, updated_at = $3
				FROM unnest($1::uuid[], $2::text[]) AS s(id, reason) WHERE n.id = s.id`, suppressIDs, reasons, now); err != nil {
				return fmt.Errorf("suppress notifications: %w", translate(err))
			}
		}
		if len(claimed) == 0 {
			return nil
		}
		if _, err := tx.Exec(ctx, `
			UPDATE notifications SET status = 'sending', attempts = attempts + 1, updated_at = $2, next_attempt_at = $3
			WHERE id = ANY($1::uuid[])`, claimIDs, now, now.Add(lease)); err != nil {
			return fmt.Errorf("claim notifications: %w", translate(err))
		}
		if err := s.completeDeliveries(ctx, tx, claimed, now); err != nil {
			return err
		}
		at := map[string]int{}
		for i, id := range ids {
			at[id] = i
		}
		for _, row := range claimed {
			claims[at[row.id]].Delivery = row.d
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return claims, nil
}

// completeDeliveries fills in what each claimed delivery shows: the webhook secret, the
// facts of the evaluation and, for emails, the recent values of the charted fact, read in
// one pipelined round trip; a digest's items are read on their own.
func (s *NotificationStore) completeDeliveries(ctx context.Context, tx pgx.Tx, claimed []*claimRow, now time.Time) error {
	b := &pgx.Batch{}
	var digests []*claimRow
	for _, row := range claimed {
		d := &row.d
		d.NotificationID = row.id
		d.Attempt++
		if d.Channel == app.ChannelWebhook {
			secret, err := s.box.Open(row.sealed, []byte(d.ActionID))
			if err != nil {
				return fmt.Errorf("open the secret of action %s: %w", d.ActionID, err)
			}
			d.Secret = string(secret)
		}
		switch d.Kind {
		case app.KindDigest:
			digests = append(digests, row)
			continue
		case app.KindWebhookDisabled:
			d.LastError, d.ChangedAt = row.disabledReason, row.state.UpdatedAt
			continue
		case app.KindExtractionBroken:
			if len(row.miss) > 0 {
				d.Miss = &monitor.Miss{}
				if err := json.Unmarshal(row.miss, d.Miss); err != nil {
					return fmt.Errorf("decode the miss of notification %s: %w", row.id, err)
				}
			}
			var err error
			if d.Repair, err = decodeRepair(row.repair); err != nil {
				return fmt.Errorf("notification %s: %w", row.id, err)
			}
		}
		if row.explanation != nil {
			d.Explanation = *row.explanation
		}
		d.ChangedAt = now
		if row.changedAt != nil {
			d.ChangedAt = *row.changedAt
		}
		if row.evaluationID == nil || row.slotAt == nil || row.changedAt == nil {
			continue
		}
		queueFactsOfEvaluation(b, &d.Facts, d.MonitorID, *row.evaluationID, row.keys, *row.slotAt, *row.changedAt)
		if d.Channel == app.ChannelEmail && row.chartKey != nil { // only emails chart recent values
			d.HistoryKey, d.HistoryUnit = *row.chartKey, row.chartUnit
			queueRecentValues(b, &d.History, d.MonitorID, d.HistoryKey, *row.changedAt)
		}
	}
	if b.Len() > 0 {
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("load facts of deliveries: %w", translate(err))
		}
	}
	for _, row := range digests {
		items, err := digestItems(ctx, tx, row.id)
		if err != nil {
			return err
		}
		row.d.Digest = items
	}
	return nil
}

// RecordAttempts implements app.NotificationStore: one insert of the attempts and one
// update of their notifications, then what the rare decisions need (suppressing a refused
// address, disabling a webhook that is gone).
func (s *NotificationStore) RecordAttempts(ctx context.Context, rs []app.AttemptRecord) error {
	if len(rs) == 0 {
		return nil
	}
	return InTx(ctx, s.pool, func(tx pgx.Tx) error {
		n := len(rs)
		var (
			ids       = make([]string, n)
			numbers   = make([]int, n)
			started   = make([]time.Time, n)
			finished  = make([]time.Time, n)
			outcomes  = make([]string, n)
			codes     = make([]*int, n)
			details   = make([]string, n)
			statuses  = make([]string, n)
			errs      = make([]string, n)
			nexts     = make([]*time.Time, n)
			sentAts   = make([]*time.Time, n)
			finishedT = make([]time.Time, n)
		)
		for i, r := range rs {
			ids[i], numbers[i], started[i], finished[i] = r.NotificationID, r.Number, r.StartedAt, r.FinishedAt
			outcomes[i], details[i] = string(r.Attempt.Result), r.Attempt.Detail
			if r.Attempt.Code != 0 {
				code := r.Attempt.Code
				codes[i] = &code
			}
			statuses[i], errs[i], nexts[i], finishedT[i] = r.Decision.Status, r.Decision.Error, r.Decision.NextAttemptAt, r.FinishedAt
			if r.Decision.Status == app.StatusSent {
				at := r.FinishedAt
				sentAts[i] = &at
			}
		}
		b := &pgx.Batch{}
		b.Queue(`
			INSERT INTO notification_attempts (notification_id, attempt, started_at, finished_at, outcome, code, detail)
			SELECT id, attempt, started_at, finished_at, outcome, code, left(detail, 1000)
			FROM unnest($1::uuid[], $2::int[], $3::timestamptz[], $4::timestamptz[], $5::text[], $6::int[], $7::text[])
			     AS a(id, attempt, started_at, finished_at, outcome, code, detail)
			ON CONFLICT (notification_id, attempt) DO NOTHING`, ids, numbers, started, finished, outcomes, codes, details)
		b.Queue(`
			UPDATE notifications n SET status = u.status, last_error = NULLIF(left(u.error, 1000), ''), next_attempt_at = u.next_at,
			       sent_at = coalesce(u.sent_at, n.sent_at), updated_at = u.finished_at
			FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[], $6::timestamptz[])
			     AS u(id, status, error, next_at, sent_at, finished_at)
			WHERE n.id = u.id AND n.status = 'sending'`, ids, statuses, errs, nexts, sentAts, finishedT)
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("record attempts: %w", translate(err))
		}
		for _, r := range rs {
			if r.Decision.SuppressRecipient {
				_, err := tx.Exec(ctx, `
					INSERT INTO email_suppressions (email, reason, detail) VALUES (lower($1), 'bounce', left($2, 500))
					ON CONFLICT (email) DO NOTHING`, r.Recipient, r.Attempt.Detail)
				if err != nil {
					return fmt.Errorf("suppress address: %w", translate(err))
				}
			}
			if r.Decision.DisableAction && r.ActionID != "" {
				if err := disableWebhook(ctx, tx, s.source, r); err != nil {
					return err
				}
			}
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
			RETURNING n.id::text, n.user_id::text, coalesce(n.monitor_id::text, ''), n.attempts, n.channel`, now, limit, now.Add(requestGrace))
		if err != nil {
			return fmt.Errorf("select due notifications: %w", translate(err))
		}
		var events []event.Event
		var id, userID, monitorID, channel string
		var attempts int
		_, err = pgx.ForEachRow(rows, []any{&id, &userID, &monitorID, &attempts, &channel}, func() error {
			events = append(events, event.NotificationRequested{NotificationID: id, UserID: userID, MonitorID: monitorID,
				At: now, Channel: channel, Retry: attempts + 1, RequestedAt: now.UnixNano()})
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

// queueRecentValues queues the read of the last values, up to until, of the monitor's
// fact key, into points, oldest first.
func queueRecentValues(b *pgx.Batch, points *[]app.HistoryPoint, monitorID, key string, until time.Time) {
	b.Queue(`
		SELECT observed_at, value_number FROM facts
		WHERE monitor_id = $1 AND key = $2 AND value_number IS NOT NULL AND observed_at <= $3
		ORDER BY observed_at DESC LIMIT $4`, monitorID, key, until, historyPoints).Query(func(rows pgx.Rows) error {
		got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (app.HistoryPoint, error) {
			var p app.HistoryPoint
			return p, r.Scan(&p.At, &p.Value)
		})
		if err != nil {
			return fmt.Errorf("recent values: %w", err)
		}
		slices.Reverse(got)
		*points = got
		return nil
	})
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

package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigilhq/vigil/domain/app"
	"github.com/vigilhq/vigil/domain/event"
	"github.com/vigilhq/vigil/domain/trigger"
	"github.com/vigilhq/vigil/streams"
)

// TriggerStore fires triggers into notifications.
type TriggerStore struct {
	pool   *pgxpool.Pool
	source string
}

var _ app.TriggerStore = (*TriggerStore)(nil)

// NewTriggerStore returns a TriggerStore; source names the role writing events.
func NewTriggerStore(pool *pgxpool.Pool, source string) *TriggerStore {
	return &TriggerStore{pool: pool, source: source}
}

type firingRow struct {
	trigger    trigger.Trigger
	channel    string
	recipients []string
	owner      string // the account's own address, lower-cased
}

// Why a delivery to an unconfirmed address is held back.
const unconfirmedRecipient = "The recipient has not confirmed that they want these emails yet."

// FireTriggers implements app.TriggerStore. An email action makes one notification per
// recipient; an address other than the account's own that has not confirmed is recorded
// as suppressed, so the user sees why it got nothing. A webhook action makes one, to its URL.
func (s *TriggerStore) FireTriggers(ctx context.Context, sc event.StateChanged, now time.Time) ([]string, error) {
	var created []string
	err := InTx(ctx, s.pool, func(tx pgx.Tx) error {
		created = created[:0]
		// Lock the monitor's triggers so concurrent matchers agree on once/cooldown.
		rows, err := tx.Query(ctx, `
			SELECT t.id, t.action_id, t.condition, t.frequency, t.cooldown_seconds, t.enabled, t.fired_count,
			       t.last_fired_at, a.type,
			       CASE a.type WHEN 'webhook' THEN ARRAY[a.config->>'url'] ELSE ARRAY(SELECT jsonb_array_elements_text(a.config->'to')) END,
			       lower(u.email)
			FROM triggers t
			JOIN actions a ON a.id = t.action_id AND a.enabled
			JOIN users u ON u.id = a.user_id
			WHERE t.monitor_id = $1 AND t.enabled
			ORDER BY t.id
			FOR UPDATE OF t`, sc.MonitorID)
		if err != nil {
			return fmt.Errorf("select triggers: %w", translate(err))
		}
		candidates, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (firingRow, error) {
			var f firingRow
			var cooldown int
			err := r.Scan(&f.trigger.ID, &f.trigger.ActionID, &f.trigger.Condition, &f.trigger.Frequency, &cooldown,
				&f.trigger.Enabled, &f.trigger.FiredCount, &f.trigger.LastFiredAt, &f.channel, &f.recipients, &f.owner)
			f.trigger.Cooldown = time.Duration(cooldown) * time.Second
			f.trigger.MonitorID = sc.MonitorID
			return f, err
		})
		if err != nil {
			return fmt.Errorf("read triggers: %w", translate(err))
		}
		var confirmed map[string]bool
		var events []event.Event
		for _, c := range candidates {
			firing, ok := c.trigger.Fire(sc.From, sc.To, now)
			if !ok {
				continue
			}
			recipients := c.recipients
			if len(recipients) == 0 {
				recipients = []string{c.owner}
			}
			fired := false
			for _, to := range recipients {
				status, reason := "pending", ""
				if firing.Digest {
					status = "digest_pending"
				}
				if c.channel == app.ChannelEmail && to != c.owner {
					if confirmed == nil {
						if confirmed, err = confirmedRecipients(ctx, tx, sc.UserID); err != nil {
							return err
						}
					}
					if !confirmed[to] {
						status, reason = "suppressed", unconfirmedRecipient
					}
				}
				id, err := uuid.NewV7()
				if err != nil {
					return fmt.Errorf("new notification id: %w", err)
				}
				tag, err := tx.Exec(ctx, `
					INSERT INTO notifications (id, user_id, monitor_id, trigger_id, action_id, evaluation_id, channel,
					                           recipient, from_state, to_state, status, last_error)
					VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, NULLIF($12, ''))
					ON CONFLICT (trigger_id, evaluation_id, recipient) DO NOTHING`,
					id, sc.UserID, sc.MonitorID, c.trigger.ID, c.trigger.ActionID, sc.EvaluationID, c.channel,
					to, sc.From, sc.To, status, reason)
				if err != nil {
					return fmt.Errorf("insert notification: %w", translate(err))
				}
				if tag.RowsAffected() == 0 {
					continue // this trigger already fired for this evaluation
				}
				fired = true
				created = append(created, id.String())
				if status == "pending" {
					events = append(events, event.NotificationRequested{NotificationID: id.String(), UserID: sc.UserID, MonitorID: sc.MonitorID, At: now})
				}
			}
			if !fired {
				continue
			}
			_, err = tx.Exec(ctx, `
				UPDATE triggers SET fired_count = fired_count + 1, last_fired_at = $2,
				       enabled = enabled AND NOT $3, updated_at = now()
				WHERE id = $1`, c.trigger.ID, now, firing.Disable)
			if err != nil {
				return fmt.Errorf("update trigger: %w", translate(err))
			}
		}
		return streams.AppendOutbox(ctx, tx, s.source, events...)
	})
	return created, err
}

// confirmedRecipients returns the addresses the user's recipients have confirmed.
func confirmedRecipients(ctx context.Context, tx pgx.Tx, userID string) (map[string]bool, error) {
	rows, err := tx.Query(ctx, `SELECT email FROM email_recipients WHERE user_id = $1 AND confirmed_at IS NOT NULL`, userID)
	if err != nil {
		return nil, fmt.Errorf("confirmed recipients: %w", translate(err))
	}
	emails, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("confirmed recipients: %w", translate(err))
	}
	out := make(map[string]bool, len(emails))
	for _, e := range emails {
		out[e] = true
	}
	return out, nil
}

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
	trigger   trigger.Trigger
	channel   string
	recipient string
}

// FireTriggers implements app.TriggerStore.
func (s *TriggerStore) FireTriggers(ctx context.Context, sc event.StateChanged, now time.Time) ([]string, error) {
	var created []string
	err := InTx(ctx, s.pool, func(tx pgx.Tx) error {
		created = created[:0]
		// Lock the monitor's triggers so concurrent matchers agree on once/cooldown.
		rows, err := tx.Query(ctx, `
			SELECT t.id, t.action_id, t.condition, t.frequency, t.cooldown_seconds, t.enabled, t.fired_count,
			       t.last_fired_at, a.type, coalesce(a.config->>'to', u.email)
			FROM triggers t
			JOIN actions a ON a.id = t.action_id AND a.enabled AND a.type = 'email'
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
				&f.trigger.Enabled, &f.trigger.FiredCount, &f.trigger.LastFiredAt, &f.channel, &f.recipient)
			f.trigger.Cooldown = time.Duration(cooldown) * time.Second
			f.trigger.MonitorID = sc.MonitorID
			return f, err
		})
		if err != nil {
			return fmt.Errorf("read triggers: %w", translate(err))
		}
		var events []event.Event
		for _, c := range candidates {
			firing, ok := c.trigger.Fire(sc.From, sc.To, now)
			if !ok {
				continue
			}
			id, err := uuid.NewV7()
			if err != nil {
				return fmt.Errorf("new notification id: %w", err)
			}
			status := "pending"
			if firing.Digest {
				status = "digest_pending"
			}
			tag, err := tx.Exec(ctx, `
				INSERT INTO notifications (id, user_id, monitor_id, trigger_id, action_id, evaluation_id, channel,
				                           recipient, from_state, to_state, status)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
				ON CONFLICT (trigger_id, evaluation_id) DO NOTHING`,
				id, sc.UserID, sc.MonitorID, c.trigger.ID, c.trigger.ActionID, sc.EvaluationID, c.channel,
				c.recipient, sc.From, sc.To, status)
			if err != nil {
				return fmt.Errorf("insert notification: %w", translate(err))
			}
			if tag.RowsAffected() == 0 {
				continue // this trigger already fired for this evaluation
			}
			_, err = tx.Exec(ctx, `
				UPDATE triggers SET fired_count = fired_count + 1, last_fired_at = $2,
				       enabled = enabled AND NOT $3, updated_at = now()
				WHERE id = $1`, c.trigger.ID, now, firing.Disable)
			if err != nil {
				return fmt.Errorf("update trigger: %w", translate(err))
			}
			created = append(created, id.String())
			if !firing.Digest {
				events = append(events, event.NotificationRequested{NotificationID: id.String(), UserID: sc.UserID, MonitorID: sc.MonitorID, At: now})
			}
		}
		return streams.AppendOutbox(ctx, tx, s.source, events...)
	})
	return created, err
}

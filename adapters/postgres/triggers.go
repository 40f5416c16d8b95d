package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigilhq/vigil/domain/app"
	"github.com/vigilhq/vigil/domain/event"
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

// FireTriggers implements app.TriggerStore with a fixed number of statements whatever the
// batch size: one to lock and load the triggers, one batch of two reads, one insert of all
// notifications, one update of all triggers and one insert into the outbox.
func (s *TriggerStore) FireTriggers(ctx context.Context, changes []event.StateChanged, decide func(app.FiringState) (app.FiringPlan, error)) ([]string, error) {
	var created []string
	err := InTx(ctx, s.pool, func(tx pgx.Tx) error {
		created = created[:0]
		var monitorIDs, evaluationIDs, userIDs []string
		for _, sc := range changes {
			monitorIDs = append(monitorIDs, sc.MonitorID)
			evaluationIDs = append(evaluationIDs, sc.EvaluationID)
			userIDs = append(userIDs, sc.UserID)
		}
		st, err := loadFiringState(ctx, tx, monitorIDs, evaluationIDs, userIDs)
		if err != nil {
			return err
		}
		plan, err := decide(st)
		if err != nil {
			return err
		}
		if created, err = insertNotifications(ctx, tx, plan.Notifications); err != nil {
			return err
		}
		if err := updateFiredTriggers(ctx, tx, plan.Triggers); err != nil {
			return err
		}
		inserted := make(map[string]bool, len(created))
		for _, id := range created {
			inserted[id] = true
		}
		var events []event.Event
		for _, n := range plan.Notifications {
			if inserted[n.ID] && n.Status == app.NotificationPending {
				events = append(events, event.NotificationRequested{NotificationID: n.ID, UserID: n.UserID, MonitorID: n.MonitorID,
					At: plan.At, Channel: n.Channel})
			}
		}
		return streams.AppendOutbox(ctx, tx, s.source, events...)
	})
	return created, err
}

// loadFiringState locks the monitors' enabled triggers, in id order so concurrent matchers
// cannot deadlock, and reads what the matcher decides on.
func loadFiringState(ctx context.Context, tx pgx.Tx, monitorIDs, evaluationIDs, userIDs []string) (app.FiringState, error) {
	st := app.FiringState{Candidates: map[string][]app.Candidate{}, Confirmed: map[string]map[string]bool{}, Fired: map[app.Fired]bool{}}
	rows, err := tx.Query(ctx, `
		SELECT t.id, t.monitor_id, t.action_id, t.condition, t.frequency, t.cooldown_seconds, t.enabled, t.fired_count,
		       t.last_fired_at, a.type,
		       CASE a.type WHEN 'webhook' THEN ARRAY[a.config->>'url'] ELSE ARRAY(SELECT jsonb_array_elements_text(a.config->'to')) END,
		       lower(u.email)
		FROM triggers t
		JOIN actions a ON a.id = t.action_id AND a.enabled
		JOIN users u ON u.id = a.user_id
		WHERE t.monitor_id = ANY($1::uuid[]) AND t.enabled
		ORDER BY t.id
		FOR UPDATE OF t`, monitorIDs)
	if err != nil {
		return st, fmt.Errorf("select triggers: %w", translate(err))
	}
	var triggerIDs []string
	var c app.Candidate
	var cooldown int
	_, err = pgx.ForEachRow(rows, []any{&c.Trigger.ID, &c.Trigger.MonitorID, &c.Trigger.ActionID, &c.Trigger.Condition, &c.Trigger.Frequency,
		&cooldown, &c.Trigger.Enabled, &c.Trigger.FiredCount, &c.Trigger.LastFiredAt, &c.Channel, &c.Recipients, &c.Owner}, func() error {
		c.Trigger.Cooldown = time.Duration(cooldown) * time.Second
		st.Candidates[c.Trigger.MonitorID] = append(st.Candidates[c.Trigger.MonitorID], c)
		triggerIDs = append(triggerIDs, c.Trigger.ID)
		c = app.Candidate{}
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("read triggers: %w", translate(err))
	}
	if len(triggerIDs) == 0 {
		return st, nil
	}
	b := &pgx.Batch{}
	b.Queue(`SELECT DISTINCT trigger_id::text, evaluation_id::text FROM notifications
		WHERE trigger_id = ANY($1::uuid[]) AND evaluation_id = ANY($2::uuid[])`, triggerIDs, evaluationIDs)
	b.Queue(`SELECT user_id::text, email FROM email_recipients WHERE user_id = ANY($1::uuid[]) AND confirmed_at IS NOT NULL`, userIDs)
	br := tx.SendBatch(ctx, b)
	defer br.Close()
	rows, err = br.Query()
	if err != nil {
		return st, fmt.Errorf("select fired triggers: %w", translate(err))
	}
	var f app.Fired
	if _, err := pgx.ForEachRow(rows, []any{&f.TriggerID, &f.EvaluationID}, func() error { st.Fired[f] = true; return nil }); err != nil {
		return st, fmt.Errorf("select fired triggers: %w", translate(err))
	}
	rows, err = br.Query()
	if err != nil {
		return st, fmt.Errorf("confirmed recipients: %w", translate(err))
	}
	var userID, email string
	_, err = pgx.ForEachRow(rows, []any{&userID, &email}, func() error {
		if st.Confirmed[userID] == nil {
			st.Confirmed[userID] = map[string]bool{}
		}
		st.Confirmed[userID][email] = true
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("confirmed recipients: %w", translate(err))
	}
	return st, br.Close()
}

// insertNotifications inserts the notifications in one statement and returns the ids of
// those that were new.
func insertNotifications(ctx context.Context, tx pgx.Tx, ns []app.NewNotification) ([]string, error) {
	if len(ns) == 0 {
		return nil, nil
	}
	cols := make([][]string, 12)
	for _, n := range ns {
		for i, v := range []string{n.ID, n.UserID, n.MonitorID, n.TriggerID, n.ActionID, n.EvaluationID, n.Channel,
			n.Recipient, string(n.From), string(n.To), n.Status, n.Reason} {
			cols[i] = append(cols[i], v)
		}
	}
	rows, err := tx.Query(ctx, `
		INSERT INTO notifications (id, user_id, monitor_id, trigger_id, action_id, evaluation_id, channel,
		                           recipient, from_state, to_state, status, last_error)
		SELECT id, user_id, monitor_id, trigger_id, action_id, evaluation_id, channel, recipient, from_state, to_state,
		       status, NULLIF(reason, '')
		FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::uuid[], $6::uuid[], $7::text[], $8::text[],
		            $9::text[], $10::text[], $11::text[], $12::text[])
		     AS n(id, user_id, monitor_id, trigger_id, action_id, evaluation_id, channel, recipient, from_state, to_state, status, reason)
		ON CONFLICT (trigger_id, evaluation_id, recipient) DO NOTHING
		RETURNING id::text`,
		cols[0], cols[1], cols[2], cols[3], cols[4], cols[5], cols[6], cols[7], cols[8], cols[9], cols[10], cols[11])
	if err != nil {
		return nil, fmt.Errorf("insert notifications: %w", translate(err))
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("insert notifications: %w", translate(err))
	}
	return ids, nil
}

// updateFiredTriggers applies the firings to their triggers in one statement.
func updateFiredTriggers(ctx context.Context, tx pgx.Tx, fs []app.TriggerFiring) error {
	if len(fs) == 0 {
		return nil
	}
	ids, times, ats, disables := make([]string, len(fs)), make([]int, len(fs)), make([]time.Time, len(fs)), make([]bool, len(fs))
	for i, f := range fs {
		ids[i], times[i], ats[i], disables[i] = f.TriggerID, f.Times, f.At, f.Disable
	}
	_, err := tx.Exec(ctx, `
		UPDATE triggers t SET fired_count = t.fired_count + f.times, last_fired_at = f.at,
		       enabled = t.enabled AND NOT f.disable, updated_at = now()
		FROM unnest($1::uuid[], $2::int[], $3::timestamptz[], $4::bool[]) AS f(id, times, at, disable)
		WHERE t.id = f.id`, ids, times, ats, disables)
	if err != nil {
		return fmt.Errorf("update triggers: %w", translate(err))
	}
	return nil
}

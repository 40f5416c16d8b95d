package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/app"
	"github.com/vigilhq/vigil/domain/trigger"
)

var _ app.TriggerRepository = (*TriggerStore)(nil)

func triggerNotFound() error { return domain.Errorf(domain.ENOTFOUND, "Trigger not found.") }

const triggerColumns = `t.id, t.monitor_id, t.action_id, t.condition, t.frequency, t.cooldown_seconds, t.enabled,
	t.fired_count, t.last_fired_at, t.created_at, t.updated_at`

func scanTrigger(r pgx.Row) (trigger.Trigger, error) {
	var t trigger.Trigger
	var cooldown int
	err := r.Scan(&t.ID, &t.MonitorID, &t.ActionID, &t.Condition, &t.Frequency, &cooldown, &t.Enabled,
		&t.FiredCount, &t.LastFiredAt, &t.CreatedAt, &t.UpdatedAt)
	t.Cooldown = time.Duration(cooldown) * time.Second
	return t, err
}

// querier is what reads need of a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// triggersOf returns a monitor's triggers, oldest first.
// triggersSQL reads the triggers of the monitor $1, oldest first.
const triggersSQL = `SELECT ` + triggerColumns + ` FROM triggers t WHERE t.monitor_id = $1 ORDER BY t.created_at, t.id`

func triggersOf(ctx context.Context, q querier, monitorID string) ([]trigger.Trigger, error) {
	rows, err := q.Query(ctx, triggersSQL, monitorID)
	if err != nil {
		return nil, fmt.Errorf("list triggers: %w", translate(err))
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (trigger.Trigger, error) { return scanTrigger(r) })
	if err != nil {
		return nil, fmt.Errorf("list triggers: %w", translate(err))
	}
	return list, nil
}

// rowQuerier is a pool or a transaction, for reads of a single row.
type rowQuerier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// ownsMonitor reports whether the monitor is the user's, locking it when lock is set (in a
// transaction).
func ownsMonitor(ctx context.Context, q rowQuerier, userID, monitorID string, lock bool) (bool, error) {
	if !validID(monitorID) {
		return false, nil
	}
	sql := `SELECT true FROM monitors WHERE id = $1 AND user_id = $2`
	if lock {
		sql += ` FOR UPDATE`
	}
	var ok bool
	err := q.QueryRow(ctx, sql, monitorID, userID).Scan(&ok)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("find monitor: %w", translate(err))
	}
	return true, nil
}

// checkAction returns ENOTFOUND, naming prefix+"action_id", unless the trigger's action is
// the user's, and EINVALID when its frequency cannot use that kind of action.
func checkAction(ctx context.Context, tx pgx.Tx, userID string, t *trigger.Trigger, prefix string) error {
	notFound := &domain.Error{Code: domain.ENOTFOUND, Message: "Action not found.", Fields: map[string]string{prefix + "action_id": "is not one of your actions"}}
	if !validID(t.ActionID) {
		return notFound
	}
	var typ string
	err := tx.QueryRow(ctx, `SELECT type FROM actions WHERE id = $1 AND user_id = $2`, t.ActionID, userID).Scan(&typ)
	if errors.Is(err, pgx.ErrNoRows) {
		return notFound
	}
	if err != nil {
		return fmt.Errorf("find action: %w", translate(err))
	}
	return trigger.CheckAction(t.Frequency, typ, prefix+"frequency")
}

func duplicateTrigger(err error) error {
	return &domain.Error{Code: domain.ECONFLICT, Message: "The monitor already has a trigger for this action and condition.", Err: err}
}

// insertTrigger inserts t after checking its action; prefix names its fields in errors
// ("" or "triggers[0].").
func insertTrigger(ctx context.Context, tx pgx.Tx, userID string, t *trigger.Trigger, prefix string) error {
	if err := checkAction(ctx, tx, userID, t, prefix); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `
		INSERT INTO triggers (id, monitor_id, action_id, condition, frequency, cooldown_seconds, enabled, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)`,
		t.ID, t.MonitorID, t.ActionID, t.Condition, t.Frequency, int(t.Cooldown/time.Second), t.Enabled, t.CreatedAt)
	if errors.Is(translate(err), domain.ErrConflict) {
		return duplicateTrigger(err)
	}
	if err != nil {
		return fmt.Errorf("insert trigger: %w", translate(err))
	}
	return nil
}

// ListTriggers implements app.TriggerRepository.
func (s *TriggerStore) ListTriggers(ctx context.Context, userID, monitorID string) ([]trigger.Trigger, error) {
	var list []trigger.Trigger
	err := InTx(ctx, s.pool, func(tx pgx.Tx) error {
		ok, err := ownsMonitor(ctx, tx, userID, monitorID, false)
		if err != nil {
			return err
		}
		if !ok {
			return notFound()
		}
		list, err = triggersOf(ctx, tx, monitorID)
		return err
	})
	return list, err
}

// GetTrigger implements app.TriggerRepository.
func (s *TriggerStore) GetTrigger(ctx context.Context, userID, monitorID, id string) (trigger.Trigger, error) {
	if !validID(monitorID) || !validID(id) {
		return trigger.Trigger{}, triggerNotFound()
	}
	t, err := scanTrigger(s.pool.QueryRow(ctx, `
		SELECT `+triggerColumns+` FROM triggers t JOIN monitors m ON m.id = t.monitor_id
		WHERE t.id = $1 AND t.monitor_id = $2 AND m.user_id = $3`, id, monitorID, userID))
	if errors.Is(err, pgx.ErrNoRows) {
		return trigger.Trigger{}, triggerNotFound()
	}
	if err != nil {
		return trigger.Trigger{}, fmt.Errorf("get trigger %s: %w", id, translate(err))
	}
	return t, nil
}

// CreateTrigger implements app.TriggerRepository. The monitor's row is locked, so two
// requests at once cannot both pass the limit.
func (s *TriggerStore) CreateTrigger(ctx context.Context, userID string, t *trigger.Trigger, max int) error {
	return InTx(ctx, s.pool, func(tx pgx.Tx) error {
		ok, err := ownsMonitor(ctx, tx, userID, t.MonitorID, true)
		if err != nil {
			return err
		}
		if !ok {
			return notFound()
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM triggers WHERE monitor_id = $1`, t.MonitorID).Scan(&n); err != nil {
			return fmt.Errorf("count triggers: %w", translate(err))
		}
		if n >= max {
			return domain.Errorf(domain.ECONFLICT, "The monitor has reached the limit of %d triggers; delete one first.", max)
		}
		return insertTrigger(ctx, tx, userID, t, "")
	})
}

// UpdateTrigger implements app.TriggerRepository.
func (s *TriggerStore) UpdateTrigger(ctx context.Context, userID string, t *trigger.Trigger) error {
	return InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if err := checkAction(ctx, tx, userID, t, ""); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `
			UPDATE triggers t SET action_id = $4, condition = $5, frequency = $6, cooldown_seconds = $7, enabled = $8, updated_at = $9
			FROM monitors m
			WHERE t.id = $1 AND t.monitor_id = $2 AND m.id = t.monitor_id AND m.user_id = $3`,
			t.ID, t.MonitorID, userID, t.ActionID, t.Condition, t.Frequency, int(t.Cooldown/time.Second), t.Enabled, t.UpdatedAt)
		if errors.Is(translate(err), domain.ErrConflict) {
			return duplicateTrigger(err)
		}
		if err != nil {
			return fmt.Errorf("update trigger: %w", translate(err))
		}
		if tag.RowsAffected() == 0 {
			return triggerNotFound()
		}
		return nil
	})
}

// DeleteTrigger implements app.TriggerRepository. Its past notifications stay, with the
// trigger set null.
func (s *TriggerStore) DeleteTrigger(ctx context.Context, userID, monitorID, id string) error {
	if !validID(monitorID) || !validID(id) {
		return triggerNotFound()
	}
	tag, err := s.pool.Exec(ctx, `
		DELETE FROM triggers t USING monitors m
		WHERE t.id = $1 AND t.monitor_id = $2 AND m.id = t.monitor_id AND m.user_id = $3`, id, monitorID, userID)
	if err != nil {
		return fmt.Errorf("delete trigger: %w", translate(err))
	}
	if tag.RowsAffected() == 0 {
		return triggerNotFound()
	}
	return nil
}

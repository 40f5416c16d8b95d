package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigilhq/vigil/domain/app"
	"github.com/vigilhq/vigil/domain/event"
	"github.com/vigilhq/vigil/domain/monitor"
	"github.com/vigilhq/vigil/domain/trigger"
	"github.com/vigilhq/vigil/streams"
)

// MonitorStore stores monitors and claims due ones for the scheduler.
type MonitorStore struct {
	pool   *pgxpool.Pool
	source string // CloudEvents source of the events it writes to the outbox
}

var (
	_ app.MonitorStore  = (*MonitorStore)(nil)
	_ app.MonitorFinder = (*MonitorStore)(nil)
	_ app.DueStore      = (*MonitorStore)(nil)
)

// NewMonitorStore returns a MonitorStore; source names the role writing events.
func NewMonitorStore(pool *pgxpool.Pool, source string) *MonitorStore {
	return &MonitorStore{pool: pool, source: source}
}

// CreateMonitor implements app.MonitorStore.
func (s *MonitorStore) CreateMonitor(ctx context.Context, m *monitor.Monitor, plan app.TriggerPlan) error {
	spec, err := json.Marshal(m.Spec)
	if err != nil {
		return fmt.Errorf("encode spec: %w", err)
	}
	return InTx(ctx, s.pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `
			INSERT INTO monitors (id, user_id, name, prompt, kind, spec, source_url, interval_seconds, cron, timezone,
			                      status, state, next_run_at, classified_by_provider, classified_by_model,
			                      version, created_at, updated_at, confirm, source_format, render, auto_repair,
			                      extraction_version)
			VALUES ($1, $2, $3, $4, $5, $6, NULLIF($7, ''), $8, NULLIF($9, ''), $10, $11, $12, $13, $14, $15, $16, $17, $17, $18, $19, $20, $21, $22)`,
			m.ID, m.UserID, m.Name, m.Prompt, m.Spec.Kind, spec, m.SourceURL, int(m.Interval/time.Second), m.Cron, m.Timezone,
			m.Status, m.State, m.NextRunAt, m.ClassifiedBy.Provider, m.ClassifiedBy.Model, m.Version, m.CreatedAt, max(m.Confirm, 1),
			m.SourceFormat.OrAuto(), m.Render, m.AutoRepair, max(m.ExtractionVersion, 1))
		if err != nil {
			return fmt.Errorf("insert monitor: %w", translate(err))
		}
		if err := insertPlannedTriggers(ctx, tx, m, plan); err != nil {
			return err
		}
		ev := event.MonitorCreated{MonitorChange: event.MonitorChange{
			ID: "monitor-created:" + m.ID, MonitorID: m.ID, UserID: m.UserID, Version: m.Version, At: m.CreatedAt}}
		return streams.AppendOutbox(ctx, tx, s.source, ev)
	})
}

// insertPlannedTriggers gives a new monitor the triggers of plan.
func insertPlannedTriggers(ctx context.Context, tx pgx.Tx, m *monitor.Monitor, plan app.TriggerPlan) error {
	specs := plan.Specs
	prefixes := make([]string, len(specs))
	for i := range specs {
		prefixes[i] = fmt.Sprintf("triggers[%d].", i)
	}
	if plan.Default {
		var actionID string
		err := tx.QueryRow(ctx, `SELECT id FROM actions WHERE user_id = $1 AND is_default`, m.UserID).Scan(&actionID)
		switch {
		case err == nil:
			specs, prefixes = append(specs, trigger.DefaultSpec(actionID)), append(prefixes, "")
		case !errors.Is(err, pgx.ErrNoRows): // no default action left: the monitor starts with none
			return fmt.Errorf("find default action: %w", translate(err))
		}
	}
	for i, sp := range specs {
		id, err := uuid.NewV7()
		if err != nil {
			return fmt.Errorf("new trigger id: %w", err)
		}
		t := trigger.Trigger{ID: id.String(), MonitorID: m.ID, ActionID: sp.ActionID, Condition: sp.Condition,
			Frequency: sp.Frequency, Cooldown: sp.Cooldown, Enabled: sp.Enabled, CreatedAt: m.CreatedAt}
		if err := insertTrigger(ctx, tx, m.UserID, &t, prefixes[i]); err != nil {
			return err
		}
	}
	return nil
}

const monitorColumns = `id, user_id, name, prompt, kind, spec, coalesce(source_url, ''), interval_seconds, coalesce(cron, ''), timezone,
	status, state, state_changed_at, next_run_at, last_evaluated_at, last_evaluation_for,
	consecutive_failures, coalesce(last_error, ''), coalesce(classified_by_provider, ''),
	coalesce(classified_by_model, ''), version, created_at, updated_at, confirm, source_format, render,
	auto_repair, extraction_misses, repair, extraction_version`

// FindMonitorByID implements app.MonitorFinder.
func (s *MonitorStore) FindMonitorByID(ctx context.Context, id string) (*monitor.Monitor, error) {
	row := s.pool.QueryRow(ctx, `SELECT `+monitorColumns+` FROM monitors WHERE id = $1`, id)
	m, err := scanMonitor(row)
	if err != nil {
		return nil, fmt.Errorf("find monitor %s: %w", id, translate(err))
	}
	return m, nil
}

// scanMonitor rebuilds a monitor from a row of monitorColumns, followed by any extra
// columns scanned into extra.
func scanMonitor(row pgx.Row, extra ...any) (*monitor.Monitor, error) {
	var (
		m        monitor.Monitor
		kind     monitor.Kind
		spec     []byte
		repair   []byte
		interval int
	)
	dest := append([]any{&m.ID, &m.UserID, &m.Name, &m.Prompt, &kind, &spec, &m.SourceURL, &interval, &m.Cron, &m.Timezone,
		&m.Status, &m.State, &m.StateChangedAt, &m.NextRunAt, &m.LastEvaluatedAt, &m.LastEvaluationFor,
		&m.ConsecutiveFailures, &m.LastError, &m.ClassifiedBy.Provider, &m.ClassifiedBy.Model,
		&m.Version, &m.CreatedAt, &m.UpdatedAt, &m.Confirm, &m.SourceFormat, &m.Render,
		&m.AutoRepair, &m.ExtractionMisses, &repair, &m.ExtractionVersion}, extra...)
	err := row.Scan(dest...)
	if err != nil {
		return nil, err
	}
	if m.Repair, err = decodeRepair(repair); err != nil {
		return nil, fmt.Errorf("monitor %s: %w", m.ID, err)
	}
	if err := json.Unmarshal(spec, &m.Spec); err != nil {
		return nil, fmt.Errorf("decode spec of monitor %s: %w", m.ID, err)
	}
	m.Spec.Kind = kind // the column is authoritative (and checked)
	m.Interval = time.Duration(interval) * time.Second
	return &m, nil
}

// ClaimDue implements app.DueStore.
func (s *MonitorStore) ClaimDue(ctx context.Context, q app.DueQuery) ([]app.DueMonitor, error) {
	var due []app.DueMonitor
	err := InTx(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			SELECT `+dueColumns+`, next_run_at FROM monitors
			WHERE status = 'active' AND next_run_at <= $1 AND ($3::uuid IS NULL OR id = $3::uuid)
			ORDER BY next_run_at
			LIMIT $2
			FOR UPDATE SKIP LOCKED`, q.Now, q.Limit, nullUUID(q.MonitorID))
		if err != nil {
			return fmt.Errorf("select due monitors: %w", translate(err))
		}
		due, err = pgx.CollectRows(rows, scanDue)
		if err != nil {
			return fmt.Errorf("read due monitors: %w", translate(err))
		}
		if len(due) == 0 {
			return nil
		}
		ids := make([]string, len(due))
		slots := make([]time.Time, len(due))
		nexts := make([]time.Time, len(due))
		for i, d := range due {
			ids[i], slots[i] = d.ID, d.Slot
			nexts[i] = monitor.NextScheduled(d.ID, d.Interval, d.Cron, d.Timezone, later(d.Slot, q.Now), q.Jitter)
		}
		_, err = tx.Exec(ctx, `
			WITH claimed AS (
				UPDATE monitors m SET next_run_at = u.next, last_scheduled_for = u.slot
				FROM unnest($1::uuid[], $2::timestamptz[], $3::timestamptz[]) AS u(id, slot, next)
				WHERE m.id = u.id
				RETURNING m.id, u.slot)
			INSERT INTO monitor_unpublished_slots (monitor_id, slot, claimed_at)
			SELECT id, slot, $4 FROM claimed
			ON CONFLICT (monitor_id) DO UPDATE SET slot = excluded.slot, claimed_at = excluded.claimed_at`, ids, slots, nexts, q.Now)
		if err != nil {
			return fmt.Errorf("advance due monitors: %w", translate(err))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return due, nil
}

// NextDue implements app.DueStore: the first entry of the due index.
func (s *MonitorStore) NextDue(ctx context.Context) (time.Time, error) {
	var next *time.Time
	if err := s.pool.QueryRow(ctx, `SELECT min(next_run_at) FROM monitors WHERE status = 'active'`).Scan(&next); err != nil {
		return time.Time{}, fmt.Errorf("next due monitor: %w", translate(err))
	}
	if next == nil {
		return time.Time{}, nil
	}
	return *next, nil
}

// MarkPublished implements app.DueStore.
func (s *MonitorStore) MarkPublished(ctx context.Context, due []app.DueMonitor) error {
	ids := make([]string, len(due))
	slots := make([]time.Time, len(due))
	for i, d := range due {
		ids[i], slots[i] = d.ID, d.Slot
	}
	_, err := s.pool.Exec(ctx, `
		DELETE FROM monitor_unpublished_slots s
		USING unnest($1::uuid[], $2::timestamptz[]) AS u(id, slot)
		WHERE s.monitor_id = u.id AND s.slot = u.slot`, ids, slots)
	if err != nil {
		return fmt.Errorf("mark slots published: %w", translate(err))
	}
	return nil
}

// Unpublished implements app.DueStore. It reads without locking: a slot published twice is
// stored once.
func (s *MonitorStore) Unpublished(ctx context.Context, before time.Time, limit int) ([]app.DueMonitor, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT `+dueColumns+`, s.slot FROM monitor_unpublished_slots s
		JOIN monitors m ON m.id = s.monitor_id
		WHERE s.claimed_at < $1 AND m.status = 'active'
		ORDER BY s.claimed_at
		LIMIT $2`, before, limit)
	if err != nil {
		return nil, fmt.Errorf("select unpublished slots: %w", translate(err))
	}
	due, err := pgx.CollectRows(rows, scanDue)
	if err != nil {
		return nil, fmt.Errorf("read unpublished slots: %w", translate(err))
	}
	return due, nil
}

// dueColumns are what a claimed slot carries to the evaluator, read by scanDue, which
// expects the slot's time after them.
const dueColumns = `id, interval_seconds, coalesce(cron, ''), timezone, user_id, version, kind, spec::text,
	coalesce(source_url, ''), source_format, render, auto_repair, extraction_version, last_success::text`

func scanDue(r pgx.CollectableRow) (app.DueMonitor, error) {
	var (
		d    app.DueMonitor
		secs int
	)
	err := r.Scan(&d.ID, &secs, &d.Cron, &d.Timezone, &d.Monitor.UserID, &d.Monitor.Version, &d.Monitor.Kind, &d.Monitor.Spec,
		&d.Monitor.SourceURL, &d.Monitor.SourceFormat, &d.Monitor.Render, &d.Monitor.AutoRepair, &d.Monitor.ExtractionVersion,
		&d.Monitor.Previous, &d.Slot)
	d.Interval = time.Duration(secs) * time.Second
	return d, err
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func nullUUID(id string) any {
	if id == "" {
		return nil
	}
	return id
}

// decodeRepair reads a repair column; NULL is none.
func decodeRepair(raw []byte) (*monitor.Repair, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	var r monitor.Repair
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("decode repair: %w", err)
	}
	return &r, nil
}

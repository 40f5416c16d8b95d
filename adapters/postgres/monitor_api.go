package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/app"
	"github.com/vigilhq/vigil/domain/event"
	"github.com/vigilhq/vigil/domain/monitor"
	"github.com/vigilhq/vigil/domain/trigger"
	"github.com/vigilhq/vigil/streams"
)

var _ app.MonitorRepository = (*MonitorStore)(nil)

// notFound is the answer for a monitor that does not exist or is not the caller's.
func notFound() error { return domain.Errorf(domain.ENOTFOUND, "Monitor not found.") }

// validID reports whether id can be a monitor id; anything else is simply not found.
func validID(id string) bool {
	_, err := uuid.Parse(id)
	return err == nil
}

// CountMonitors implements app.MonitorRepository.
func (s *MonitorStore) CountMonitors(ctx context.Context, userID string) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM monitors WHERE user_id = $1`, userID).Scan(&n); err != nil {
		return 0, fmt.Errorf("count monitors: %w", translate(err))
	}
	return n, nil
}

// GetMonitor implements app.MonitorRepository.
func (s *MonitorStore) GetMonitor(ctx context.Context, userID, id string) (*monitor.Monitor, error) {
	if !validID(id) {
		return nil, notFound()
	}
	m, err := scanMonitor(s.pool.QueryRow(ctx, `SELECT `+monitorColumns+` FROM monitors WHERE id = $1 AND user_id = $2`, id, userID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound()
	}
	if err != nil {
		return nil, fmt.Errorf("get monitor %s: %w", id, translate(err))
	}
	return m, nil
}

// MonitorDetail implements app.MonitorRepository in one round trip: the monitor, whose
// owner decides whether anything is shown, and in the same batch its last evaluation with
// that evaluation's facts, its latest facts and its triggers. For another user's monitor
// the rest is read and dropped: a 404 costs no more than an answer.
func (s *MonitorStore) MonitorDetail(ctx context.Context, userID, id string) (app.MonitorDetail, error) {
	if !validID(id) {
		return app.MonitorDetail{}, notFound()
	}
	var (
		d         app.MonitorDetail
		lastFacts map[string][]monitor.Fact // by evaluation id
		b         pgx.Batch
	)
	b.Queue(`SELECT `+monitorColumns+` FROM monitors WHERE id = $1 AND user_id = $2`, id, userID).QueryRow(func(row pgx.Row) error {
		m, err := scanMonitor(row)
		if errors.Is(err, pgx.ErrNoRows) {
			return notFound()
		}
		d.Monitor = m
		return err
	})
	b.Queue(`SELECT `+evaluationColumns+` FROM evaluations WHERE monitor_id = $1 ORDER BY scheduled_for DESC LIMIT 1`, id).Query(func(rows pgx.Rows) error {
		last, err := pgx.CollectRows(rows, scanEvaluation)
		if len(last) == 1 {
			d.LastEvaluation = &last[0]
		}
		return err
	})
	// The facts of that evaluation.
	b.Queue(factsOfSQL(`SELECT id, scheduled_for, finished_at, status FROM evaluations WHERE monitor_id = $1 ORDER BY scheduled_for DESC LIMIT 1`), id).
		Query(func(rows pgx.Rows) error {
			var err error
			lastFacts, err = scanFactsByEvaluation(rows)
			return err
		})
	b.Queue(`SELECT `+factColumns+` FROM fact_latest WHERE monitor_id = $1 AND key = ANY (`+specKeys+`) ORDER BY key`, id).
		Query(func(rows pgx.Rows) error {
			var err error
			d.LatestFacts, err = scanFacts(rows)
			return err
		})
	b.Queue(triggersSQL, id).Query(func(rows pgx.Rows) error {
		var err error
		d.Triggers, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (trigger.Trigger, error) { return scanTrigger(r) })
		return err
	})
	if err := s.pool.SendBatch(ctx, &b).Close(); err != nil {
		if domain.ErrorCode(err) == domain.ENOTFOUND {
			return app.MonitorDetail{}, err
		}
		return app.MonitorDetail{}, fmt.Errorf("monitor %s: %w", id, translate(err))
	}
	if d.LastEvaluation != nil {
		d.LastEvaluation.Facts = lastFacts[d.LastEvaluation.ID]
	}
	return d, nil
}

// specKeys is the SQL array of the names of the facts of the monitor $1's spec.
const specKeys = `ARRAY(SELECT f->>'name' FROM monitors m, jsonb_array_elements(m.spec->'facts') f WHERE m.id = $1)`

// sortExpr maps a sort name to its SQL expression and how a cursor value is typed.
var sortExpr = map[string]struct{ expr, cast string }{
	app.SortCreatedAt:       {"m.created_at", "timestamptz"},
	app.SortName:            {"lower(m.name)", "text"},
	app.SortLastEvaluatedAt: {"coalesce(m.last_evaluated_at, '-infinity')", "timestamptz"},
	app.SortStateChangedAt:  {"coalesce(m.state_changed_at, '-infinity')", "timestamptz"},
}

// ListMonitors implements app.MonitorRepository with keyset pagination on (sort value, id).
func (s *MonitorStore) ListMonitors(ctx context.Context, q app.MonitorQuery) (app.MonitorPage, error) {
	sort, ok := sortExpr[q.Sort]
	if !ok {
		sort = sortExpr[app.SortCreatedAt]
	}
	limit := min(max(q.Limit, 1), 100)
	where := []string{"m.user_id = $1"}
	args := []any{q.UserID}
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.ReplaceAll(cond, "$?", fmt.Sprintf("$%d", len(args))))
	}
	if q.Status != "" {
		add("m.status = $?", q.Status)
	}
	if q.Kind != "" {
		add("m.kind = $?", q.Kind)
	}
	if q.State != "" {
		add("m.state = $?", q.State)
	}
	if q.Text != "" {
		add(`(m.name ILIKE $? ESCAPE '\' OR m.prompt ILIKE $? ESCAPE '\')`, "%"+likeEscaper.Replace(q.Text)+"%")
	}
	dir, cmp := "ASC", ">"
	if q.Desc {
		dir, cmp = "DESC", "<"
	}
	if q.After != nil {
		args = append(args, q.After.Value, q.After.ID)
		n := len(args)
		where = append(where, fmt.Sprintf("(%s, m.id) %s ($%d::%s, $%d::uuid)", sort.expr, cmp, n-1, sort.cast, n))
	}
	sql := fmt.Sprintf(`SELECT %s, (%s)::text AS sort_key FROM monitors m WHERE %s ORDER BY %s %s, m.id %s LIMIT %d`,
		monitorColumns, sort.expr, strings.Join(where, " AND "), sort.expr, dir, dir, limit+1)
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return app.MonitorPage{}, fmt.Errorf("list monitors: %w", translate(err))
	}
	type row struct {
		m   *monitor.Monitor
		key string
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var key string
		m, err := scanMonitor(r, &key)
		return row{m, key}, err
	})
	if err != nil {
		return app.MonitorPage{}, fmt.Errorf("list monitors: %w", translate(err))
	}
	var page app.MonitorPage
	for i, r := range list {
		if i == limit {
			last := list[limit-1]
			page.Next = &app.MonitorCursor{Value: last.key, ID: last.m.ID}
			break
		}
		page.Monitors = append(page.Monitors, r.m)
	}
	return page, nil
}

var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// UpdateMonitor implements app.MonitorRepository. The state, status, schedule and failure
// columns are written only when edited says so; otherwise the row keeps what the recorder
// and the scheduler wrote, even after this request read it.
func (s *MonitorStore) UpdateMonitor(ctx context.Context, m *monitor.Monitor, expectedVersion int64, edited monitor.Edited) error {
	spec, err := json.Marshal(m.Spec)
	if err != nil {
		return fmt.Errorf("encode spec: %w", err)
	}
	return InTx(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			UPDATE monitors SET name = $3, prompt = $4, kind = $5, spec = $6, source_url = NULLIF($7, ''),
			       interval_seconds = $8, cron = NULLIF($9, ''), timezone = $10,
			       status = CASE WHEN $23 THEN $11 ELSE status END,
			       state = CASE WHEN $24 THEN $12 ELSE state END,
			       state_changed_at = CASE WHEN $24 THEN $13 ELSE state_changed_at END,
			       -- a state reset (a new classification) ends a streak towards a new state
			       pending_state = CASE WHEN $24 THEN NULL ELSE pending_state END,
			       pending_count = CASE WHEN $24 THEN 0 ELSE pending_count END,
			       next_run_at = CASE WHEN $25 THEN $14 ELSE next_run_at END,
			       consecutive_failures = CASE WHEN $26 THEN $15 ELSE consecutive_failures END,
			       last_error = CASE WHEN $26 THEN NULLIF($16, '') ELSE last_error END,
			       classified_by_provider = $17, classified_by_model = $18, version = $19, updated_at = $20, confirm = $22,
			       source_format = $27, render = $28, auto_repair = $29,
			       extraction_misses = CASE WHEN $30 THEN 0 ELSE extraction_misses END,
			       repair = CASE WHEN $30 THEN NULL ELSE repair END,
			       extraction_version = CASE WHEN $30 THEN $19 ELSE extraction_version END
			WHERE id = $1 AND user_id = $2 AND version = $21
			RETURNING status, state, state_changed_at, next_run_at, consecutive_failures, coalesce(last_error, ''),
			          extraction_misses, repair`,
			m.ID, m.UserID, m.Name, m.Prompt, m.Spec.Kind, spec, m.SourceURL, int(m.Interval/time.Second), m.Cron, m.Timezone,
			m.Status, m.State, m.StateChangedAt, m.NextRunAt, m.ConsecutiveFailures, m.LastError,
			m.ClassifiedBy.Provider, m.ClassifiedBy.Model, m.Version, m.UpdatedAt, expectedVersion, max(m.Confirm, 1),
			edited.SetStatus, edited.ResetState, edited.RunNow, edited.ClearFailures, m.SourceFormat.OrAuto(), m.Render,
			m.AutoRepair, edited.ClearRepair)
		if err != nil {
			return fmt.Errorf("update monitor: %w", translate(err))
		}
		updated := false
		var repair []byte
		_, err = pgx.ForEachRow(rows, []any{&m.Status, &m.State, &m.StateChangedAt, &m.NextRunAt, &m.ConsecutiveFailures, &m.LastError,
			&m.ExtractionMisses, &repair}, func() error { updated = true; return nil })
		if err != nil {
			return fmt.Errorf("update monitor: %w", translate(err))
		}
		if m.Repair, err = decodeRepair(repair); err != nil {
			return err
		}
		if !updated {
			exists, err := ownsMonitor(ctx, tx, m.UserID, m.ID, false)
			if err != nil {
				return fmt.Errorf("update monitor: %w", err)
			}
			if !exists {
				return notFound()
			}
			return domain.Errorf(domain.ECONFLICT, "The monitor was changed meanwhile.")
		}
		return streams.AppendOutbox(ctx, tx, s.source, event.MonitorUpdated{MonitorChange: event.MonitorChange{
			ID: fmt.Sprintf("monitor-updated:%s:%d", m.ID, m.Version), MonitorID: m.ID, UserID: m.UserID, Version: m.Version, At: m.UpdatedAt}})
	})
}

// DeleteMonitor implements app.MonitorRepository. Evaluations, facts, triggers and
// notifications go with the row (foreign keys cascade).
func (s *MonitorStore) DeleteMonitor(ctx context.Context, userID, id string, now time.Time) error {
	if !validID(id) {
		return notFound()
	}
	return InTx(ctx, s.pool, func(tx pgx.Tx) error {
		var version int64
		err := tx.QueryRow(ctx, `DELETE FROM monitors WHERE id = $1 AND user_id = $2 RETURNING version`, id, userID).Scan(&version)
		if errors.Is(err, pgx.ErrNoRows) {
			return notFound()
		}
		if err != nil {
			return fmt.Errorf("delete monitor: %w", translate(err))
		}
		return streams.AppendOutbox(ctx, tx, s.source, event.MonitorDeleted{MonitorChange: event.MonitorChange{
			ID: "monitor-deleted:" + id, MonitorID: id, UserID: userID, Version: version, At: now}})
	})
}

// RequestEvaluation implements app.MonitorRepository.
func (s *MonitorStore) RequestEvaluation(ctx context.Context, userID, id string, now time.Time) error {
	if !validID(id) {
		return notFound()
	}
	return InTx(ctx, s.pool, func(tx pgx.Tx) error {
		exists, err := ownsMonitor(ctx, tx, userID, id, false)
		if err != nil {
			return err
		}
		if !exists {
			return notFound()
		}
		return streams.AppendOutbox(ctx, tx, s.source, event.EvaluationDue{MonitorID: id, ScheduledFor: now, At: now})
	})
}

const evaluationColumns = `id, scheduled_for, started_at, finished_at, status, state, previous_state, changed, explanation,
	coalesce(provider, ''), coalesce(model, ''), input_tokens, output_tokens, cost::float8, latency_ms, coalesce(error, ''), facts_reused,
	miss, repair`

func scanEvaluation(r pgx.CollectableRow) (app.EvaluationRecord, error) {
	var (
		e            app.EvaluationRecord
		miss, repair []byte
	)
	err := r.Scan(&e.ID, &e.ScheduledFor, &e.StartedAt, &e.FinishedAt, &e.Status, &e.State, &e.PreviousState, &e.Changed,
		&e.Explanation, &e.Provider, &e.Model, &e.InputTokens, &e.OutputTokens, &e.Cost, &e.LatencyMS, &e.Error, &e.FactsReused,
		&miss, &repair)
	if err != nil {
		return e, err
	}
	if len(miss) > 0 {
		e.Miss = &monitor.Miss{}
		if err := json.Unmarshal(miss, e.Miss); err != nil {
			return e, fmt.Errorf("decode miss of evaluation %s: %w", e.ID, err)
		}
	}
	e.Repair, err = decodeRepair(repair)
	return e, err
}

// History implements app.MonitorRepository in one round trip: a page of the monitor's
// evaluations newest first, and their facts, when the monitor is the user's (ENOTFOUND
// when not; telling that from an empty page takes a second).
func (s *MonitorStore) History(ctx context.Context, q app.HistoryQuery) ([]app.EvaluationRecord, *app.HistoryCursor, error) {
	if !validID(q.MonitorID) {
		return nil, nil, notFound()
	}
	limit := min(max(q.Limit, 1), 100)
	where := []string{"monitor_id = $1"}
	args := []any{q.MonitorID}
	if q.From != nil {
		args = append(args, *q.From)
		where = append(where, fmt.Sprintf("scheduled_for >= $%d", len(args)))
	}
	if q.To != nil {
		args = append(args, *q.To)
		where = append(where, fmt.Sprintf("scheduled_for < $%d", len(args)))
	}
	if q.ChangedOnly {
		where = append(where, "changed")
	}
	if q.Before != nil {
		args = append(args, q.Before.ScheduledFor, q.Before.ID)
		where = append(where, fmt.Sprintf("(scheduled_for, id) < ($%d, $%d::uuid)", len(args)-1, len(args)))
	}
	// The owner check is a one-time filter of the page, so a stranger's monitor reads as
	// an empty page; only an empty page needs the check on its own, to tell the two apart.
	args = append(args, q.UserID)
	where = append(where, fmt.Sprintf("EXISTS (SELECT 1 FROM monitors WHERE id = $1 AND user_id = $%d)", len(args)))
	page := fmt.Sprintf(`SELECT %s FROM evaluations WHERE %s ORDER BY scheduled_for DESC, id DESC LIMIT %d`,
		evaluationColumns, strings.Join(where, " AND "), limit+1)
	var (
		evals []app.EvaluationRecord
		facts map[string][]monitor.Fact
		b     pgx.Batch
	)
	b.Queue(page, args...).Query(func(rows pgx.Rows) error {
		var err error
		evals, err = pgx.CollectRows(rows, scanEvaluation)
		return err
	})
	// The page's facts: the page again, as the subquery the facts are joined to (its last
	// row, the next page's first, costs one index range more).
	b.Queue(factsOfSQL(page), args...).Query(func(rows pgx.Rows) error {
		var err error
		facts, err = scanFactsByEvaluation(rows)
		return err
	})
	if err := s.pool.SendBatch(ctx, &b).Close(); err != nil {
		return nil, nil, fmt.Errorf("history: %w", translate(err))
	}
	if len(evals) == 0 {
		owned, err := ownsMonitor(ctx, s.pool, q.UserID, q.MonitorID, false)
		if err != nil {
			return nil, nil, fmt.Errorf("history: %w", err)
		}
		if !owned {
			return nil, nil, notFound()
		}
	}
	var next *app.HistoryCursor
	if len(evals) > limit {
		evals = evals[:limit]
		last := evals[limit-1]
		next = &app.HistoryCursor{ScheduledFor: last.ScheduledFor, ID: last.ID}
	}
	for i := range evals {
		evals[i].Facts = facts[evals[i].ID]
	}
	return evals, next, nil
}

// factsOfSQL reads the facts of the evaluations the query page selects (of the monitor $1),
// each row led by its evaluation's id. Only evaluations that succeeded or abstained have
// facts, observed while they ran: a fact is observed when its document was fetched, which
// may be before the evaluation started (a fetch shared within the slot) but never before
// its slot. So each evaluation's facts are one index range of facts_monitor_key_time_idx
// per key of the monitor's spec: (monitor, key, observed_at in the evaluation's window).
// The lateral subqueries keep it so in every plan, the cached generic plan included: as a
// join, the generic plan hashed the facts on the evaluation id, reading every fact the
// monitor has (all of a minutely monitor's 40,000 a month, for one page). OFFSET 0 keeps
// the subquery from being flattened into such a join.
func factsOfSQL(page string) string {
	return `SELECT e.id::text, f.* FROM (` + page + `) e
		CROSS JOIN LATERAL unnest(` + specKeys + `) AS k(key)
		CROSS JOIN LATERAL (
		  SELECT ` + factColumns + ` FROM facts
		  WHERE monitor_id = $1 AND key = k.key AND observed_at BETWEEN e.scheduled_for AND e.finished_at
		    AND evaluation_id = e.id
		  OFFSET 0) f
		WHERE e.status IN ('succeeded', 'abstained')
		ORDER BY f.key`
}

// scanFactsByEvaluation reads the rows of factsOfSQL.
func scanFactsByEvaluation(rows pgx.Rows) (map[string][]monitor.Fact, error) {
	byEval := map[string][]monitor.Fact{}
	var id string
	var f monitor.Fact
	_, err := pgx.ForEachRow(rows, append([]any{&id}, factTargets(&f)...), func() error {
		byEval[id] = append(byEval[id], f)
		f = monitor.Fact{}
		return nil
	})
	return byEval, err
}

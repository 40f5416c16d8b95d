package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigilhq/vigil/domain/app"
	"github.com/vigilhq/vigil/domain/monitor"
)

// StatsStore reads monitors' statistics from their evaluations and notifications.
type StatsStore struct {
	pool *pgxpool.Pool
}

var _ app.StatsStore = (*StatsStore)(nil)

// NewStatsStore returns a StatsStore.
func NewStatsStore(pool *pgxpool.Pool) *StatsStore { return &StatsStore{pool: pool} }

// EvaluationBuckets implements app.StatsStore: one range scan of the evaluations' unique
// (monitor_id, scheduled_for) index.
func (s *StatsStore) EvaluationBuckets(ctx context.Context, monitorID string, from, to time.Time, b monitor.Bucket, zone string) ([]app.EvaluationCounts, error) {
	bucket, arg, err := bucketExpr("scheduled_for", b, zone, 4)
	if err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `
		SELECT `+bucket+` AS b,
		       count(*) FILTER (WHERE status = 'succeeded')::int, count(*) FILTER (WHERE status = 'abstained')::int,
		       count(*) FILTER (WHERE status = 'failed')::int, sum(input_tokens)::bigint, sum(output_tokens)::bigint,
		       sum(cost)::float8, count(*) FILTER (WHERE facts_reused)::int, count(*) FILTER (WHERE changed)::int
		FROM evaluations WHERE monitor_id = $1 AND scheduled_for >= $2 AND scheduled_for < $3
		GROUP BY b ORDER BY b`, monitorID, from, to, arg)
	if err != nil {
		return nil, fmt.Errorf("evaluation buckets: %w", translate(err))
	}
	counts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (app.EvaluationCounts, error) {
		var c app.EvaluationCounts
		err := r.Scan(&c.Start, &c.Succeeded, &c.Abstained, &c.Failed, &c.InputTokens, &c.OutputTokens, &c.Cost, &c.FactsReused, &c.Transitions)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("evaluation buckets: %w", translate(err))
	}
	return counts, nil
}

// DurationPercentiles implements app.StatsStore.
func (s *StatsStore) DurationPercentiles(ctx context.Context, monitorID string, from, to time.Time) (app.Percentiles, app.Percentiles, error) {
	var lat, fetch app.Percentiles
	var lv, fv []*float64
	err := s.pool.QueryRow(ctx, `
		SELECT percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY latency_ms) FILTER (WHERE latency_ms IS NOT NULL),
		       count(latency_ms)::int,
		       percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY fetch_ms) FILTER (WHERE fetch_ms IS NOT NULL),
		       count(fetch_ms)::int
		FROM evaluations WHERE monitor_id = $1 AND scheduled_for >= $2 AND scheduled_for < $3`, monitorID, from, to).
		Scan(&lv, &lat.N, &fv, &fetch.N)
	if err != nil {
		return lat, fetch, fmt.Errorf("duration percentiles: %w", translate(err))
	}
	lat.P50, lat.P95, lat.P99 = at(lv, 0), at(lv, 1), at(lv, 2)
	fetch.P50, fetch.P95, fetch.P99 = at(fv, 0), at(fv, 1), at(fv, 2)
	return lat, fetch, nil
}

// Transitions implements app.StatsStore with the partial index of changed evaluations.
func (s *StatsStore) Transitions(ctx context.Context, monitorID string, from, to time.Time, limit int) (monitor.State, []monitor.Transition, error) {
	initial := monitor.StateUnknown
	err := s.pool.QueryRow(ctx, `
		SELECT state FROM evaluations WHERE monitor_id = $1 AND changed AND scheduled_for < $2
		ORDER BY scheduled_for DESC LIMIT 1`, monitorID, from).Scan(&initial)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return initial, nil, fmt.Errorf("state before %s: %w", from, translate(err))
	}
	rows, err := s.pool.Query(ctx, `
		SELECT coalesce(finished_at, scheduled_for), coalesce(previous_state, 'unknown'), state FROM evaluations
		WHERE monitor_id = $1 AND changed AND scheduled_for >= $2 AND scheduled_for < $3
		ORDER BY scheduled_for LIMIT $4`, monitorID, from, to, limit)
	if err != nil {
		return initial, nil, fmt.Errorf("transitions: %w", translate(err))
	}
	trs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (monitor.Transition, error) {
		var tr monitor.Transition
		err := r.Scan(&tr.At, &tr.From, &tr.To)
		return tr, err
	})
	if err != nil {
		return initial, nil, fmt.Errorf("transitions: %w", translate(err))
	}
	return initial, trs, nil
}

// NotificationCounts implements app.StatsStore with notifications_monitor_idx.
func (s *StatsStore) NotificationCounts(ctx context.Context, monitorID string, from, to time.Time) (map[string]int, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT status, count(*)::int FROM notifications
		WHERE monitor_id = $1 AND created_at >= $2 AND created_at < $3 GROUP BY status`, monitorID, from, to)
	if err != nil {
		return nil, fmt.Errorf("notification counts: %w", translate(err))
	}
	out := map[string]int{}
	var status string
	var n int
	_, err = pgx.ForEachRow(rows, []any{&status, &n}, func() error { out[status] = n; return nil })
	if err != nil {
		return nil, fmt.Errorf("notification counts: %w", translate(err))
	}
	return out, nil
}

// at is vals[i], 0 when it is missing or NULL (percentiles of no values).
func at(vals []*float64, i int) float64 {
	if i < len(vals) && vals[i] != nil {
		return *vals[i]
	}
	return 0
}

package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigilhq/vigil/domain/app"
	"github.com/vigilhq/vigil/domain/monitor"
)

var _ app.BacktestStore = (*StatsStore)(nil)

// FactPoints implements app.BacktestStore: the facts of keys in time order over
// facts_monitor_key_time_idx, grouped by the evaluation that stored them.
func (s *StatsStore) FactPoints(ctx context.Context, monitorID string, keys []string, from, to time.Time, limit int) ([]monitor.BacktestPoint, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT coalesce(evaluation_id::text, ''), `+factColumns+` FROM facts
		WHERE monitor_id = $1 AND key = ANY($2) AND observed_at >= $3 AND observed_at < $4
		ORDER BY observed_at, evaluation_id`, monitorID, keys, from, to)
	if err != nil {
		return nil, fmt.Errorf("fact points: %w", translate(err))
	}
	var (
		out      []monitor.BacktestPoint
		lastEval string
		evalID   string
		f        monitor.Fact
	)
	_, err = pgx.ForEachRow(rows, append([]any{&evalID}, factTargets(&f)...), func() error {
		n := len(out)
		if n > 0 && evalID == lastEval && (evalID != "" || out[n-1].At.Equal(f.ObservedAt)) {
			out[n-1].Facts = append(out[n-1].Facts, f)
		} else {
			if n == limit {
				out = append(out, monitor.BacktestPoint{At: f.ObservedAt}) // one past the limit says so
				return errStop
			}
			out = append(out, monitor.BacktestPoint{At: f.ObservedAt, Facts: []monitor.Fact{f}})
		}
		lastEval, f = evalID, monitor.Fact{}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return nil, fmt.Errorf("fact points: %w", translate(err))
	}
	return out, nil
}

// errStop ends a row loop early.
var errStop = errors.New("stop")

// SentByTrigger implements app.BacktestStore with notifications_monitor_idx.
func (s *StatsStore) SentByTrigger(ctx context.Context, monitorID string, from, to time.Time) (map[string]int, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT trigger_id::text, count(*)::int FROM notifications
		WHERE monitor_id = $1 AND created_at >= $2 AND created_at < $3 AND trigger_id IS NOT NULL
		GROUP BY trigger_id`, monitorID, from, to)
	if err != nil {
		return nil, fmt.Errorf("notifications by trigger: %w", translate(err))
	}
	out := map[string]int{}
	var id string
	var n int
	if _, err := pgx.ForEachRow(rows, []any{&id, &n}, func() error { out[id] = n; return nil }); err != nil {
		return nil, fmt.Errorf("notifications by trigger: %w", translate(err))
	}
	return out, nil
}

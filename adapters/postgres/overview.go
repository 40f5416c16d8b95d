package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigilhq/vigil/domain/app"
	"github.com/vigilhq/vigil/domain/monitor"
)

var _ app.OverviewStore = (*StatsStore)(nil)

// owner is the user an overview is scoped to: NULL reads the whole system.
func owner(userID string) *string {
	if userID == "" {
		return nil
	}
	return &userID
}

// MonitorCounts implements app.OverviewStore.
func (s *StatsStore) MonitorCounts(ctx context.Context, userID string) (map[monitor.State]int, map[monitor.Status]int, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT state, status, count(*)::int FROM monitors WHERE ($1::uuid IS NULL OR user_id = $1) GROUP BY state, status`, owner(userID))
	if err != nil {
		return nil, nil, fmt.Errorf("count monitors: %w", translate(err))
	}
	byState := map[monitor.State]int{monitor.StateActive: 0, monitor.StateInactive: 0, monitor.StateUnknown: 0}
	byStatus := map[monitor.Status]int{monitor.StatusActive: 0, monitor.StatusPaused: 0, monitor.StatusError: 0}
	var state monitor.State
	var status monitor.Status
	var n int
	_, err = pgx.ForEachRow(rows, []any{&state, &status, &n}, func() error {
		byState[state] += n
		byStatus[status] += n
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("count monitors: %w", translate(err))
	}
	return byState, byStatus, nil
}

// DailyEvaluations implements app.OverviewStore.
func (s *StatsStore) DailyEvaluations(ctx context.Context, userID string, from, to time.Time, zone string) ([]app.DayCounts, error) {
	day, arg, err := bucketExpr("e.scheduled_for", monitor.Bucket1d, zone, 4)
	if err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `
		SELECT `+day+` AS d, count(*) FILTER (WHERE e.status = 'succeeded')::int, count(*) FILTER (WHERE e.status = 'abstained')::int,
		       count(*) FILTER (WHERE e.status = 'failed')::int, sum(e.cost)::float8
		FROM monitors m JOIN evaluations e ON e.monitor_id = m.id AND e.scheduled_for >= $2 AND e.scheduled_for < $3
		WHERE ($1::uuid IS NULL OR m.user_id = $1)
		GROUP BY d ORDER BY d`, owner(userID), from, to, arg)
	if err != nil {
		return nil, fmt.Errorf("daily evaluations: %w", translate(err))
	}
	days, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (app.DayCounts, error) {
		var d app.DayCounts
		err := r.Scan(&d.Start, &d.Succeeded, &d.Abstained, &d.Failed, &d.Cost)
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("daily evaluations: %w", translate(err))
	}
	return days, nil
}

// DailyNotifications implements app.OverviewStore. Digests count like any notification.
func (s *StatsStore) DailyNotifications(ctx context.Context, userID string, from, to time.Time, zone string) (map[time.Time]map[string]int, error) {
	day, arg, err := bucketExpr("created_at", monitor.Bucket1d, zone, 4)
	if err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `
		SELECT `+day+` AS d, status, count(*)::int FROM notifications
		WHERE ($1::uuid IS NULL OR user_id = $1) AND created_at >= $2 AND created_at < $3
		GROUP BY d, status`, owner(userID), from, to, arg)
	if err != nil {
		return nil, fmt.Errorf("daily notifications: %w", translate(err))
	}
	out := map[time.Time]map[string]int{}
	var d time.Time
	var status string
	var n int
	_, err = pgx.ForEachRow(rows, []any{&d, &status, &n}, func() error {
		d = d.UTC()
		if out[d] == nil {
			out[d] = map[string]int{}
		}
		out[d][status] = n
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("daily notifications: %w", translate(err))
	}
	return out, nil
}

// Noisiest implements app.OverviewStore: per monitor, one probe of the partial index of
// changed evaluations and one of notifications_monitor_idx.
func (s *StatsStore) Noisiest(ctx context.Context, userID string, from, to time.Time, limit int) ([]app.NoisyMonitor, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT m.id::text, m.name, t.n, x.n FROM monitors m
		CROSS JOIN LATERAL (SELECT count(*)::int AS n FROM evaluations e
		                    WHERE e.monitor_id = m.id AND e.changed AND e.scheduled_for >= $2 AND e.scheduled_for < $3) t
		CROSS JOIN LATERAL (SELECT count(*)::int AS n FROM notifications x
		                    WHERE x.monitor_id = m.id AND x.created_at >= $2 AND x.created_at < $3) x
		WHERE ($1::uuid IS NULL OR m.user_id = $1) AND t.n + x.n > 0
		ORDER BY t.n + x.n DESC, m.id LIMIT $4`, owner(userID), from, to, limit)
	if err != nil {
		return nil, fmt.Errorf("noisiest monitors: %w", translate(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (app.NoisyMonitor, error) {
		var nm app.NoisyMonitor
		err := r.Scan(&nm.MonitorID, &nm.Name, &nm.Transitions, &nm.Notifications)
		return nm, err
	})
	if err != nil {
		return nil, fmt.Errorf("noisiest monitors: %w", translate(err))
	}
	return out, nil
}

// CountUsers implements app.OverviewStore.
func (s *StatsStore) CountUsers(ctx context.Context) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*)::int FROM users`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count users: %w", translate(err))
	}
	return n, nil
}

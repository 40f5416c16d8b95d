package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigilhq/vigil/domain/app"
	"github.com/vigilhq/vigil/domain/monitor"
)

// FactStore reads the facts time series.
type FactStore struct {
	pool *pgxpool.Pool
}

var _ app.HistoryStore = (*FactStore)(nil)

// NewFactStore returns a FactStore.
func NewFactStore(pool *pgxpool.Pool) *FactStore { return &FactStore{pool: pool} }

// FactHistory implements app.HistoryStore with three index range scans of
// facts_monitor_key_time_idx.
func (s *FactStore) FactHistory(ctx context.Context, monitorID, key string, since, before time.Time) (monitor.History, error) {
	var h monitor.History
	scan := func(r pgx.CollectableRow) (monitor.Point, error) {
		var p monitor.Point
		err := r.Scan(&p.At, &p.Number, &p.Text)
		return p, err
	}
	rows, err := s.pool.Query(ctx, `
		SELECT observed_at, value_number, value_text FROM facts
		WHERE monitor_id = $1 AND key = $2 AND observed_at >= $3 AND observed_at < $4
		ORDER BY observed_at DESC LIMIT 10000`, monitorID, key, since, before)
	if err != nil {
		return h, fmt.Errorf("read facts in window: %w", translate(err))
	}
	if h.InWindow, err = pgx.CollectRows(rows, scan); err != nil {
		return h, fmt.Errorf("read facts in window: %w", translate(err))
	}
	one := func(sql string, args ...any) (*monitor.Point, error) {
		rows, err := s.pool.Query(ctx, sql, args...)
		if err != nil {
			return nil, err
		}
		ps, err := pgx.CollectRows(rows, scan)
		if err != nil || len(ps) == 0 {
			return nil, err
		}
		return &ps[0], nil
	}
	if h.AtStart, err = one(`
		SELECT observed_at, value_number, value_text FROM facts
		WHERE monitor_id = $1 AND key = $2 AND observed_at <= $3
		ORDER BY observed_at DESC LIMIT 1`, monitorID, key, since); err != nil {
		return h, fmt.Errorf("read fact at window start: %w", translate(err))
	}
	if len(h.InWindow) > 0 {
		h.Previous = &h.InWindow[0]
	} else {
		h.Previous = h.AtStart
	}
	return h, nil
}

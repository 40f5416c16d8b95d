package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigilhq/vigil/domain/app"
	"github.com/vigilhq/vigil/domain/monitor"
)

var _ app.SeriesStore = (*FactStore)(nil)

// bucketOrigin aligns the fixed buckets: a UTC midnight, as monitor.Bucket.Start does.
const bucketOrigin = "2000-01-03 00:00:00+00"

// bucketExpr is the SQL of the start of column's bucket, as monitor.Bucket.Start computes
// it, with the value of its parameter $n.
func bucketExpr(column string, b monitor.Bucket, zone string, n int) (string, any, error) {
	p := fmt.Sprintf("$%d", n)
	switch {
	case b.Width() > 0:
		return "date_bin(make_interval(secs => " + p + "), " + column + ", '" + bucketOrigin + "')", b.Width().Seconds(), nil
	case b == monitor.Bucket1d:
		// Local midnight in the zone, back to an instant: a DST day is 23 or 25 hours.
		return "date_trunc('day', " + column + " AT TIME ZONE " + p + ") AT TIME ZONE " + p, zone, nil
	case b == monitor.Bucket1w:
		return "date_trunc('week', " + column + " AT TIME ZONE " + p + ") AT TIME ZONE " + p, zone, nil
	}
	return "", nil, fmt.Errorf("bucket %q is not a bucket of time", b)
}

// NumberBuckets implements app.SeriesStore: one index range scan of
// facts_monitor_key_time_idx, grouped by bucket in the database.
func (s *FactStore) NumberBuckets(ctx context.Context, monitorID, key string, from, to time.Time, b monitor.Bucket, zone string) ([]monitor.BucketStats, error) {
	bucket, arg, err := bucketExpr("observed_at", b, zone, 5)
	if err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `
		SELECT b, count(*)::int, sum(v), min(v), max(v), (array_agg(v ORDER BY observed_at))[1], (array_agg(v ORDER BY observed_at DESC))[1]
		FROM (SELECT `+bucket+` AS b, value_number AS v, observed_at FROM facts
		      WHERE monitor_id = $1 AND key = $2 AND observed_at >= $3 AND observed_at < $4 AND value_number IS NOT NULL) f
		GROUP BY b ORDER BY b`, monitorID, key, from, to, arg)
	if err != nil {
		return nil, fmt.Errorf("bucket facts: %w", translate(err))
	}
	stats, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (monitor.BucketStats, error) {
		var st monitor.BucketStats
		err := r.Scan(&st.Start, &st.N, &st.Sum, &st.Min, &st.Max, &st.First, &st.Last)
		return st, err
	})
	if err != nil {
		return nil, fmt.Errorf("bucket facts: %w", translate(err))
	}
	return stats, nil
}

// Observations implements app.SeriesStore.
func (s *FactStore) Observations(ctx context.Context, monitorID, key string, from, to time.Time, limit int) ([]monitor.Fact, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT `+factColumns+` FROM facts
		WHERE monitor_id = $1 AND key = $2 AND observed_at >= $3 AND observed_at < $4
		ORDER BY observed_at LIMIT $5`, monitorID, key, from, to, limit)
	if err != nil {
		return nil, fmt.Errorf("observations: %w", translate(err))
	}
	facts, err := scanFacts(rows)
	if err != nil {
		return nil, fmt.Errorf("observations: %w", translate(err))
	}
	return facts, nil
}

// ValueChanges implements app.SeriesStore, comparing each observation with the one
// before it in the database, so only the changes travel.
func (s *FactStore) ValueChanges(ctx context.Context, monitorID, key string, from, to time.Time, limit int) ([]monitor.Fact, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT `+factColumns+` FROM (
		  SELECT *, lag(v) OVER (ORDER BY observed_at) AS prev FROM (
		    SELECT key, value_number, value_text, value_bool, unit, observed_at, evidence, confidence,
		           coalesce(value_text, value_bool::text, value_number::text) AS v
		    FROM facts WHERE monitor_id = $1 AND key = $2 AND observed_at >= $3 AND observed_at < $4) f) c
		WHERE prev IS DISTINCT FROM v
		ORDER BY observed_at LIMIT $5`, monitorID, key, from, to, limit)
	if err != nil {
		return nil, fmt.Errorf("value changes: %w", translate(err))
	}
	facts, err := scanFacts(rows)
	if err != nil {
		return nil, fmt.Errorf("value changes: %w", translate(err))
	}
	return facts, nil
}

// LatestBefore implements app.SeriesStore.
func (s *FactStore) LatestBefore(ctx context.Context, monitorID, key string, t time.Time) (*monitor.Fact, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT `+factColumns+` FROM facts
		WHERE monitor_id = $1 AND key = $2 AND observed_at < $3
		ORDER BY observed_at DESC LIMIT 1`, monitorID, key, t)
	if err != nil {
		return nil, fmt.Errorf("latest fact before %s: %w", t, translate(err))
	}
	facts, err := scanFacts(rows)
	if err != nil || len(facts) == 0 {
		return nil, err
	}
	return &facts[0], nil
}

// LatestFacts implements app.SeriesStore.
func (s *FactStore) LatestFacts(ctx context.Context, monitorID string, keys []string) ([]monitor.Fact, error) {
	return latestFacts(ctx, s.pool, monitorID, keys)
}

// latestFacts reads the newest fact of each key: one index probe per key.
func latestFacts(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, monitorID string, keys []string) ([]monitor.Fact, error) {
	rows, err := q.Query(ctx, `
		SELECT f.* FROM unnest($2::text[]) AS k(key) CROSS JOIN LATERAL (
		  SELECT `+factColumns+` FROM facts
		  WHERE monitor_id = $1 AND key = k.key ORDER BY observed_at DESC LIMIT 1) f
		ORDER BY f.key`, monitorID, keys)
	if err != nil {
		return nil, fmt.Errorf("latest facts: %w", translate(err))
	}
	facts, err := scanFacts(rows)
	if err != nil {
		return nil, fmt.Errorf("latest facts: %w", translate(err))
	}
	return facts, nil
}

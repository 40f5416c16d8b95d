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

// NumberBuckets implements app.SeriesStore. Buckets of an hour or more whose starts fall on
// whole UTC hours read the hourly rollups for the whole hours of the range and the raw
// facts only for its partial first and last hours, so a month of a key is a few hundred
// rows; the parts merge exactly (counts and sums add, first and last go by their times).
// Finer buckets, and days in a zone whose midnights are not on UTC hours, read the facts.
func (s *FactStore) NumberBuckets(ctx context.Context, monitorID, key string, from, to time.Time, b monitor.Bucket, zone string) ([]monitor.BucketStats, error) {
	bucket, arg, err := bucketExpr("t", b, zone, 5)
	if err != nil {
		return nil, err
	}
	hourFrom, hourTo := from.Truncate(time.Hour), to.Truncate(time.Hour)
	if hourFrom.Before(from) {
		hourFrom = hourFrom.Add(time.Hour)
	}
	if !rollupsServe(b, from, to, zone) || !hourFrom.Before(hourTo) {
		hourFrom, hourTo = to, to // no whole hours: every observation is read raw
	}
	rows, err := s.pool.Query(ctx, `
		WITH parts AS (
		  SELECT observed_at AS t, 1::bigint AS n, value_number AS sum, value_number AS min, value_number AS max,
		         value_number AS first, observed_at AS first_at, value_number AS last, observed_at AS last_at
		  FROM facts WHERE monitor_id = $1 AND key = $2 AND value_number IS NOT NULL
		    AND (observed_at >= $3 AND observed_at < $6 OR observed_at >= $7 AND observed_at < $4)
		  UNION ALL
		  SELECT hour, n, sum, min, max, first, first_at, last, last_at FROM fact_rollups_hourly
		  WHERE monitor_id = $1 AND key = $2 AND hour >= $6 AND hour < $7)
		SELECT `+bucket+` AS b, sum(n)::int, sum(sum), min(min), max(max),
		       (min(ARRAY[extract(epoch FROM first_at)::float8, first]))[2], (max(ARRAY[extract(epoch FROM last_at)::float8, last]))[2]
		FROM parts GROUP BY b ORDER BY b`, monitorID, key, from, to, arg, hourFrom, hourTo)
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

// rollupsServe reports buckets made of whole UTC hours over [from, to).
func rollupsServe(b monitor.Bucket, from, to time.Time, zone string) bool {
	if w := b.Width(); w > 0 {
		return w%time.Hour == 0
	}
	loc, err := time.LoadLocation(zone)
	if err != nil {
		return false
	}
	for _, start := range b.Starts(from, to, loc, monitor.SeriesMaxPoints) {
		if start.Minute() != 0 || start.Second() != 0 || start.Nanosecond() != 0 {
			return false
		}
	}
	return true
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

// LatestFacts implements app.SeriesStore from fact_latest, which the facts' insert trigger
// keeps: one range of its primary key, however long the history.
func (s *FactStore) LatestFacts(ctx context.Context, monitorID string, keys []string) ([]monitor.Fact, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT `+factColumns+` FROM fact_latest
		WHERE monitor_id = $1 AND key = ANY($2::text[])
		ORDER BY key`, monitorID, keys)
	if err != nil {
		return nil, fmt.Errorf("latest facts: %w", translate(err))
	}
	facts, err := scanFacts(rows)
	if err != nil {
		return nil, fmt.Errorf("latest facts: %w", translate(err))
	}
	return facts, nil
}

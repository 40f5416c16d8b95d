package postgres_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/postgres"
	"github.com/vigilhq/vigil/domain/monitor"
)

// TestNumberBucketsEqualABruteForceAggregate: over random series spanning the DST changes
// of two zones, stored late and out of order in several statements, the database's buckets
// (read from the hourly rollups for an hour and coarser) equal the ones monitor.Bucket.Start
// and BucketStats compute from the raw observations, for every bucket and zone.
func TestNumberBucketsEqualABruteForceAggregate(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	store := postgres.NewFactStore(b.pool)
	rng := rand.New(rand.NewPCG(42, 7))
	// Around Europe's and America's autumn changes of 2026.
	from := time.Date(2026, 10, 20, 0, 0, 0, 0, time.UTC)
	to := time.Date(2026, 11, 5, 0, 0, 0, 0, time.UTC)
	var rows [][]any
	var obs []monitor.Fact
	for at := from; at.Before(to); at = at.Add(time.Duration(1+rng.IntN(240)) * time.Minute) {
		if rng.IntN(10) == 0 {
			at = at.Add(time.Duration(rng.IntN(48)) * time.Hour) // gaps
		}
		v := math.Round(rng.NormFloat64()*1000) / 100
		rows = append(rows, []any{b.monitor.ID, "price", v, "USD", at})
		obs = append(obs, monitor.NumberFact("price", v, "USD", at))
	}
	// Stored in three batches, the last two late and out of order, so hours already rolled
	// up take more facts, earlier and later ones among them.
	rng.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
	third := len(rows) / 3
	for _, part := range [][][]any{rows[:third], rows[third : 2*third], rows[2*third:]} {
		_, err := b.pool.CopyFrom(ctx, pgx.Identifier{"facts"}, []string{"monitor_id", "key", "value_number", "unit", "observed_at"}, pgx.CopyFromRows(part))
		require.NoError(t, err)
	}
	require.Positive(t, b.count(t, `SELECT count(*) FROM fact_rollups_hourly WHERE monitor_id = $1`, b.monitor.ID), "the rollups are kept")
	require.Equal(t, len(rows), b.count(t, `SELECT sum(n)::int FROM fact_rollups_hourly WHERE monitor_id = $1`, b.monitor.ID))

	// Asia/Kolkata's midnights fall on half hours: its days are read from the facts.
	for _, zone := range []string{"UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata"} {
		loc, err := time.LoadLocation(zone)
		require.NoError(t, err)
		for _, bucket := range monitor.SeriesBuckets[1:] {
			// A range that starts and ends inside buckets.
			qFrom, qTo := from.Add(7*time.Hour+13*time.Minute), to.Add(-5*time.Hour-1*time.Minute)
			got, err := store.NumberBuckets(ctx, b.monitor.ID, "price", qFrom, qTo, bucket, zone)
			require.NoError(t, err)
			want := map[int64]*monitor.BucketStats{}
			var order []int64
			for _, o := range obs {
				if o.ObservedAt.Before(qFrom) || !o.ObservedAt.Before(qTo) {
					continue
				}
				start := bucket.Start(o.ObservedAt, loc)
				k := start.UnixNano()
				if want[k] == nil {
					want[k] = &monitor.BucketStats{Start: start}
					order = append(order, k)
				}
				want[k].Add(*o.Number)
			}
			require.Len(t, got, len(order), "%s %s", zone, bucket)
			for i, g := range got {
				w := want[order[i]]
				require.True(t, w.Start.Equal(g.Start), "%s %s bucket %d: %s, want %s", zone, bucket, i, g.Start, w.Start)
				require.Equal(t, w.N, g.N)
				require.InDelta(t, w.Sum, g.Sum, 1e-9)
				require.Equal(t, w.Min, g.Min)
				require.Equal(t, w.Max, g.Max)
				require.Equal(t, w.First, g.First)
				require.Equal(t, w.Last, g.Last)
			}
		}
	}

	// And the hourly buckets do come from the rollups: change one, and the answer changes.
	qFrom, qTo := from.Add(24*time.Hour), from.Add(48*time.Hour)
	before, err := store.NumberBuckets(ctx, b.monitor.ID, "price", qFrom, qTo, monitor.Bucket1h, "UTC")
	require.NoError(t, err)
	require.NotEmpty(t, before)
	_, err = b.pool.Exec(ctx, `UPDATE fact_rollups_hourly SET sum = sum + 1000 WHERE monitor_id = $1 AND hour = $2`, b.monitor.ID, before[0].Start)
	require.NoError(t, err)
	after, err := store.NumberBuckets(ctx, b.monitor.ID, "price", qFrom, qTo, monitor.Bucket1h, "UTC")
	require.NoError(t, err)
	require.InDelta(t, before[0].Sum+1000, after[0].Sum, 1e-9)
}

// TestLatestFactsEqualTheNewestObservation: facts of three kinds stored in shuffled
// batches, the later ones late and out of order, leave fact_latest holding each key's
// newest observation with its evidence, as a scan of every observation finds it; a late
// fact older than the one kept changes nothing, and a newer one replaces it.
func TestLatestFactsEqualTheNewestObservation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	store := postgres.NewFactStore(b.pool)
	rng := rand.New(rand.NewPCG(3, 11))
	start := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	type row struct {
		key      string
		at       time.Time
		evidence string
		value    any
	}
	var rows []row
	for i := range 600 {
		at := start.Add(time.Duration(i)*time.Hour + time.Duration(rng.IntN(59))*time.Minute)
		r := row{at: at, evidence: fmt.Sprintf("seen %d", i)}
		switch rng.IntN(3) {
		case 0:
			r.key, r.value = "price", float64(rng.IntN(10000))/100
		case 1:
			r.key, r.value = "status", []string{"in stock", "sold out"}[rng.IntN(2)]
		default:
			r.key, r.value = "open", rng.IntN(2) == 0
		}
		rows = append(rows, r)
	}
	rng.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
	copyRows := func(part []row) {
		t.Helper()
		var in [][]any
		for _, r := range part {
			var n, s, bl any
			switch v := r.value.(type) {
			case float64:
				n = v
			case string:
				s = v
			case bool:
				bl = v
			}
			in = append(in, []any{b.monitor.ID, r.key, n, s, bl, "", r.at, r.evidence, float32(0.9)})
		}
		_, err := b.pool.CopyFrom(ctx, pgx.Identifier{"facts"},
			[]string{"monitor_id", "key", "value_number", "value_text", "value_bool", "unit", "observed_at", "evidence", "confidence"}, pgx.CopyFromRows(in))
		require.NoError(t, err)
	}
	for i := 0; i < len(rows); i += 97 {
		copyRows(rows[i:min(i+97, len(rows))])
	}
	newest := map[string]row{}
	for _, r := range rows {
		if r.at.After(newest[r.key].at) {
			newest[r.key] = r
		}
	}
	check := func() {
		t.Helper()
		got, err := store.LatestFacts(ctx, b.monitor.ID, []string{"price", "status", "open", "never seen"})
		require.NoError(t, err)
		require.Len(t, got, 3, "a key never observed is left out")
		for _, f := range got {
			w := newest[f.Key]
			require.True(t, w.at.Equal(f.ObservedAt), "%s observed %s, want %s", f.Key, f.ObservedAt, w.at)
			require.Equal(t, w.evidence, f.Evidence)
			require.InDelta(t, 0.9, f.Confidence, 1e-6)
			switch v := w.value.(type) {
			case float64:
				require.Equal(t, v, *f.Number)
			case string:
				require.Equal(t, v, *f.Text)
			case bool:
				require.Equal(t, v, *f.Bool)
			}
		}
	}
	check()

	late := newest["price"]
	late.at, late.evidence, late.value = late.at.Add(-time.Minute), "late", 1.0
	copyRows([]row{late})
	check()
	next := newest["price"]
	next.at, next.evidence, next.value = next.at.Add(time.Minute), "newer", 2.0
	copyRows([]row{next})
	newest["price"] = next
	check()
}

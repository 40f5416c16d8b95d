package postgres_test

import (
	"context"
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
// of two zones, the database's buckets equal the ones monitor.Bucket.Start and
// BucketStats compute from the raw observations, for every bucket and zone.
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
	_, err := b.pool.CopyFrom(ctx, pgx.Identifier{"facts"}, []string{"monitor_id", "key", "value_number", "unit", "observed_at"}, pgx.CopyFromRows(rows))
	require.NoError(t, err)

	for _, zone := range []string{"UTC", "Europe/Paris", "America/New_York"} {
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
}

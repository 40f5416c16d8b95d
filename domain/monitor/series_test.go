package monitor_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/domain/monitor"
)

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	require.NoError(t, err)
	return loc
}

// Day buckets follow local midnights: the spring-forward day is 23 hours long and the
// fall-back day 25, in both zones.
func TestDayBucketsAcrossDST(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		zone                 string
		springDay, autumnDay time.Time // local dates of the changes in 2026
	}{
		{"Europe/Paris", time.Date(2026, 3, 29, 0, 0, 0, 0, time.UTC), time.Date(2026, 10, 25, 0, 0, 0, 0, time.UTC)},
		{"America/New_York", time.Date(2026, 3, 8, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)},
	} {
		t.Run(tc.zone, func(t *testing.T) {
			t.Parallel()
			loc := mustZone(t, tc.zone)
			for day, want := range map[time.Time]time.Duration{tc.springDay: 23 * time.Hour, tc.autumnDay: 25 * time.Hour} {
				local := time.Date(day.Year(), day.Month(), day.Day(), 12, 0, 0, 0, loc)
				// From the local midnight before to the one after the change day: three days.
				from := time.Date(day.Year(), day.Month(), day.Day()-1, 6, 0, 0, 0, loc)
				to := time.Date(day.Year(), day.Month(), day.Day()+1, 6, 0, 0, 0, loc)
				starts := monitor.Bucket1d.Starts(from, to, loc, 10)
				require.Len(t, starts, 3)
				for _, s := range starts {
					l := s.In(loc)
					require.Equal(t, 0, l.Hour()+l.Minute(), "a day starts at local midnight: %s", l)
				}
				require.Equal(t, starts[1], monitor.Bucket1d.Start(local, loc))
				require.Equal(t, want, starts[2].Sub(starts[1]), "the day of the change")
				require.Equal(t, 24*time.Hour, starts[1].Sub(starts[0]))
			}
			// Weeks start on Monday, local midnight, and the week of a change is an hour off.
			week := monitor.Bucket1w.Starts(tc.springDay.AddDate(0, 0, -14), tc.springDay.AddDate(0, 0, 14), loc, 10)
			for i, s := range week {
				require.Equal(t, time.Monday, s.In(loc).Weekday())
				if i > 0 {
					require.InDelta(t, float64(7*24*time.Hour), float64(s.Sub(week[i-1])), float64(time.Hour))
				}
			}
		})
	}
}

func TestFixedBucketsAndAuto(t *testing.T) {
	t.Parallel()
	from := time.Date(2026, 11, 1, 10, 7, 0, 0, time.UTC)
	to := from.Add(3 * time.Hour)
	starts := monitor.Bucket1h.Starts(from, to, time.UTC, 100)
	require.Equal(t, []time.Time{from.Truncate(time.Hour), from.Truncate(time.Hour).Add(time.Hour),
		from.Truncate(time.Hour).Add(2 * time.Hour), from.Truncate(time.Hour).Add(3 * time.Hour)}, starts, "the buckets overlapping the range")
	require.Equal(t, 4, monitor.Bucket1h.Count(from, to, time.UTC, 100))
	require.Equal(t, 13, monitor.Bucket15m.Count(from, to, time.UTC, 100))
	require.Equal(t, 11, monitor.Bucket1m.Count(from, from.Add(time.Hour), time.UTC, 10), "counting stops past the limit")
	require.Equal(t, time.Date(2026, 11, 1, 6, 0, 0, 0, time.UTC), monitor.Bucket6h.Start(from, time.UTC))

	require.Equal(t, monitor.Bucket5m, monitor.AutoBucket(from, from.Add(24*time.Hour), time.UTC))
	require.Equal(t, monitor.Bucket1h, monitor.AutoBucket(from, from.Add(30*24*time.Hour), time.UTC))
	require.Equal(t, monitor.Bucket1d, monitor.AutoBucket(from, from.Add(365*24*time.Hour), time.UTC))
	msg := monitor.TooManyPoints(monitor.Bucket1m, from, from.Add(30*24*time.Hour), time.UTC)
	require.Contains(t, msg, "use bucket=15m or coarser")
	require.Contains(t, monitor.TooManyPoints(monitor.BucketRaw, from, from.Add(time.Hour), time.UTC), "bucket=1m")
}

func TestFillBucketsShowsGaps(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	starts := monitor.Bucket1h.Starts(t0, t0.Add(3*time.Hour), time.UTC, 10)
	var a, c monitor.BucketStats
	a.Start, c.Start = t0, t0.Add(2*time.Hour)
	for _, v := range []float64{3, 1, 2} {
		a.Add(v)
	}
	c.Add(10)
	for agg, want := range map[monitor.Agg]float64{monitor.AggAvg: 2, monitor.AggMin: 1, monitor.AggMax: 3, monitor.AggFirst: 3,
		monitor.AggLast: 2, monitor.AggCount: 3} {
		points := monitor.FillBuckets(starts, []monitor.BucketStats{a, c}, agg)
		require.Len(t, points, 3)
		require.Equal(t, want, *points[0].V, agg)
		require.Equal(t, 1.0, *points[0].Min)
		require.Equal(t, 3.0, *points[0].Max)
		require.Equal(t, 3, points[0].N)
		require.Nil(t, points[1].V, "an empty bucket has no value")
		require.Zero(t, points[1].N)
		require.Equal(t, t0.Add(time.Hour), points[1].T)
		require.Equal(t, 1, points[2].N)
	}
}

func TestValueChanges(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	text := func(s string, i int) monitor.Fact {
		return monitor.Fact{Key: "status", Text: &s, ObservedAt: t0.Add(time.Duration(i) * time.Minute)}
	}
	points := monitor.ValueChanges([]monitor.Fact{text("open", 0), text("open", 1), text("closed", 2), text("closed", 3), text("open", 4)})
	require.Len(t, points, 3)
	require.Equal(t, "open", points[0].Value)
	require.Equal(t, "closed", points[1].Value)
	require.Equal(t, t0.Add(2*time.Minute), points[1].T)
	require.Equal(t, t0.Add(4*time.Minute), points[2].T)
	require.True(t, strings.Contains(monitor.BucketList(), "1w"))
	require.True(t, monitor.Bucket("1d").Calendar())
	require.False(t, monitor.Bucket("2h").Valid())
}

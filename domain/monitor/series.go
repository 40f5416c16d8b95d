package monitor

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Bucket is the width of the points of a fact series: raw observations, a fixed duration,
// or a calendar day or ISO week in a time zone.
type Bucket string

// Buckets.
const (
	BucketRaw Bucket = "raw"
	Bucket1m  Bucket = "1m"
	Bucket5m  Bucket = "5m"
	Bucket15m Bucket = "15m"
	Bucket1h  Bucket = "1h"
	Bucket6h  Bucket = "6h"
	Bucket1d  Bucket = "1d"
	Bucket1w  Bucket = "1w"
	// BucketAuto picks the finest bucket that keeps a series within SeriesAutoPoints.
	BucketAuto Bucket = "auto"
)

// SeriesBuckets lists the buckets from the finest, for messages and the API's schema.
var SeriesBuckets = []Bucket{BucketRaw, Bucket1m, Bucket5m, Bucket15m, Bucket1h, Bucket6h, Bucket1d, Bucket1w}

// Limits of a series.
const (
	SeriesMaxPoints  = 5000 // points (buckets, or raw observations) in one series
	SeriesAutoPoints = 1000 // what BucketAuto aims below
	SeriesMaxKeys    = 10
)

var fixedBuckets = map[Bucket]time.Duration{
	Bucket1m: time.Minute, Bucket5m: 5 * time.Minute, Bucket15m: 15 * time.Minute, Bucket1h: time.Hour, Bucket6h: 6 * time.Hour,
}

// Valid reports a known bucket, auto included.
func (b Bucket) Valid() bool { return b == BucketAuto || slices.Contains(SeriesBuckets, b) }

// Calendar reports a bucket of local days or weeks, which follows a time zone.
func (b Bucket) Calendar() bool { return b == Bucket1d || b == Bucket1w }

// Width is a fixed bucket's duration; 0 for raw and the calendar buckets.
func (b Bucket) Width() time.Duration { return fixedBuckets[b] }

// Start returns the start of the bucket holding t, in UTC: fixed buckets are aligned on
// UTC midnight, days on local midnight in loc, weeks on local Monday midnight.
func (b Bucket) Start(t time.Time, loc *time.Location) time.Time {
	if w := b.Width(); w > 0 {
		return t.UTC().Truncate(w)
	}
	l := t.In(loc)
	day := time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, loc)
	if b == Bucket1w {
		day = time.Date(l.Year(), l.Month(), l.Day()-(int(l.Weekday())+6)%7, 0, 0, 0, 0, loc)
	}
	return day.UTC()
}

// next returns the start of the bucket after the one starting at start; calendar buckets
// add local days, so a DST day is 23 or 25 hours long.
func (b Bucket) next(start time.Time, loc *time.Location) time.Time {
	if w := b.Width(); w > 0 {
		return start.Add(w)
	}
	l := start.In(loc)
	days := 1
	if b == Bucket1w {
		days = 7
	}
	return time.Date(l.Year(), l.Month(), l.Day()+days, 0, 0, 0, 0, loc)
}

// Starts returns the starts of the buckets overlapping [from, to), at most limit+1 of
// them, so a caller can tell a range too long for the limit.
func (b Bucket) Starts(from, to time.Time, loc *time.Location, limit int) []time.Time {
	var out []time.Time
	for s := b.Start(from, loc); s.Before(to) && len(out) <= limit; s = b.next(s, loc) {
		out = append(out, s.UTC())
	}
	return out
}

// Count returns how many buckets overlap [from, to), up to limit+1.
func (b Bucket) Count(from, to time.Time, loc *time.Location, limit int) int {
	if w := b.Width(); w > 0 {
		n := int64(b.Start(to.Add(-time.Nanosecond), loc).Sub(b.Start(from, loc))/w) + 1
		return int(min(n, int64(limit)+1))
	}
	return len(b.Starts(from, to, loc, limit))
}

// AutoBucket is the finest bucket (raw excluded) with at most SeriesAutoPoints buckets in
// [from, to); the week when none is.
func AutoBucket(from, to time.Time, loc *time.Location) Bucket {
	for _, b := range SeriesBuckets[1:] {
		if b.Count(from, to, loc, SeriesAutoPoints) <= SeriesAutoPoints {
			return b
		}
	}
	return Bucket1w
}

// Agg is how a bucket's observations become its value.
type Agg string

// Aggregations.
const (
	AggAvg   Agg = "avg"
	AggMin   Agg = "min"
	AggMax   Agg = "max"
	AggFirst Agg = "first"
	AggLast  Agg = "last"
	AggCount Agg = "count"
)

// Aggs lists the aggregations.
var Aggs = []Agg{AggAvg, AggMin, AggMax, AggFirst, AggLast, AggCount}

// Valid reports a known aggregation.
func (a Agg) Valid() bool { return slices.Contains(Aggs, a) }

// BucketStats are one bucket's numeric observations, summed up.
type BucketStats struct {
	Start                      time.Time
	N                          int
	Sum, Min, Max, First, Last float64
}

// Add folds one observation into the bucket; observations come in time order.
func (s *BucketStats) Add(v float64) {
	if s.N == 0 {
		s.Min, s.Max, s.First = v, v, v
	}
	s.N++
	s.Sum += v
	s.Min, s.Max, s.Last = math.Min(s.Min, v), math.Max(s.Max, v), v
}

// Value is the bucket's value under agg.
func (s BucketStats) Value(agg Agg) float64 {
	switch agg {
	case AggMin:
		return s.Min
	case AggMax:
		return s.Max
	case AggFirst:
		return s.First
	case AggLast:
		return s.Last
	case AggCount:
		return float64(s.N)
	}
	return s.Sum / float64(s.N)
}

// SeriesPoint is one point of a series. A numeric bucket has V (nil when empty), Min, Max and
// N; a raw observation V alone; a text or boolean series has its changes, Value.
type SeriesPoint struct {
	T        time.Time
	V        *float64
	Min, Max *float64
	N        int
	Value    any // text and boolean series: the value from T on
}

// FillBuckets turns the stats of the buckets that had observations into one point per
// bucket start, in order; an empty bucket is a point with no value, so a chart shows the gap.
func FillBuckets(starts []time.Time, stats []BucketStats, agg Agg) []SeriesPoint {
	byStart := make(map[int64]BucketStats, len(stats))
	for _, s := range stats {
		byStart[s.Start.UnixNano()] = s
	}
	out := make([]SeriesPoint, len(starts))
	for i, t := range starts {
		out[i] = SeriesPoint{T: t}
		s, ok := byStart[t.UnixNano()]
		if !ok || s.N == 0 {
			continue
		}
		v, lo, hi := s.Value(agg), s.Min, s.Max
		out[i].V, out[i].Min, out[i].Max, out[i].N = &v, &lo, &hi, s.N
	}
	return out
}

// ValueChanges returns the observations of a text or boolean fact where its value changed, in
// time order: the first one, then each that differs from the one before.
func ValueChanges(facts []Fact) []SeriesPoint {
	var out []SeriesPoint
	for _, f := range facts {
		v := f.Value()
		if v == nil {
			continue
		}
		if n := len(out); n > 0 && out[n-1].Value == v {
			continue
		}
		out = append(out, SeriesPoint{T: f.ObservedAt, Value: v})
	}
	return out
}

// BucketList names the buckets, for messages.
func BucketList() string {
	names := make([]string, 0, len(SeriesBuckets)+1)
	for _, b := range SeriesBuckets {
		names = append(names, string(b))
	}
	return strings.Join(append(names, string(BucketAuto)), ", ")
}

// TooManyPoints is the message of a series of bucket b over SeriesMaxPoints in
// [from, to): the finest coarser bucket that would do, or a shorter range.
func TooManyPoints(b Bucket, from, to time.Time, loc *time.Location) string {
	for _, c := range SeriesBuckets[slices.Index(SeriesBuckets, b)+1:] {
		if c.Count(from, to, loc, SeriesMaxPoints) <= SeriesMaxPoints {
			return fmt.Sprintf("gives more than %d points from %s to %s; use bucket=%s or coarser, or a shorter range",
				SeriesMaxPoints, from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339), c)
		}
	}
	return fmt.Sprintf("gives more than %d points; use a shorter range", SeriesMaxPoints)
}

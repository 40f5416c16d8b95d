package app

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/monitor"
)

// SeriesQuery asks for fact series of a monitor.
type SeriesQuery struct {
	UserID, MonitorID string
	Keys              []string // none: every fact of the monitor
	From, To          *time.Time
	Bucket            monitor.Bucket // "" is auto
	Agg               monitor.Agg    // "" is avg
	Zone              string         // IANA zone of day and week buckets; "" is UTC
}

// Series is one fact's series over a range. Numeric facts have a point per bucket (or per
// observation with the raw bucket); text and boolean facts have their changes, starting
// with the value in effect at From.
type Series struct {
	Key    string
	Type   monitor.FactType
	Unit   string
	Points []monitor.SeriesPoint
}

// SeriesAnswer is the series with the query as it was resolved.
type SeriesAnswer struct {
	From, To time.Time
	Bucket   monitor.Bucket
	Agg      monitor.Agg
	Zone     string
	Series   []Series
}

// SeriesStore reads the facts time series.
type SeriesStore interface {
	// NumberBuckets returns, for the buckets of [from, to) that hold observations of the
	// numeric fact key, their stats, bucketed as Bucket.Start does in zone.
	NumberBuckets(ctx context.Context, monitorID, key string, from, to time.Time, b monitor.Bucket, zone string) ([]monitor.BucketStats, error)
	// Observations returns up to limit observations of key in [from, to), oldest first.
	Observations(ctx context.Context, monitorID, key string, from, to time.Time, limit int) ([]monitor.Fact, error)
	// ValueChanges returns up to limit observations of key in [from, to) whose value differs
	// from the observation before it (the first one in the range included), oldest first.
	ValueChanges(ctx context.Context, monitorID, key string, from, to time.Time, limit int) ([]monitor.Fact, error)
	// LatestBefore returns the newest observation of key before t, or nil when none.
	LatestBefore(ctx context.Context, monitorID, key string, t time.Time) (*monitor.Fact, error)
	// LatestFacts returns the newest observation of each key, with its evidence.
	LatestFacts(ctx context.Context, monitorID string, keys []string) ([]monitor.Fact, error)
}

// OwnedMonitors finds a user's monitor.
type OwnedMonitors interface {
	// GetMonitor returns the user's monitor or ENOTFOUND.
	GetMonitor(ctx context.Context, userID, id string) (*monitor.Monitor, error)
}

// SeriesService serves a monitor's stored facts as chart-ready series.
type SeriesService struct {
	monitors OwnedMonitors
	store    SeriesStore
	now      func() time.Time
}

// NewSeriesService returns a SeriesService.
func NewSeriesService(monitors OwnedMonitors, store SeriesStore, now func() time.Time) *SeriesService {
	return &SeriesService{monitors: monitors, store: store, now: now}
}

// Default ranges of a series when from is left out.
const (
	SeriesRangeDefault    = 7 * 24 * time.Hour
	SeriesRawRangeDefault = 24 * time.Hour
)

// Series returns the series of the user's monitor. A query that cannot be answered is an
// EINVALID error naming the parameter to change: an unknown key, a range that ends before
// it starts, or more than monitor.SeriesMaxPoints points.
func (s *SeriesService) Series(ctx context.Context, q SeriesQuery) (SeriesAnswer, error) {
	m, err := s.monitors.GetMonitor(ctx, q.UserID, q.MonitorID)
	if err != nil {
		return SeriesAnswer{}, err
	}
	a, facts, loc, err := resolveSeries(q, m.Spec, s.now())
	if err != nil {
		return SeriesAnswer{}, err
	}
	var starts []time.Time
	if a.Bucket != monitor.BucketRaw {
		starts = a.Bucket.Starts(a.From, a.To, loc, monitor.SeriesMaxPoints)
	}
	for _, f := range facts {
		sr := Series{Key: f.Name, Type: f.Type, Unit: f.Unit}
		switch {
		case f.Type != monitor.FactNumber:
			if sr.Points, err = s.changes(ctx, m.ID, f.Name, a.From, a.To); err != nil {
				return SeriesAnswer{}, err
			}
		case a.Bucket == monitor.BucketRaw:
			obs, err := s.store.Observations(ctx, m.ID, f.Name, a.From, a.To, monitor.SeriesMaxPoints+1)
			if err != nil {
				return SeriesAnswer{}, fmt.Errorf("observations of %s: %w", f.Name, err)
			}
			if len(obs) > monitor.SeriesMaxPoints {
				return SeriesAnswer{}, invalidQuery("bucket", monitor.TooManyPoints(a.Bucket, a.From, a.To, loc))
			}
			sr.Points = make([]monitor.SeriesPoint, 0, len(obs))
			for _, o := range obs {
				if o.Number != nil {
					v := *o.Number
					sr.Points = append(sr.Points, monitor.SeriesPoint{T: o.ObservedAt, V: &v, N: 1})
				}
			}
		default:
			stats, err := s.store.NumberBuckets(ctx, m.ID, f.Name, a.From, a.To, a.Bucket, a.Zone)
			if err != nil {
				return SeriesAnswer{}, fmt.Errorf("buckets of %s: %w", f.Name, err)
			}
			sr.Points = monitor.FillBuckets(starts, stats, a.Agg)
		}
		a.Series = append(a.Series, sr)
	}
	return a, s.fillUnits(ctx, m.ID, a.Series)
}

// fillUnits gives the series whose fact declares no unit the unit its values were read
// with, from the newest of them.
func (s *SeriesService) fillUnits(ctx context.Context, monitorID string, series []Series) error {
	var keys []string
	for _, sr := range series {
		if sr.Unit == "" && sr.Type == monitor.FactNumber {
			keys = append(keys, sr.Key)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	latest, err := s.store.LatestFacts(ctx, monitorID, keys)
	if err != nil {
		return fmt.Errorf("units of %s: %w", strings.Join(keys, ", "), err)
	}
	for i := range series {
		for _, f := range latest {
			if f.Key == series[i].Key && series[i].Unit == "" {
				series[i].Unit = f.Unit
			}
		}
	}
	return nil
}

// resolveSeries fills in the query's defaults (to is now) and checks it against the
// monitor's spec.
func resolveSeries(q SeriesQuery, spec monitor.Spec, now time.Time) (SeriesAnswer, []monitor.FactSpec, *time.Location, error) {
	fields := map[string]string{}
	a := SeriesAnswer{Bucket: q.Bucket, Agg: q.Agg, Zone: q.Zone}
	if a.Bucket == "" {
		a.Bucket = monitor.BucketAuto
	}
	if !a.Bucket.Valid() {
		fields["bucket"] = "must be one of " + monitor.BucketList()
	}
	if a.Agg == "" {
		a.Agg = monitor.AggAvg
	}
	if !a.Agg.Valid() {
		fields["agg"] = fmt.Sprintf("must be one of %s", joinAggs())
	}
	if a.Zone == "" {
		a.Zone = "UTC"
	}
	loc, err := time.LoadLocation(a.Zone)
	if err != nil || strings.EqualFold(a.Zone, "local") {
		fields["tz"] = "must be an IANA time zone such as Europe/Paris"
		loc = time.UTC
	}
	a.To = now.UTC()
	if q.To != nil {
		a.To = q.To.UTC()
	}
	a.From = a.To.Add(-SeriesRangeDefault)
	if a.Bucket == monitor.BucketRaw {
		a.From = a.To.Add(-SeriesRawRangeDefault)
	}
	if q.From != nil {
		a.From = q.From.UTC()
	}
	if !a.From.Before(a.To) {
		fields["from"] = "must be before to"
	}
	facts, why := seriesFacts(spec, q.Keys)
	if why != "" {
		fields["key"] = why
	}
	if len(fields) > 0 {
		return a, nil, loc, &domain.Error{Code: domain.EINVALID, Message: "The series query has invalid parameters.", Fields: fields}
	}
	if a.Bucket == monitor.BucketAuto {
		a.Bucket = monitor.AutoBucket(a.From, a.To, loc)
	}
	if a.Bucket != monitor.BucketRaw && a.Bucket.Count(a.From, a.To, loc, monitor.SeriesMaxPoints) > monitor.SeriesMaxPoints {
		return a, nil, loc, invalidQuery("bucket", monitor.TooManyPoints(a.Bucket, a.From, a.To, loc))
	}
	return a, facts, loc, nil
}

// changes is a text or boolean fact's series: the value in effect at from, then each change.
func (s *SeriesService) changes(ctx context.Context, monitorID, key string, from, to time.Time) ([]monitor.SeriesPoint, error) {
	before, err := s.store.LatestBefore(ctx, monitorID, key, from)
	if err != nil {
		return nil, fmt.Errorf("value of %s before %s: %w", key, from, err)
	}
	changed, err := s.store.ValueChanges(ctx, monitorID, key, from, to, monitor.SeriesMaxPoints+1)
	if err != nil {
		return nil, fmt.Errorf("changes of %s: %w", key, err)
	}
	var facts []monitor.Fact
	if before != nil {
		at := *before
		at.ObservedAt = from // in effect from the start of the range
		facts = append(facts, at)
	}
	points := monitor.ValueChanges(append(facts, changed...))
	if len(points) > monitor.SeriesMaxPoints {
		return nil, invalidQuery("from", fmt.Sprintf("the %s changed more than %d times in this range; use a shorter range", key, monitor.SeriesMaxPoints))
	}
	return points, nil
}

// Latest returns the newest value of each fact of the user's monitor, with its time and
// evidence; facts never observed are left out.
func (s *SeriesService) Latest(ctx context.Context, userID, monitorID string) ([]monitor.Fact, error) {
	m, err := s.monitors.GetMonitor(ctx, userID, monitorID)
	if err != nil {
		return nil, err
	}
	facts, _ := seriesFacts(m.Spec, nil)
	keys := make([]string, len(facts))
	for i, f := range facts {
		keys[i] = f.Name
	}
	return s.store.LatestFacts(ctx, m.ID, keys)
}

// seriesFacts returns the facts named by keys (every fact of the spec when none), or why
// the keys do not do.
func seriesFacts(spec monitor.Spec, keys []string) ([]monitor.FactSpec, string) {
	have := make([]string, len(spec.Facts))
	for i, f := range spec.Facts {
		have[i] = f.Name
	}
	if len(keys) == 0 {
		return spec.Facts, ""
	}
	if len(keys) > monitor.SeriesMaxKeys {
		return nil, fmt.Sprintf("may be given at most %d times", monitor.SeriesMaxKeys)
	}
	var out []monitor.FactSpec
	for _, k := range keys {
		f, ok := spec.Fact(k)
		if !ok {
			return nil, fmt.Sprintf("%q is not a fact of this monitor; its facts are: %s", k, strings.Join(have, ", "))
		}
		if !slices.ContainsFunc(out, func(o monitor.FactSpec) bool { return o.Name == k }) {
			out = append(out, f)
		}
	}
	return out, ""
}

func joinAggs() string {
	names := make([]string, len(monitor.Aggs))
	for i, a := range monitor.Aggs {
		names[i] = string(a)
	}
	return strings.Join(names, ", ")
}

func invalidQuery(field, why string) error {
	return &domain.Error{Code: domain.EINVALID, Message: "The series query asks for too much.", Fields: map[string]string{field: why}}
}

package app

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/monitor"
)

// OverviewQuery is the range of an account's or the system's overview, in days of Zone.
type OverviewQuery struct {
	From, To *time.Time
	Zone     string
}

// DayCounts are one day's evaluations, spend and notifications.
type DayCounts struct {
	Start                        time.Time
	Succeeded, Abstained, Failed int
	Cost                         float64
	Notifications                map[string]int // by status
}

// NoisyMonitor is a monitor with how much it changed and notified in the range.
type NoisyMonitor struct {
	MonitorID, Name            string
	Transitions, Notifications int
}

// Overview is an account's (or, with Users, the whole system's) activity over a range.
type Overview struct {
	From, To         time.Time
	Zone             string
	Users            int // the system's overview only
	Monitors         int
	MonitorsByState  map[monitor.State]int
	MonitorsByStatus map[monitor.Status]int
	Days             []DayCounts // every day of the range, empty ones included
	Noisiest         []NoisyMonitor
}

// OverviewStore reads overviews; an empty userID reads the whole system.
type OverviewStore interface {
	MonitorCounts(ctx context.Context, userID string) (map[monitor.State]int, map[monitor.Status]int, error)
	// DailyEvaluations returns the days of [from, to) in zone that had evaluations.
	DailyEvaluations(ctx context.Context, userID string, from, to time.Time, zone string) ([]DayCounts, error)
	// DailyNotifications returns, for the days of [from, to) in zone, the notifications
	// created by status, keyed by the day's start.
	DailyNotifications(ctx context.Context, userID string, from, to time.Time, zone string) (map[time.Time]map[string]int, error)
	// Noisiest returns up to limit monitors with the most transitions and notifications in
	// [from, to), noisiest first.
	Noisiest(ctx context.Context, userID string, from, to time.Time, limit int) ([]NoisyMonitor, error)
	CountUsers(ctx context.Context) (int, error)
}

// AdminCheck says whether a user may see the whole system.
type AdminCheck interface {
	// RequireAdmin returns EFORBIDDEN unless actorID is an enabled administrator.
	RequireAdmin(ctx context.Context, actorID string) error
}

// OverviewService serves accounts' and the system's overviews.
type OverviewService struct {
	store  OverviewStore
	admins AdminCheck
	now    func() time.Time
}

// NewOverviewService returns an OverviewService.
func NewOverviewService(store OverviewStore, admins AdminCheck, now func() time.Time) *OverviewService {
	return &OverviewService{store: store, admins: admins, now: now}
}

// Limits of an overview.
const (
	OverviewRangeDefault = 30 * 24 * time.Hour
	OverviewMaxDays      = 400
	NoisiestMonitors     = 10
)

// Account returns the user's overview.
func (s *OverviewService) Account(ctx context.Context, userID string, q OverviewQuery) (Overview, error) {
	if userID == "" {
		return Overview{}, domain.Errorf(domain.EUNAUTHORIZED, "Authentication is required.")
	}
	return s.overview(ctx, userID, q)
}

// System returns the whole system's overview, for administrators only.
func (s *OverviewService) System(ctx context.Context, actorID string, q OverviewQuery) (Overview, error) {
	if err := s.admins.RequireAdmin(ctx, actorID); err != nil {
		return Overview{}, err
	}
	o, err := s.overview(ctx, "", q)
	if err != nil {
		return o, err
	}
	if o.Users, err = s.store.CountUsers(ctx); err != nil {
		return o, fmt.Errorf("count users: %w", err)
	}
	return o, nil
}

func (s *OverviewService) overview(ctx context.Context, userID string, q OverviewQuery) (Overview, error) {
	o, loc, err := s.resolve(q)
	if err != nil {
		return o, err
	}
	if o.MonitorsByState, o.MonitorsByStatus, err = s.store.MonitorCounts(ctx, userID); err != nil {
		return o, fmt.Errorf("count monitors: %w", err)
	}
	for _, n := range o.MonitorsByStatus {
		o.Monitors += n
	}
	days, err := s.store.DailyEvaluations(ctx, userID, o.From, o.To, o.Zone)
	if err != nil {
		return o, fmt.Errorf("daily evaluations: %w", err)
	}
	notes, err := s.store.DailyNotifications(ctx, userID, o.From, o.To, o.Zone)
	if err != nil {
		return o, fmt.Errorf("daily notifications: %w", err)
	}
	byDay := make(map[int64]DayCounts, len(days))
	for _, d := range days {
		byDay[d.Start.UnixNano()] = d
	}
	notesByDay := make(map[int64]map[string]int, len(notes))
	for t, n := range notes {
		notesByDay[t.UnixNano()] = n
	}
	for _, start := range monitor.Bucket1d.Starts(o.From, o.To, loc, OverviewMaxDays) {
		d := byDay[start.UnixNano()]
		d.Start, d.Notifications = start, notesByDay[start.UnixNano()]
		if d.Notifications == nil {
			d.Notifications = map[string]int{}
		}
		o.Days = append(o.Days, d)
	}
	if o.Noisiest, err = s.store.Noisiest(ctx, userID, o.From, o.To, NoisiestMonitors); err != nil {
		return o, fmt.Errorf("noisiest monitors: %w", err)
	}
	return o, nil
}

func (s *OverviewService) resolve(q OverviewQuery) (Overview, *time.Location, error) {
	fields := map[string]string{}
	o := Overview{Zone: q.Zone, To: s.now().UTC()}
	if o.Zone == "" {
		o.Zone = "UTC"
	}
	loc, err := time.LoadLocation(o.Zone)
	if err != nil || strings.EqualFold(o.Zone, "local") {
		fields["tz"] = "must be an IANA time zone such as Europe/Paris"
		loc = time.UTC
	}
	if q.To != nil {
		o.To = q.To.UTC()
	}
	o.From = o.To.Add(-OverviewRangeDefault)
	if q.From != nil {
		o.From = q.From.UTC()
	}
	switch {
	case !o.From.Before(o.To):
		fields["from"] = "must be before to"
	case monitor.Bucket1d.Count(o.From, o.To, loc, OverviewMaxDays) > OverviewMaxDays:
		fields["from"] = fmt.Sprintf("gives more than %d days; use a shorter range", OverviewMaxDays)
	}
	if len(fields) > 0 {
		return o, loc, &domain.Error{Code: domain.EINVALID, Message: "The overview query has invalid parameters.", Fields: fields}
	}
	return o, loc, nil
}

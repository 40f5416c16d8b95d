package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/vigilhq/vigil/domain/app"
)

// Overviews is what GET /api/stats and /api/admin/stats need; *app.OverviewService
// satisfies it.
type Overviews interface {
	Account(ctx context.Context, userID string, q app.OverviewQuery) (app.Overview, error)
	System(ctx context.Context, actorID string, q app.OverviewQuery) (app.Overview, error)
}

// OverviewJSON is an account's or the system's activity over a range of days.
type OverviewJSON struct {
	From     time.Time            `json:"from"`
	To       time.Time            `json:"to"`
	TZ       string               `json:"tz"`
	Users    *int                 `json:"users,omitempty"` // the system's overview only
	Monitors OverviewMonitorsJSON `json:"monitors"`
	Days     []OverviewDayJSON    `json:"days"`
	Noisiest []NoisyMonitorJSON   `json:"noisiest"`
}

// OverviewMonitorsJSON counts monitors by state and by status.
type OverviewMonitorsJSON struct {
	Total    int            `json:"total"`
	ByState  map[string]int `json:"by_state"`
	ByStatus map[string]int `json:"by_status"`
}

// OverviewDayJSON is one day: its evaluations, spend (US dollars) and notifications.
type OverviewDayJSON struct {
	T             time.Time      `json:"t"`
	Evaluations   int            `json:"evaluations"`
	Succeeded     int            `json:"succeeded"`
	Abstained     int            `json:"abstained"`
	Failed        int            `json:"failed"`
	Cost          float64        `json:"cost"`
	Notifications map[string]int `json:"notifications"`
}

// NoisyMonitorJSON is one of the monitors that changed and notified most.
type NoisyMonitorJSON struct {
	MonitorID     string `json:"monitor_id"`
	Name          string `json:"name"`
	Transitions   int    `json:"transitions"`
	Notifications int    `json:"notifications"`
}

func (s *Server) registerOverviewRoutes(e *echo.Echo) {
	e.GET("/api/stats", s.accountOverview, s.authenticated)
	e.GET("/api/admin/stats", s.systemOverview, s.authenticated, s.adminOnly)
}

func (s *Server) accountOverview(c echo.Context) error {
	return s.overview(c, s.cfg.Overviews.Account)
}

func (s *Server) systemOverview(c echo.Context) error {
	return s.overview(c, s.cfg.Overviews.System)
}

func (s *Server) overview(c echo.Context, get func(context.Context, string, app.OverviewQuery) (app.Overview, error)) error {
	caller, err := mustCaller(c)
	if err != nil {
		return err
	}
	fields := map[string]string{}
	from, to := readRange(c, fields)
	if err := queryProblem("overview", fields); err != nil {
		return err
	}
	o, err := get(c.Request().Context(), caller.UserID, app.OverviewQuery{From: from, To: to, Zone: c.QueryParam("tz")})
	if err != nil {
		return asBadQuery(err)
	}
	out := OverviewJSON{From: o.From, To: o.To, TZ: o.Zone,
		Monitors: OverviewMonitorsJSON{Total: o.Monitors, ByState: map[string]int{}, ByStatus: map[string]int{}},
		Days:     make([]OverviewDayJSON, 0, len(o.Days)), Noisiest: make([]NoisyMonitorJSON, 0, len(o.Noisiest))}
	if o.Users > 0 {
		out.Users = &o.Users
	}
	for st, n := range o.MonitorsByState {
		out.Monitors.ByState[string(st)] = n
	}
	for st, n := range o.MonitorsByStatus {
		out.Monitors.ByStatus[string(st)] = n
	}
	for _, d := range o.Days {
		out.Days = append(out.Days, OverviewDayJSON{T: d.Start, Evaluations: d.Succeeded + d.Abstained + d.Failed, Succeeded: d.Succeeded,
			Abstained: d.Abstained, Failed: d.Failed, Cost: d.Cost, Notifications: d.Notifications})
	}
	for _, nm := range o.Noisiest {
		out.Noisiest = append(out.Noisiest, NoisyMonitorJSON(nm))
	}
	return c.JSON(http.StatusOK, out)
}

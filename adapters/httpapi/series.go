package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/vigilhq/vigil/domain/app"
	"github.com/vigilhq/vigil/domain/monitor"
)

// Series is what the fact series handlers need; *app.SeriesService satisfies it. Both
// methods are scoped to the user.
type Series interface {
	Series(ctx context.Context, q app.SeriesQuery) (app.SeriesAnswer, error)
	Latest(ctx context.Context, userID, monitorID string) ([]monitor.Fact, error)
}

// SeriesAnswerJSON is GET /api/monitors/:id/facts.
type SeriesAnswerJSON struct {
	From   time.Time    `json:"from"`
	To     time.Time    `json:"to"`
	Bucket string       `json:"bucket"`
	Agg    string       `json:"agg"`
	TZ     string       `json:"tz"`
	Series []SeriesJSON `json:"series"`
}

// SeriesJSON is one fact's series, ready to chart: numbers have a point per bucket, with
// null values for empty buckets so the gaps show; texts and booleans their changes.
type SeriesJSON struct {
	Key    string      `json:"key"`
	Type   string      `json:"type"`
	Unit   string      `json:"unit"`
	Bucket string      `json:"bucket"`
	Points []PointJSON `json:"points"`
}

// PointJSON is one point: t is the bucket's start (or the observation's or change's time).
type PointJSON struct {
	T   time.Time `json:"t"`
	V   any       `json:"v"`
	Min *float64  `json:"min,omitempty"`
	Max *float64  `json:"max,omitempty"`
	N   *int      `json:"n,omitempty"`
}

// LatestFactsJSON is GET /api/monitors/:id/facts/latest.
type LatestFactsJSON struct {
	Facts []FactJSON `json:"facts"`
}

func (s *Server) registerSeriesRoutes(e *echo.Echo) {
	g := e.Group("/api/monitors", s.authenticated)
	g.GET("/:id/facts", s.factSeries)
	g.GET("/:id/facts/latest", s.latestFacts)
}

func (s *Server) factSeries(c echo.Context) error {
	caller, err := mustCaller(c)
	if err != nil {
		return err
	}
	fields := map[string]string{}
	from, to := readRange(c, fields)
	if err := queryProblem("series", fields); err != nil {
		return err
	}
	q := app.SeriesQuery{UserID: caller.UserID, MonitorID: c.Param("id"), Keys: c.QueryParams()["key"], From: from, To: to,
		Bucket: monitor.Bucket(c.QueryParam("bucket")), Agg: monitor.Agg(c.QueryParam("agg")), Zone: c.QueryParam("tz")}
	a, err := s.cfg.Series.Series(c.Request().Context(), q)
	if err != nil {
		return asBadQuery(err)
	}
	out := SeriesAnswerJSON{From: a.From, To: a.To, Bucket: string(a.Bucket), Agg: string(a.Agg), TZ: a.Zone, Series: make([]SeriesJSON, 0, len(a.Series))}
	for _, sr := range a.Series {
		j := SeriesJSON{Key: sr.Key, Type: string(sr.Type), Unit: sr.Unit, Bucket: string(a.Bucket), Points: make([]PointJSON, 0, len(sr.Points))}
		if sr.Type != monitor.FactNumber {
			j.Bucket = "changes"
		}
		for _, p := range sr.Points {
			pj := PointJSON{T: p.T, Min: p.Min, Max: p.Max}
			switch {
			case sr.Type != monitor.FactNumber:
				pj.V = p.Value
			case p.V != nil:
				pj.V = *p.V
			}
			if sr.Type == monitor.FactNumber {
				n := p.N
				pj.N = &n
			}
			j.Points = append(j.Points, pj)
		}
		out.Series = append(out.Series, j)
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) latestFacts(c echo.Context) error {
	caller, err := mustCaller(c)
	if err != nil {
		return err
	}
	facts, err := s.cfg.Series.Latest(c.Request().Context(), caller.UserID, c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, LatestFactsJSON{Facts: factsJSON(facts, false)})
}

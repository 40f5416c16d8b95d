package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/vigilhq/vigil/domain/app"
	"github.com/vigilhq/vigil/domain/monitor"
)

// Stats is what the statistics handlers need; *app.StatsService satisfies it.
type Stats interface {
	MonitorStats(ctx context.Context, q app.StatsQuery) (app.MonitorStats, error)
}

// MonitorStatsJSON is GET /api/monitors/:id/stats.
type MonitorStatsJSON struct {
	From          time.Time           `json:"from"`
	To            time.Time           `json:"to"`
	Bucket        string              `json:"bucket"`
	TZ            string              `json:"tz"`
	Evaluations   EvaluationTotalJSON `json:"evaluations"`
	LatencyMS     PercentilesJSON     `json:"latency_ms"`
	FetchMS       PercentilesJSON     `json:"fetch_ms"`
	AI            AIUsageJSON         `json:"ai"`
	FactsReused   ReuseJSON           `json:"facts_reused"`
	Transitions   int                 `json:"transitions"`
	TimeInState   map[string]float64  `json:"time_in_state"` // seconds
	Timeline      []SegmentJSON       `json:"timeline"`
	Notifications map[string]int      `json:"notifications"`
	Buckets       []StatsBucketJSON   `json:"buckets"`
}

// EvaluationTotalJSON counts evaluations by outcome.
type EvaluationTotalJSON struct {
	Total       int      `json:"total"`
	Succeeded   int      `json:"succeeded"`
	Abstained   int      `json:"abstained"`
	Failed      int      `json:"failed"`
	SuccessRate *float64 `json:"success_rate"` // null without evaluations
}

// PercentilesJSON are the percentiles of a duration; null without values.
type PercentilesJSON struct {
	P50 *float64 `json:"p50"`
	P95 *float64 `json:"p95"`
	P99 *float64 `json:"p99"`
	N   int      `json:"n"`
}

// AIUsageJSON is what AI calls used and cost (US dollars).
type AIUsageJSON struct {
	InputTokens  int64   `json:"input_tokens"`
	OutputTokens int64   `json:"output_tokens"`
	Cost         float64 `json:"cost"`
}

// ReuseJSON is how often facts were reused from the evaluation before, with no AI call.
type ReuseJSON struct {
	Count int      `json:"count"`
	Rate  *float64 `json:"rate"`
}

// SegmentJSON is a stretch of the state timeline.
type SegmentJSON struct {
	State   string    `json:"state"`
	From    time.Time `json:"from"`
	To      time.Time `json:"to"`
	Seconds float64   `json:"seconds"`
}

// StatsBucketJSON is one bucket of a monitor's statistics.
type StatsBucketJSON struct {
	T            time.Time `json:"t"`
	Succeeded    int       `json:"succeeded"`
	Abstained    int       `json:"abstained"`
	Failed       int       `json:"failed"`
	InputTokens  int64     `json:"input_tokens"`
	OutputTokens int64     `json:"output_tokens"`
	Cost         float64   `json:"cost"`
	FactsReused  int       `json:"facts_reused"`
	Transitions  int       `json:"transitions"`
}

func (s *Server) registerStatsRoutes(e *echo.Echo) {
	e.GET("/api/monitors/:id/stats", s.monitorStats, s.authenticated)
}

func (s *Server) monitorStats(c echo.Context) error {
	caller, err := mustCaller(c)
	if err != nil {
		return err
	}
	fields := map[string]string{}
	from, to := readRange(c, fields)
	if err := queryProblem("stats", fields); err != nil {
		return err
	}
	st, err := s.cfg.Stats.MonitorStats(c.Request().Context(), app.StatsQuery{UserID: caller.UserID, MonitorID: c.Param("id"),
		From: from, To: to, Bucket: monitor.Bucket(c.QueryParam("bucket")), Zone: c.QueryParam("tz")})
	if err != nil {
		return asBadQuery(err)
	}
	return c.JSON(http.StatusOK, monitorStatsJSON(st))
}

func monitorStatsJSON(st app.MonitorStats) MonitorStatsJSON {
	t := st.Totals
	out := MonitorStatsJSON{From: st.From, To: st.To, Bucket: string(st.Bucket), TZ: st.Zone,
		Evaluations: EvaluationTotalJSON{Total: t.Total(), Succeeded: t.Succeeded, Abstained: t.Abstained, Failed: t.Failed},
		LatencyMS:   percentilesJSON(st.Latency), FetchMS: percentilesJSON(st.Fetch),
		AI:          AIUsageJSON{InputTokens: t.InputTokens, OutputTokens: t.OutputTokens, Cost: t.Cost},
		FactsReused: ReuseJSON{Count: t.FactsReused}, Transitions: t.Transitions,
		TimeInState: map[string]float64{}, Timeline: make([]SegmentJSON, 0, len(st.Timeline)), Notifications: st.Notifications,
		Buckets: make([]StatsBucketJSON, 0, len(st.Buckets))}
	if rate, ok := st.SuccessRate(); ok {
		out.Evaluations.SuccessRate = &rate
		reuse := float64(t.FactsReused) / float64(t.Total())
		out.FactsReused.Rate = &reuse
	}
	for state, d := range st.TimeInState {
		out.TimeInState[string(state)] = d.Seconds()
	}
	for _, seg := range st.Timeline {
		out.Timeline = append(out.Timeline, SegmentJSON{State: string(seg.State), From: seg.From, To: seg.To, Seconds: seg.Duration().Seconds()})
	}
	for _, b := range st.Buckets {
		out.Buckets = append(out.Buckets, StatsBucketJSON{T: b.Start, Succeeded: b.Succeeded, Abstained: b.Abstained, Failed: b.Failed,
			InputTokens: b.InputTokens, OutputTokens: b.OutputTokens, Cost: b.Cost, FactsReused: b.FactsReused, Transitions: b.Transitions})
	}
	if out.Notifications == nil {
		out.Notifications = map[string]int{}
	}
	return out
}

func percentilesJSON(p app.Percentiles) PercentilesJSON {
	out := PercentilesJSON{N: p.N}
	if p.N > 0 {
		out.P50, out.P95, out.P99 = &p.P50, &p.P95, &p.P99
	}
	return out
}

package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/vigilhq/vigil/domain/app"
	"github.com/vigilhq/vigil/domain/monitor"
)

// Backtests is what POST /api/monitors/:id/backtest needs; *app.BacktestService satisfies it.
type Backtests interface {
	Run(ctx context.Context, q app.BacktestQuery) (app.Backtest, error)
}

type backtestRequest struct {
	Prompt    *string             `json:"prompt"`
	Condition *string             `json:"condition"`
	Change    *monitor.ChangeRule `json:"change"`
	Confirm   *int                `json:"confirm"`
	From      *time.Time          `json:"from"`
	To        *time.Time          `json:"to"`
}

// BacktestJSON is what a proposed monitor would have done over the range.
type BacktestJSON struct {
	From        time.Time             `json:"from"`
	To          time.Time             `json:"to"`
	Spec        monitor.Spec          `json:"spec"`
	Confirm     int                   `json:"confirm"`
	Evaluations int                   `json:"evaluations"`
	Summary     string                `json:"summary"`
	Flips       []FlipJSON            `json:"flips"`
	Timeline    []SegmentJSON         `json:"timeline"`
	Triggers    []TriggerBacktestJSON `json:"triggers"`
	WouldAlert  int                   `json:"would_alert"`
	Actual      ActualJSON            `json:"actual"`
}

// FlipJSON is a state change the replay finds.
type FlipJSON struct {
	T    time.Time `json:"t"`
	From string    `json:"from"`
	To   string    `json:"to"`
}

// TriggerBacktestJSON is what one trigger would have sent, and sent.
type TriggerBacktestJSON struct {
	TriggerID    string      `json:"trigger_id"`
	Condition    string      `json:"condition"`
	Frequency    string      `json:"frequency"`
	Cooldown     string      `json:"cooldown"`
	WouldFire    int         `json:"would_fire"`
	FiredAt      []time.Time `json:"fired_at"`
	ActuallySent int         `json:"actually_sent"`
}

// ActualJSON is what the monitor really did over the range.
type ActualJSON struct {
	Flips  int `json:"flips"`
	Alerts int `json:"alerts"`
}

func (s *Server) registerBacktestRoutes(e *echo.Echo) {
	e.POST("/api/monitors/:id/backtest", s.backtest, s.authenticated)
}

func (s *Server) backtest(c echo.Context) error {
	caller, err := mustCaller(c)
	if err != nil {
		return err
	}
	var req backtestRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	b, err := s.cfg.Backtests.Run(c.Request().Context(), app.BacktestQuery{UserID: caller.UserID, MonitorID: c.Param("id"),
		Prompt: req.Prompt, Condition: req.Condition, Change: req.Change, Confirm: req.Confirm, From: req.From, To: req.To})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, backtestJSON(b))
}

func backtestJSON(b app.Backtest) BacktestJSON {
	out := BacktestJSON{From: b.From, To: b.To, Spec: b.Spec, Confirm: b.Confirm, Evaluations: b.Evaluations, Summary: b.Summary(),
		Flips: make([]FlipJSON, 0, len(b.Flips)), Timeline: make([]SegmentJSON, 0, len(b.Timeline)),
		Triggers: make([]TriggerBacktestJSON, 0, len(b.Triggers)), WouldAlert: b.WouldAlert,
		Actual: ActualJSON{Flips: b.ActualFlips, Alerts: b.ActualAlerts}}
	if out.Spec.Facts == nil {
		out.Spec.Facts = []monitor.FactSpec{}
	}
	for _, f := range b.Flips {
		out.Flips = append(out.Flips, FlipJSON{T: f.At, From: string(f.From), To: string(f.To)})
	}
	for _, seg := range b.Timeline {
		out.Timeline = append(out.Timeline, SegmentJSON{State: string(seg.State), From: seg.From, To: seg.To, Seconds: seg.Duration().Seconds()})
	}
	for _, t := range b.Triggers {
		fired := t.WouldFire
		if fired == nil {
			fired = []time.Time{}
		}
		out.Triggers = append(out.Triggers, TriggerBacktestJSON{TriggerID: t.Trigger.ID, Condition: string(t.Trigger.Condition),
			Frequency: string(t.Trigger.Frequency), Cooldown: formatInterval(t.Trigger.Cooldown), WouldFire: len(t.WouldFire),
			FiredAt: fired, ActuallySent: t.ActuallySent})
	}
	return out
}

package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/trigger"
)

// Triggers is what the /api/monitors/:id/triggers handlers need; *app.TriggerService
// satisfies it. Another user's monitor, trigger or action is ENOTFOUND.
type Triggers interface {
	List(ctx context.Context, userID, monitorID string) ([]trigger.Trigger, error)
	Get(ctx context.Context, userID, monitorID, id string) (trigger.Trigger, error)
	Create(ctx context.Context, userID, monitorID string, spec trigger.Spec) (trigger.Trigger, error)
	Update(ctx context.Context, userID, monitorID, id string, c trigger.Changes) (trigger.Trigger, error)
	Delete(ctx context.Context, userID, monitorID, id string) error
}

func (s *Server) registerTriggerRoutes(e *echo.Echo) {
	g := e.Group("/api/monitors/:id/triggers", s.authenticated)
	g.GET("", s.listTriggers)
	g.POST("", s.createTrigger)
	g.GET("/:trigger_id", s.getTrigger)
	g.PATCH("/:trigger_id", s.patchTrigger)
	g.DELETE("/:trigger_id", s.deleteTrigger)
}

// TriggerJSON is a trigger of a monitor.
type TriggerJSON struct {
	ID          string     `json:"id"`
	MonitorID   string     `json:"monitor_id"`
	ActionID    string     `json:"action_id"`
	Condition   string     `json:"condition"`
	Frequency   string     `json:"frequency"`
	Cooldown    string     `json:"cooldown"`
	Enabled     bool       `json:"enabled"`
	FiredCount  int        `json:"fired_count"`
	LastFiredAt *time.Time `json:"last_fired_at"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
}

// TriggerListJSON is every trigger of a monitor (at most app.TriggersPerMonitorMax).
type TriggerListJSON struct {
	Triggers []TriggerJSON `json:"triggers"`
}

// triggerRequest is the body of trigger create and update, and an element of a monitor
// create's triggers.
type triggerRequest struct {
	ActionID  *string `json:"action_id"`
	Condition *string `json:"condition"`
	Frequency *string `json:"frequency"`
	Cooldown  *string `json:"cooldown"`
	Enabled   *bool   `json:"enabled"`
}

func triggerJSON(t trigger.Trigger) TriggerJSON {
	return TriggerJSON{ID: t.ID, MonitorID: t.MonitorID, ActionID: t.ActionID, Condition: string(t.Condition),
		Frequency: string(t.Frequency), Cooldown: formatInterval(t.Cooldown), Enabled: t.Enabled, FiredCount: t.FiredCount,
		LastFiredAt: t.LastFiredAt, CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt}
}

// spec reads a new trigger: condition is required; frequency defaults to every_time,
// cooldown to none and enabled to true. prefix names the fields in errors.
func (r triggerRequest) spec(prefix string) (trigger.Spec, error) {
	sp := trigger.Spec{ActionID: deref(r.ActionID), Condition: trigger.Condition(deref(r.Condition)),
		Frequency: trigger.EveryTime, Enabled: true}
	if r.Condition == nil {
		return sp, triggerFieldError(prefix+"condition", "is required")
	}
	if r.Frequency != nil {
		sp.Frequency = trigger.Frequency(*r.Frequency)
	}
	if r.Enabled != nil {
		sp.Enabled = *r.Enabled
	}
	if r.Cooldown != nil {
		d, err := parseCooldown(*r.Cooldown, prefix)
		if err != nil {
			return sp, err
		}
		sp.Cooldown = d
	}
	return sp, nil
}

func parseCooldown(raw, prefix string) (time.Duration, error) {
	if raw == "0" || raw == "" {
		return 0, nil
	}
	d, err := parseInterval(raw)
	if err != nil {
		return 0, triggerFieldError(prefix+"cooldown", `must be a duration such as "30m", "6h" or "1d", or "0" for none`)
	}
	return d, nil
}

func triggerFieldError(field, problem string) error {
	return &domain.Error{Code: domain.EINVALID, Message: "The trigger has invalid fields.", Fields: map[string]string{field: problem}}
}

func (s *Server) listTriggers(c echo.Context) error {
	caller, err := mustCaller(c)
	if err != nil {
		return err
	}
	list, err := s.cfg.Triggers.List(c.Request().Context(), caller.UserID, c.Param("id"))
	if err != nil {
		return err
	}
	out := TriggerListJSON{Triggers: make([]TriggerJSON, 0, len(list))}
	for _, t := range list {
		out.Triggers = append(out.Triggers, triggerJSON(t))
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) getTrigger(c echo.Context) error {
	caller, err := mustCaller(c)
	if err != nil {
		return err
	}
	t, err := s.cfg.Triggers.Get(c.Request().Context(), caller.UserID, c.Param("id"), c.Param("trigger_id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, triggerJSON(t))
}

func (s *Server) createTrigger(c echo.Context) error {
	caller, err := mustCaller(c)
	if err != nil {
		return err
	}
	var req triggerRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.ActionID == nil {
		return triggerFieldError("action_id", "is required")
	}
	sp, err := req.spec("")
	if err != nil {
		return err
	}
	t, err := s.cfg.Triggers.Create(c.Request().Context(), caller.UserID, c.Param("id"), sp)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, fmt.Sprintf("/api/monitors/%s/triggers/%s", t.MonitorID, t.ID))
	return c.JSON(http.StatusCreated, triggerJSON(t))
}

func (s *Server) patchTrigger(c echo.Context) error {
	caller, err := mustCaller(c)
	if err != nil {
		return err
	}
	var req triggerRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	ch := trigger.Changes{ActionID: req.ActionID, Enabled: req.Enabled}
	if req.Condition != nil {
		cond := trigger.Condition(*req.Condition)
		ch.Condition = &cond
	}
	if req.Frequency != nil {
		f := trigger.Frequency(*req.Frequency)
		ch.Frequency = &f
	}
	if req.Cooldown != nil {
		d, err := parseCooldown(*req.Cooldown, "")
		if err != nil {
			return err
		}
		ch.Cooldown = &d
	}
	t, err := s.cfg.Triggers.Update(c.Request().Context(), caller.UserID, c.Param("id"), c.Param("trigger_id"), ch)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, triggerJSON(t))
}

func (s *Server) deleteTrigger(c echo.Context) error {
	caller, err := mustCaller(c)
	if err != nil {
		return err
	}
	if err := s.cfg.Triggers.Delete(c.Request().Context(), caller.UserID, c.Param("id"), c.Param("trigger_id")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

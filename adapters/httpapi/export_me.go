package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/vigilhq/vigil/domain/app"
	"github.com/vigilhq/vigil/domain/monitor"
)

// exportLine is one line of GET /api/me/export: what it is, the monitor it belongs to, and
// the object in the API's own shape.
type exportLine struct {
	Type      string `json:"type"`
	MonitorID string `json:"monitor_id,omitempty"`
	Data      any    `json:"data"`
}

// exportPage is how many monitors or notifications are read at a time.
const exportPage = 100

func (s *Server) registerAccountExport(e *echo.Echo) {
	e.GET("/api/me/export", s.exportMe, s.authenticated)
}

// exportMe streams everything the account owns as NDJSON, for data portability: the
// account, its API keys (never their secrets), actions (webhook secrets left out, as
// everywhere in the API), monitors with their triggers, evaluations and facts, and every
// notification. Each part is read a page or a row at a time.
func (s *Server) exportMe(c echo.Context) error {
	caller, err := mustCaller(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	user, err := s.cfg.Accounts.GetMe(ctx, caller.UserID)
	if err != nil {
		return err
	}
	w := c.Response()
	w.Header().Set(echo.HeaderContentType, "application/x-ndjson")
	w.Header().Set(echo.HeaderContentDisposition, `attachment; filename="vigil-account.ndjson"`)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	rows := 0
	line := func(typ, monitorID string, v any) error {
		rows++
		if rows%exportFlushEvery == 0 {
			w.Flush()
		}
		return enc.Encode(exportLine{Type: typ, MonitorID: monitorID, Data: v})
	}
	if err := s.exportAccount(c, caller.UserID, line, userJSON(user)); err != nil {
		s.log(c).Error().Err(err).Int("rows", rows).Msg("account export failed")
		return nil
	}
	w.Flush()
	return nil
}

func (s *Server) exportAccount(c echo.Context, userID string, line func(typ, monitorID string, v any) error, user UserJSON) error {
	ctx := c.Request().Context()
	if err := line("user", "", user); err != nil {
		return err
	}
	if s.cfg.APIKeyManager != nil {
		keys, err := s.cfg.APIKeyManager.ListAPIKeys(ctx, userID)
		if err != nil {
			return fmt.Errorf("api keys: %w", err)
		}
		for _, k := range keys {
			if err := line("api_key", "", apiKeyJSON(k)); err != nil {
				return err
			}
		}
	}
	if s.cfg.Actions != nil {
		actions, err := s.cfg.Actions.List(ctx, userID)
		if err != nil {
			return fmt.Errorf("actions: %w", err)
		}
		for _, a := range actions {
			clean := *a
			clean.Secret = "" // shown once, when made; never again
			if err := line("action", "", actionJSON(&clean)); err != nil {
				return err
			}
		}
	}
	q := app.MonitorQuery{UserID: userID, Sort: app.SortCreatedAt, Limit: exportPage}
	for {
		page, err := s.cfg.Monitors.List(ctx, q)
		if err != nil {
			return fmt.Errorf("monitors: %w", err)
		}
		for _, m := range page.Monitors {
			if err := s.exportOneMonitor(c, userID, m, line); err != nil {
				return err
			}
		}
		if page.Next == nil {
			break
		}
		q.After = page.Next
	}
	nq := app.NotificationQuery{UserID: userID, Limit: exportPage}
	for {
		list, next, err := s.cfg.Notifications.List(ctx, nq)
		if err != nil {
			return fmt.Errorf("notifications: %w", err)
		}
		for _, n := range list {
			if err := line("notification", n.MonitorID, notificationJSON(n)); err != nil {
				return err
			}
		}
		if next == nil {
			return nil
		}
		nq.Before = next
	}
}

func (s *Server) exportOneMonitor(c echo.Context, userID string, m *monitor.Monitor, line func(typ, monitorID string, v any) error) error {
	ctx := c.Request().Context()
	if err := line("monitor", m.ID, monitorJSON(m)); err != nil {
		return err
	}
	if s.cfg.Triggers != nil {
		triggers, err := s.cfg.Triggers.List(ctx, userID, m.ID)
		if err != nil {
			return fmt.Errorf("triggers of %s: %w", m.ID, err)
		}
		for _, t := range triggers {
			if err := line("trigger", m.ID, triggerJSON(t)); err != nil {
				return err
			}
		}
	}
	sink := app.ExportSink{
		Evaluation: func(e app.EvaluationRecord) error { return line("evaluation", m.ID, evaluationJSON(e)) },
		Fact:       func(f monitor.Fact) error { return line("fact", m.ID, factsJSON([]monitor.Fact{f}, false)[0]) },
	}
	for _, what := range []app.ExportKind{app.ExportEvaluations, app.ExportFacts} {
		q, err := s.cfg.Exports.Prepare(ctx, app.ExportQuery{UserID: userID, MonitorID: m.ID, What: what})
		if err != nil {
			return fmt.Errorf("export %s of %s: %w", what, m.ID, err)
		}
		if err := s.cfg.Exports.Export(ctx, q, sink); err != nil {
			return err
		}
	}
	return nil
}

package httpapi

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/vigilhq/vigil/domain/app"
	"github.com/vigilhq/vigil/domain/monitor"
)

// Exports is what the export handlers need; *app.ExportService satisfies it.
type Exports interface {
	Prepare(ctx context.Context, q app.ExportQuery) (app.ExportQuery, error)
	Export(ctx context.Context, q app.ExportQuery, sink app.ExportSink) error
}

// exportFlushEvery is how many rows are written between flushes: the client sees the
// download progress, and nothing piles up in buffers.
const exportFlushEvery = 1000

func (s *Server) registerExportRoutes(e *echo.Echo) {
	e.GET("/api/monitors/:id/export", s.exportMonitor, s.authenticated)
}

func (s *Server) exportMonitor(c echo.Context) error {
	caller, err := mustCaller(c)
	if err != nil {
		return err
	}
	fields := map[string]string{}
	from, to := readRange(c, fields)
	format := c.QueryParam("format")
	switch format {
	case "":
		format = "csv"
	case "csv", "ndjson":
	default:
		fields["format"] = "must be csv or ndjson"
	}
	if err := queryProblem("export", fields); err != nil {
		return err
	}
	ctx := c.Request().Context()
	q, err := s.cfg.Exports.Prepare(ctx, app.ExportQuery{UserID: caller.UserID, MonitorID: c.Param("id"),
		What: app.ExportKind(c.QueryParam("what")), From: from, To: to})
	if err != nil {
		return asBadQuery(err)
	}
	w := c.Response()
	w.Header().Set(echo.HeaderContentDisposition, fmt.Sprintf(`attachment; filename="%s"`, app.ExportFileName(q.MonitorID, q.What, format)))
	w.Header().Set("Cache-Control", "no-store")
	var sink app.ExportSink
	var rows int
	var done func() error
	if format == "csv" {
		w.Header().Set(echo.HeaderContentType, "text/csv; charset=utf-8")
		sink, done = csvSink(w, q.What, &rows)
	} else {
		w.Header().Set(echo.HeaderContentType, "application/x-ndjson")
		sink, done = ndjsonSink(w, &rows)
	}
	w.WriteHeader(http.StatusOK)
	err = s.cfg.Exports.Export(ctx, q, sink)
	if err == nil {
		err = done()
	}
	if err != nil {
		// The status is sent: the client sees a cut download (no final newline, or a
		// chunked body that ends early), and the log says why.
		s.log(c).Error().Err(err).Int("rows", rows).Str("monitor", q.MonitorID).Msg("export failed")
		return nil
	}
	return nil
}

// csvSink writes rows as CSV with a header line, flushing as it goes.
func csvSink(w *echo.Response, what app.ExportKind, rows *int) (app.ExportSink, func() error) {
	cw := csv.NewWriter(w)
	header := map[app.ExportKind][]string{
		app.ExportFacts: {"observed_at", "key", "value", "unit", "evidence", "confidence"},
		app.ExportEvaluations: {"id", "scheduled_for", "started_at", "finished_at", "status", "state", "previous_state", "changed",
			"explanation", "provider", "model", "input_tokens", "output_tokens", "cost", "latency_ms", "error", "facts_reused"},
		app.ExportNotifications: {"id", "created_at", "kind", "channel", "recipient", "status", "from", "to", "attempts", "last_error",
			"sent_at", "trigger_id", "action_id", "evaluation_id"},
	}[what]
	started := false
	write := func(rec []string) error {
		if !started {
			started = true
			if err := cw.Write(header); err != nil {
				return err
			}
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
		*rows++
		if *rows%exportFlushEvery == 0 {
			cw.Flush()
			w.Flush()
		}
		return cw.Error()
	}
	sink := app.ExportSink{
		Fact: func(f monitor.Fact) error {
			conf := ""
			if f.Confidence > 0 {
				conf = strconv.FormatFloat(f.Confidence, 'f', -1, 32)
			}
			return write([]string{ts(f.ObservedAt), f.Key, csvValue(f.Value()), f.Unit, f.Evidence, conf})
		},
		Evaluation: func(e app.EvaluationRecord) error {
			prev := ""
			if e.PreviousState != nil {
				prev = string(*e.PreviousState)
			}
			return write([]string{e.ID, ts(e.ScheduledFor), tsp(e.StartedAt), tsp(e.FinishedAt), string(e.Status), string(e.State), prev,
				strconv.FormatBool(e.Changed), e.Explanation, e.Provider, e.Model, strconv.Itoa(e.InputTokens), strconv.Itoa(e.OutputTokens),
				strconv.FormatFloat(e.Cost, 'f', -1, 64), strconv.Itoa(e.LatencyMS), e.Error, strconv.FormatBool(e.FactsReused)})
		},
		Notification: func(n app.NotificationRecord) error {
			return write([]string{n.ID, ts(n.CreatedAt), n.Kind, n.Channel, n.Recipient, n.Status, string(n.From), string(n.To),
				strconv.Itoa(n.Attempts), n.LastError, tsp(n.SentAt), n.TriggerID, n.ActionID, n.EvaluationID})
		},
	}
	return sink, func() error {
		if !started {
			if err := cw.Write(header); err != nil {
				return err
			}
		}
		cw.Flush()
		w.Flush()
		return cw.Error()
	}
}

// ndjsonSink writes one JSON object per line, in the API's shapes.
func ndjsonSink(w *echo.Response, rows *int) (app.ExportSink, func() error) {
	enc := json.NewEncoder(w)
	write := func(v any) error {
		if err := enc.Encode(v); err != nil {
			return err
		}
		*rows++
		if *rows%exportFlushEvery == 0 {
			w.Flush()
		}
		return nil
	}
	sink := app.ExportSink{
		Fact:         func(f monitor.Fact) error { return write(factsJSON([]monitor.Fact{f}, false)[0]) },
		Evaluation:   func(e app.EvaluationRecord) error { return write(evaluationJSON(e)) },
		Notification: func(n app.NotificationRecord) error { return write(notificationJSON(n)) },
	}
	return sink, func() error { w.Flush(); return nil }
}

func ts(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func tsp(t *time.Time) string {
	if t == nil {
		return ""
	}
	return ts(*t)
}

func csvValue(v any) string {
	switch v := v.(type) {
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	case string:
		return v
	}
	return ""
}

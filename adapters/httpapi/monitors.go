package httpapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/vigilhq/vigil/adapters/ratelimit"
	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/app"
	"github.com/vigilhq/vigil/domain/monitor"
	"github.com/vigilhq/vigil/domain/trigger"
)

// Monitors is what the /api/monitors handlers need; *app.MonitorService satisfies it. Every
// method is scoped to the user: another user's monitor is ENOTFOUND.
type Monitors interface {
	Create(ctx context.Context, d monitor.Draft, plan app.TriggerPlan) (*monitor.Monitor, error)
	Get(ctx context.Context, userID, id string) (app.MonitorDetail, error)
	List(ctx context.Context, q app.MonitorQuery) (app.MonitorPage, error)
	Update(ctx context.Context, userID, id string, c monitor.Changes, expectedVersion int64) (*monitor.Monitor, error)
	Delete(ctx context.Context, userID, id string) error
	History(ctx context.Context, q app.HistoryQuery) ([]app.EvaluationRecord, *app.HistoryCursor, error)
	EvaluateNow(ctx context.Context, userID, id string) error
	Validate(ctx context.Context, userID, id string, p app.Proposal) (app.Validation, error)
}

// Page sizes of lists.
const (
	PageSizeDefault = 20
	PageSizeMax     = 100
)

// registerMonitorRoutes serves /api/monitors. The routes that cost AI calls and fetches
// (create, validate, evaluate) have limits of their own besides the general one.
func (s *Server) registerMonitorRoutes(e *echo.Echo) {
	g := e.Group("/api/monitors", s.authenticated)
	create := s.costLimit(func(r ratelimit.Rules) ratelimit.Rule { return r.CreateMonitor }, UserRateKey)
	validate := s.costLimit(func(r ratelimit.Rules) ratelimit.Rule { return r.ValidateMonitor }, UserRateKey)
	evaluate := s.costLimit(func(r ratelimit.Rules) ratelimit.Rule { return r.EvaluateNow }, CallerRateKey)
	g.POST("", s.createMonitor, create...)
	g.GET("", s.listMonitors)
	g.POST("/validate", s.validateMonitor, validate...)
	g.GET("/:id", s.getMonitor)
	g.PUT("/:id", s.putMonitor)
	g.PATCH("/:id", s.patchMonitor)
	g.DELETE("/:id", s.deleteMonitor)
	g.POST("/:id/validate", s.validateMonitor, validate...)
	g.GET("/:id/history", s.monitorHistory)
	g.POST("/:id/evaluate", s.evaluateMonitor, evaluate...)
}

// MonitorJSON is a monitor as the API shows it.
type MonitorJSON struct {
	ID                  string            `json:"id"`
	Name                string            `json:"name"`
	Prompt              string            `json:"prompt"`
	Kind                string            `json:"kind"`
	Spec                monitor.Spec      `json:"spec"`
	ClassifiedBy        ClassifiedByJSON  `json:"classified_by"`
	SourceURL           *string           `json:"source_url"`
	SourceFormat        string            `json:"source_format"`
	Render              bool              `json:"render"`
	Selectors           map[string]string `json:"selectors"`
	AutoRepair          bool              `json:"auto_repair"`
	ExtractionMisses    int               `json:"extraction_misses"`
	Repair              *monitor.Repair   `json:"repair"`
	Interval            string            `json:"interval"`
	Cron                *string           `json:"cron"`
	Timezone            string            `json:"timezone"`
	Confirm             int               `json:"confirm"`
	Status              string            `json:"status"`
	State               string            `json:"state"`
	StateChangedAt      *time.Time        `json:"state_changed_at"`
	LastEvaluatedAt     *time.Time        `json:"last_evaluated_at"`
	NextRunAt           time.Time         `json:"next_run_at"`
	ConsecutiveFailures int               `json:"consecutive_failures"`
	LastError           *string           `json:"last_error"`
	Version             int64             `json:"version"`
	CreatedAt           time.Time         `json:"created_at"`
	UpdatedAt           time.Time         `json:"updated_at"`
}

// ClassifiedByJSON names who classified a prompt.
type ClassifiedByJSON struct {
	Provider string `json:"provider"`
	Model    string `json:"model"`
}

// MonitorCreatedJSON is the answer to a create: the monitor and the triggers it got.
type MonitorCreatedJSON struct {
	MonitorJSON
	Triggers []TriggerJSON `json:"triggers"`
}

// MonitorDetailJSON is GET /api/monitors/:id.
type MonitorDetailJSON struct {
	MonitorJSON
	LastEvaluation *EvaluationJSON `json:"last_evaluation"`
	Facts          []FactJSON      `json:"facts"`
	Triggers       []TriggerJSON   `json:"triggers"`
}

// EvaluationJSON is one evaluation.
type EvaluationJSON struct {
	ID            string     `json:"id"`
	ScheduledFor  time.Time  `json:"scheduled_for"`
	StartedAt     *time.Time `json:"started_at"`
	FinishedAt    *time.Time `json:"finished_at"`
	Status        string     `json:"status"`
	State         string     `json:"state"`
	PreviousState *string    `json:"previous_state"`
	Changed       bool       `json:"changed"`
	Explanation   string     `json:"explanation"`
	Provider      string     `json:"provider"`
	Model         string     `json:"model"`
	InputTokens   int        `json:"input_tokens"`
	OutputTokens  int        `json:"output_tokens"`
	Cost          float64    `json:"cost"`
	LatencyMS     int        `json:"latency_ms"`
	Error         *string    `json:"error"`
	FactsReused   bool       `json:"facts_reused"`
	Facts         []FactJSON `json:"facts"`
	// Miss and Repair: a fact found before was not found on the changed page, and the
	// selector repair tried for it.
	Miss   *MissJSON       `json:"miss,omitempty"`
	Repair *monitor.Repair `json:"repair,omitempty"`
}

// MissJSON is a fact found before that an evaluation did not find.
type MissJSON struct {
	Fact     string   `json:"fact"`
	Selector string   `json:"selector,omitempty"`
	LastGood FactJSON `json:"last_good"`
	Snippet  string   `json:"snippet"`
}

// FactJSON is one fact; value is a number, a string or a boolean.
type FactJSON struct {
	Key        string    `json:"key"`
	Value      any       `json:"value"`
	Unit       string    `json:"unit"`
	ObservedAt time.Time `json:"observed_at"`
	Evidence   *string   `json:"evidence,omitempty"`
	// Locator is where the value was found (a CSS path, a JSON pointer): what a selector
	// for it would be.
	Locator    *string  `json:"locator,omitempty"`
	Confidence *float64 `json:"confidence,omitempty"`
}

// MonitorListJSON is a page of monitors.
type MonitorListJSON struct {
	Monitors   []MonitorJSON `json:"monitors"`
	NextCursor *string       `json:"next_cursor"`
}

// HistoryJSON is a page of evaluations.
type HistoryJSON struct {
	Evaluations []EvaluationJSON `json:"evaluations"`
	NextCursor  *string          `json:"next_cursor"`
}

// ValidationJSON is what validate returns.
type ValidationJSON struct {
	Spec         monitor.Spec     `json:"spec"`
	ClassifiedBy ClassifiedByJSON `json:"classified_by"`
	Facts        []FactJSON       `json:"facts"`
	Verdict      *VerdictJSON     `json:"verdict"`
	Warnings     []string         `json:"warnings"`
	// Backtest is, for an existing monitor, what this spec would have done over its last
	// 30 days of stored facts.
	Backtest string `json:"backtest,omitempty"`
}

// VerdictJSON is a judgement of the current state.
type VerdictJSON struct {
	State       string  `json:"state"`
	Confidence  float64 `json:"confidence"`
	Explanation string  `json:"explanation"`
}

// monitorRequest is the body of create, PUT and PATCH. Pointers tell absent from empty.
type monitorRequest struct {
	Prompt    *string `json:"prompt"`
	Name      *string `json:"name"`
	SourceURL *string `json:"source_url"`
	Interval  *string `json:"interval"`
	Cron      *string `json:"cron"`
	Timezone  *string `json:"timezone"`
	Status    *string `json:"status"`
	Confirm   *int    `json:"confirm"`
	// SourceFormat is auto, json, html, text or rss.
	SourceFormat *string `json:"source_format"`
	// Render reads the source in a browser, for pages drawn by JavaScript.
	Render *bool `json:"render"`
	// Selector says where the values are: one selector for the main fact, or an object
	// of selectors by fact name; null or {} removes the selectors given before.
	Selector json.RawMessage `json:"selector"`
	// AutoRepair applies a verified selector repair instead of only proposing it.
	AutoRepair *bool `json:"auto_repair"`
	// Triggers, on create only: absent gives the default trigger, [] none.
	Triggers *[]triggerRequest `json:"triggers"`
}

func (s *Server) createMonitor(c echo.Context) error {
	caller, err := mustCaller(c)
	if err != nil {
		return err
	}
	var req monitorRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.Status != nil {
		return fieldError("status", "is set with PATCH once the monitor exists")
	}
	if req.Prompt == nil {
		return fieldError("prompt", "is required")
	}
	d := monitor.Draft{UserID: caller.UserID, Prompt: *req.Prompt, Name: deref(req.Name), SourceURL: deref(req.SourceURL),
		Cron: deref(req.Cron), Timezone: deref(req.Timezone), SourceFormat: monitor.SourceFormat(deref(req.SourceFormat)),
		Render: req.Render != nil && *req.Render, AutoRepair: req.AutoRepair != nil && *req.AutoRepair}
	if d.Selectors, err = parseSelectors(req.Selector); err != nil {
		return err
	}
	if req.Confirm != nil {
		if d.Confirm = *req.Confirm; d.Confirm == 0 {
			d.Confirm = -1 // an explicit 0 is invalid, not the default
		}
	}
	if req.Interval != nil {
		if d.Interval, err = parseInterval(*req.Interval); err != nil {
			return err
		}
	}
	plan := app.TriggerPlan{Default: req.Triggers == nil}
	if req.Triggers != nil {
		for i, tr := range *req.Triggers {
			prefix := fmt.Sprintf("triggers[%d].", i)
			if tr.ActionID == nil {
				return triggerFieldError(prefix+"action_id", "is required")
			}
			sp, err := tr.spec(prefix)
			if err != nil {
				return err
			}
			plan.Specs = append(plan.Specs, sp)
		}
	}
	m, err := s.cfg.Monitors.Create(c.Request().Context(), d, plan)
	if err != nil {
		return err
	}
	var triggers []trigger.Trigger
	if s.cfg.Triggers != nil {
		if triggers, err = s.cfg.Triggers.List(c.Request().Context(), caller.UserID, m.ID); err != nil {
			return err
		}
	}
	out := MonitorCreatedJSON{MonitorJSON: monitorJSON(m), Triggers: make([]TriggerJSON, 0, len(triggers))}
	for _, t := range triggers {
		out.Triggers = append(out.Triggers, triggerJSON(t))
	}
	c.Response().Header().Set(echo.HeaderLocation, "/api/monitors/"+m.ID)
	setETag(c, m.Version)
	return c.JSON(http.StatusCreated, out)
}

func (s *Server) listMonitors(c echo.Context) error {
	caller, err := mustCaller(c)
	if err != nil {
		return err
	}
	q := app.MonitorQuery{UserID: caller.UserID, Text: strings.TrimSpace(c.QueryParam("q")), Sort: app.SortCreatedAt, Desc: true}
	fields := map[string]string{}
	if v := c.QueryParam("status"); v != "" {
		if v != string(monitor.StatusActive) && v != string(monitor.StatusPaused) && v != string(monitor.StatusError) {
			fields["status"] = "must be active, paused or error"
		}
		q.Status = monitor.Status(v)
	}
	if v := c.QueryParam("kind"); v != "" {
		if v != string(monitor.KindCurrentState) && v != string(monitor.KindHistoricalChange) {
			fields["kind"] = "must be current_state or historical_change"
		}
		q.Kind = monitor.Kind(v)
	}
	if v := c.QueryParam("state"); v != "" {
		if v != string(monitor.StateUnknown) && v != string(monitor.StateActive) && v != string(monitor.StateInactive) {
			fields["state"] = "must be unknown, active or inactive"
		}
		q.State = monitor.State(v)
	}
	if v := c.QueryParam("sort"); v != "" {
		name := strings.TrimLeft(v, "+-")
		switch name {
		case app.SortCreatedAt, app.SortName, app.SortLastEvaluatedAt, app.SortStateChangedAt:
			q.Sort, q.Desc = name, strings.HasPrefix(v, "-")
		default:
			fields["sort"] = "must be created_at, name, last_evaluated_at or state_changed_at, with - for descending"
		}
	}
	limit, ok := pageSize(c.QueryParam("limit"))
	if !ok {
		fields["limit"] = fmt.Sprintf("must be a whole number from 1 to %d", PageSizeMax)
	}
	q.Limit = limit
	if v := c.QueryParam("cursor"); v != "" {
		var cur listCursor
		if err := decodeCursor(v, &cur); err != nil || cur.Sort != q.Sort || cur.Desc != q.Desc ||
			uuid.Validate(cur.ID) != nil || textProblem(cur.Value) != "" {
			fields["cursor"] = "is not a cursor of this listing; start again without it"
		} else {
			q.After = &app.MonitorCursor{Value: cur.Value, ID: cur.ID}
		}
	}
	if len(fields) > 0 {
		return &domain.Error{Code: domain.EINVALID, Message: "The query has invalid parameters.", Fields: fields}
	}
	page, err := s.cfg.Monitors.List(c.Request().Context(), q)
	if errors.Is(err, domain.ErrInvalid) && q.After != nil {
		// The one value of the query the database reads as typed is the cursor's (a time,
		// for the time orders): one it cannot read is a cursor this API did not make.
		return &domain.Error{Code: domain.EINVALID, Message: "The query has invalid parameters.",
			Fields: map[string]string{"cursor": "is not a cursor of this listing; start again without it"}, Err: err}
	}
	if err != nil {
		return err
	}
	out := MonitorListJSON{Monitors: make([]MonitorJSON, 0, len(page.Monitors))}
	for _, m := range page.Monitors {
		out.Monitors = append(out.Monitors, monitorJSON(m))
	}
	if page.Next != nil {
		cur := encodeCursor(listCursor{Sort: q.Sort, Desc: q.Desc, Value: page.Next.Value, ID: page.Next.ID})
		out.NextCursor = &cur
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) getMonitor(c echo.Context) error {
	caller, err := mustCaller(c)
	if err != nil {
		return err
	}
	d, err := s.cfg.Monitors.Get(c.Request().Context(), caller.UserID, c.Param("id"))
	if err != nil {
		return err
	}
	out := MonitorDetailJSON{MonitorJSON: monitorJSON(d.Monitor), Facts: factsJSON(d.LatestFacts, false), Triggers: []TriggerJSON{}}
	if d.LastEvaluation != nil {
		e := evaluationJSON(*d.LastEvaluation)
		out.LastEvaluation = &e
	}
	for _, t := range d.Triggers {
		out.Triggers = append(out.Triggers, triggerJSON(t))
	}
	setETag(c, d.Monitor.Version)
	return c.JSON(http.StatusOK, out)
}

// putMonitor replaces the editable settings: fields left out take their defaults.
func (s *Server) putMonitor(c echo.Context) error {
	var req monitorRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.Prompt == nil {
		return fieldError("prompt", "is required")
	}
	empty := ""
	for _, f := range []**string{&req.Name, &req.SourceURL, &req.Cron, &req.Timezone} {
		if *f == nil {
			*f = &empty
		}
	}
	if req.Interval == nil && *req.Cron == "" {
		hour := "1h"
		req.Interval = &hour
	}
	return s.updateMonitor(c, req)
}

func (s *Server) patchMonitor(c echo.Context) error {
	var req monitorRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	return s.updateMonitor(c, req)
}

func (s *Server) updateMonitor(c echo.Context, req monitorRequest) error {
	caller, err := mustCaller(c)
	if err != nil {
		return err
	}
	if req.Triggers != nil {
		return fieldError("triggers", "are changed at /api/monitors/{id}/triggers once the monitor exists")
	}
	version, err := ifMatch(c)
	if err != nil {
		return err
	}
	ch := monitor.Changes{Name: req.Name, Prompt: req.Prompt, SourceURL: req.SourceURL, Cron: req.Cron, Timezone: req.Timezone, Confirm: req.Confirm}
	if req.SourceFormat != nil {
		f := monitor.SourceFormat(*req.SourceFormat)
		ch.SourceFormat = &f
	}
	ch.Render, ch.AutoRepair = req.Render, req.AutoRepair
	if req.Selector != nil {
		sel, err := parseSelectors(req.Selector)
		if err != nil {
			return err
		}
		ch.Selectors = &sel // null too: Draft reads it as removing them
	}
	if req.Interval != nil {
		iv, err := parseInterval(*req.Interval)
		if err != nil {
			return err
		}
		ch.Interval = &iv
	}
	if req.Status != nil {
		st := monitor.Status(*req.Status)
		ch.Status = &st
	}
	m, err := s.cfg.Monitors.Update(c.Request().Context(), caller.UserID, c.Param("id"), ch, version)
	if app.IsStaleVersion(err) {
		return echo.NewHTTPError(http.StatusPreconditionFailed, domain.ErrorMessage(err))
	}
	if err != nil {
		return err
	}
	setETag(c, m.Version)
	return c.JSON(http.StatusOK, monitorJSON(m))
}

func (s *Server) deleteMonitor(c echo.Context) error {
	caller, err := mustCaller(c)
	if err != nil {
		return err
	}
	if err := s.cfg.Monitors.Delete(c.Request().Context(), caller.UserID, c.Param("id")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

type validateRequest struct {
	Prompt       *string         `json:"prompt"`
	SourceURL    *string         `json:"source_url"`
	SourceFormat *string         `json:"source_format"`
	Render       *bool           `json:"render"`
	Selector     json.RawMessage `json:"selector"`
}

// parseSelectors reads the selector field: absent or null is none, a string the main
// fact's selector, an object selectors by fact name.
func parseSelectors(raw json.RawMessage) (map[string]string, error) {
	trimmed := strings.TrimSpace(string(raw))
	if trimmed == "" || trimmed == "null" {
		return nil, nil
	}
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		if strings.TrimSpace(one) == "" {
			return map[string]string{}, nil
		}
		return map[string]string{monitor.SelectorPrimary: one}, nil
	}
	var byFact map[string]string
	if err := json.Unmarshal(raw, &byFact); err != nil {
		return nil, fieldError("selector", `must be a selector, or an object of selectors by fact name such as {"price": "span.price"}`)
	}
	for name, sel := range byFact {
		if strings.TrimSpace(sel) == "" {
			delete(byFact, name)
		}
	}
	return byFact, nil
}

// validateMonitor serves POST /api/monitors/validate and /api/monitors/:id/validate.
func (s *Server) validateMonitor(c echo.Context) error {
	caller, err := mustCaller(c)
	if err != nil {
		return err
	}
	var req validateRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	id := c.Param("id")
	if id == "" && req.Prompt == nil {
		return fieldError("prompt", "is required")
	}
	p := app.Proposal{Prompt: deref(req.Prompt), SourceURL: deref(req.SourceURL), SourceFormat: monitor.SourceFormat(deref(req.SourceFormat)),
		Render: req.Render}
	if p.Selectors, err = parseSelectors(req.Selector); err != nil {
		return err
	}
	v, err := s.cfg.Monitors.Validate(c.Request().Context(), caller.UserID, id, p)
	if err != nil {
		return err
	}
	out := ValidationJSON{Spec: v.Spec, ClassifiedBy: ClassifiedByJSON(v.ClassifiedBy), Facts: factsJSON(v.Facts, true), Warnings: v.Warnings,
		Backtest: v.Backtest}
	if out.Warnings == nil {
		out.Warnings = []string{}
	}
	if v.Verdict != nil {
		out.Verdict = &VerdictJSON{State: string(v.Verdict.State), Confidence: v.Verdict.Confidence, Explanation: v.Verdict.Explanation}
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) monitorHistory(c echo.Context) error {
	caller, err := mustCaller(c)
	if err != nil {
		return err
	}
	fields := map[string]string{}
	page := readTimePage(c, fields, "history")
	q := app.HistoryQuery{UserID: caller.UserID, MonitorID: c.Param("id"), From: page.From, To: page.To, Limit: page.Limit}
	if page.Before != nil {
		q.Before = &app.HistoryCursor{ScheduledFor: page.Before.At, ID: page.Before.ID}
	}
	switch c.QueryParam("changed") {
	case "", "false":
	case "true":
		q.ChangedOnly = true
	default:
		fields["changed"] = "must be true or false"
	}
	if len(fields) > 0 {
		return &domain.Error{Code: domain.EINVALID, Message: "The query has invalid parameters.", Fields: fields}
	}
	items, next, err := s.cfg.Monitors.History(c.Request().Context(), q)
	if err != nil {
		return err
	}
	out := HistoryJSON{Evaluations: make([]EvaluationJSON, 0, len(items))}
	for _, e := range items {
		out.Evaluations = append(out.Evaluations, evaluationJSON(e))
	}
	if next != nil {
		cur := encodeCursor(timeCursor{At: next.ScheduledFor, ID: next.ID})
		out.NextCursor = &cur
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) evaluateMonitor(c echo.Context) error {
	caller, err := mustCaller(c)
	if err != nil {
		return err
	}
	if err := s.cfg.Monitors.EvaluateNow(c.Request().Context(), caller.UserID, c.Param("id")); err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, map[string]string{"status": "scheduled"})
}

type listCursor struct {
	Sort  string `json:"s"`
	Desc  bool   `json:"d,omitempty"`
	Value string `json:"v"`
	ID    string `json:"i"`
}

// timeCursor is the last row of a page of a newest-first listing keyed by (time, id).
type timeCursor struct {
	At time.Time `json:"t"`
	ID string    `json:"i"`
}

// timePage is what a newest-first listing reads from the query: a from/to range (RFC 3339),
// limit and cursor.
type timePage struct {
	From, To *time.Time
	Limit    int
	Before   *timeCursor
}

// readTimePage reads a timePage, noting bad parameters in fields; what names the listing
// in the cursor's error.
func readTimePage(c echo.Context, fields map[string]string, what string) timePage {
	var p timePage
	p.From, p.To = readRange(c, fields)
	limit, ok := pageSize(c.QueryParam("limit"))
	if !ok {
		fields["limit"] = fmt.Sprintf("must be a whole number from 1 to %d", PageSizeMax)
	}
	p.Limit = limit
	if v := c.QueryParam("cursor"); v != "" {
		var cur timeCursor
		if err := decodeCursor(v, &cur); err != nil || cur.ID == "" {
			fields["cursor"] = "is not a cursor of this " + what + "; start again without it"
		} else {
			p.Before = &cur
		}
	}
	return p
}

// encodeCursor makes an opaque cursor: clients pass it back unchanged.
func encodeCursor(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func pageSize(raw string) (int, bool) {
	if raw == "" {
		return PageSizeDefault, true
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 || n > PageSizeMax {
		return PageSizeDefault, false
	}
	return n, true
}

// parseInterval reads an interval such as "15m", "1h" or "1d" (a day).
func parseInterval(raw string) (time.Duration, error) {
	s := strings.TrimSpace(raw)
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n > 0 {
			return time.Duration(n) * 24 * time.Hour, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fieldError("interval", `must be a duration such as "15m", "1h" or "1d"`)
	}
	return d, nil
}

// formatInterval writes an interval compactly: "15m", "1h30m", "2d".
func formatInterval(d time.Duration) string {
	if d%(24*time.Hour) == 0 && d > 0 {
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	}
	s := d.String() // "1h30m0s", "30m0s", "45s"
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// setETag sets the monitor's version as a strong entity tag.
func setETag(c echo.Context, version int64) {
	c.Response().Header().Set("ETag", `"`+strconv.FormatInt(version, 10)+`"`)
}

// ifMatch reads If-Match: the version a client last saw, 0 when absent or "*".
func ifMatch(c echo.Context) (int64, error) {
	raw := strings.TrimSpace(c.Request().Header.Get("If-Match"))
	if raw == "" || raw == "*" {
		return 0, nil
	}
	v, err := strconv.ParseInt(strings.Trim(strings.TrimPrefix(raw, "W/"), `"`), 10, 64)
	if err != nil || v < 1 {
		return 0, echo.NewHTTPError(http.StatusPreconditionFailed, "If-Match must be the ETag of the monitor, such as \"3\".")
	}
	return v, nil
}

func fieldError(field, problem string) error {
	return &domain.Error{Code: domain.EINVALID, Message: "The monitor has invalid fields.", Fields: map[string]string{field: problem}}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func monitorJSON(m *monitor.Monitor) MonitorJSON {
	out := MonitorJSON{
		ID: m.ID, Name: m.Name, Prompt: m.Prompt, Kind: string(m.Spec.Kind), Spec: m.Spec,
		ClassifiedBy: ClassifiedByJSON(m.ClassifiedBy), Interval: formatInterval(m.Interval), Timezone: m.Timezone, Confirm: m.Confirm,
		Status: string(m.Status), State: string(m.State), StateChangedAt: m.StateChangedAt, LastEvaluatedAt: m.LastEvaluatedAt,
		NextRunAt: m.NextRunAt, ConsecutiveFailures: m.ConsecutiveFailures, Version: m.Version, CreatedAt: m.CreatedAt, UpdatedAt: m.UpdatedAt,
	}
	if out.Spec.Facts == nil {
		out.Spec.Facts = []monitor.FactSpec{}
	}
	out.SourceFormat, out.Render = string(m.SourceFormat.OrAuto()), m.Render
	out.Selectors = m.Spec.UserSelectors()
	out.AutoRepair, out.ExtractionMisses, out.Repair = m.AutoRepair, m.ExtractionMisses, m.Repair
	if m.SourceURL != "" {
		out.SourceURL = &m.SourceURL
	}
	if m.Cron != "" {
		out.Cron = &m.Cron
	}
	if m.LastError != "" {
		out.LastError = &m.LastError
	}
	return out
}

func evaluationJSON(e app.EvaluationRecord) EvaluationJSON {
	out := EvaluationJSON{ID: e.ID, ScheduledFor: e.ScheduledFor, StartedAt: e.StartedAt, FinishedAt: e.FinishedAt,
		Status: string(e.Status), State: string(e.State), Changed: e.Changed, Explanation: e.Explanation,
		Provider: e.Provider, Model: e.Model, InputTokens: e.InputTokens, OutputTokens: e.OutputTokens,
		Cost: e.Cost, LatencyMS: e.LatencyMS, FactsReused: e.FactsReused, Facts: factsJSON(e.Facts, false)}
	if e.PreviousState != nil {
		p := string(*e.PreviousState)
		out.PreviousState = &p
	}
	if e.Error != "" {
		out.Error = &e.Error
	}
	if m := e.Miss; m != nil {
		out.Miss = &MissJSON{Fact: m.Fact, Selector: m.Selector, LastGood: factsJSON([]monitor.Fact{m.LastGood}, true)[0], Snippet: m.Snippet}
	}
	out.Repair = e.Repair
	return out
}

// factsJSON renders facts with where they were read: validation shows every fact's
// evidence and confidence, to help users fix a prompt; stored facts show them when they
// were kept (facts stored before Vigil kept them have neither).
func factsJSON(facts []monitor.Fact, validation bool) []FactJSON {
	out := make([]FactJSON, 0, len(facts))
	for _, f := range facts {
		j := FactJSON{Key: f.Key, Value: f.Value(), Unit: f.Unit, ObservedAt: f.ObservedAt}
		if ev := f.Evidence; validation || ev != "" {
			j.Evidence = &ev
		}
		if conf := f.Confidence; validation || conf > 0 {
			j.Confidence = &conf
		}
		if loc := f.Locator; loc != "" {
			j.Locator = &loc
		}
		out = append(out, j)
	}
	return out
}

// readRange reads the from and to parameters (RFC 3339), naming a bad one in fields.
func readRange(c echo.Context, fields map[string]string) (from, to *time.Time) {
	for name, dst := range map[string]**time.Time{"from": &from, "to": &to} {
		if v := c.QueryParam(name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				fields[name] = "must be an RFC 3339 time such as 2026-11-01T00:00:00Z"
				continue
			}
			*dst = &t
		}
	}
	return from, to
}

// queryProblem is the 400 of a read whose parameters are bad, nil when none is.
func queryProblem(what string, fields map[string]string) error {
	if len(fields) == 0 {
		return nil
	}
	return badQuery{&domain.Error{Code: domain.EINVALID, Message: "The " + what + " query has invalid parameters.", Fields: fields}}
}

// asBadQuery answers a read's EINVALID error as a 400.
func asBadQuery(err error) error {
	if domain.ErrorCode(err) == domain.EINVALID {
		return badQuery{err}
	}
	return err
}

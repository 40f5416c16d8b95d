package httpapi

import (
	"context"
	"embed"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/account"
	"github.com/vigilhq/vigil/domain/app"
	"github.com/vigilhq/vigil/domain/monitor"
)

// PageTokens verifies the tokens of the links in emails and makes their pages' form
// tokens; *tokens.Links satisfies it.
type PageTokens interface {
	VerifyMonitor(token string, now time.Time) (userID, monitorID string, err error)
	VerifySettings(token string, now time.Time) (userID string, err error)
	VerifyEmailToken(token string, now time.Time) (userID, email string, err error)
	CSRF(token string) string
	CheckCSRF(token, csrf string) bool
}

// EmailVerifier confirms account addresses; *account.Service satisfies it.
type EmailVerifier interface {
	VerifyEmail(ctx context.Context, userID, email string, cl account.Client) error
}

//go:embed pages/*.html
var pageFS embed.FS

// pageTemplates are the server-rendered pages the links in emails open: one template set
// per page, each with the shared layout.
var pageTemplates = func() map[string]*template.Template {
	out := map[string]*template.Template{}
	for _, name := range []string{"monitor", "settings", "reset", "verify"} {
		out[name] = template.Must(template.ParseFS(pageFS, "pages/layout.html", "pages/"+name+".html"))
	}
	return out
}()

// registerPageRoutes serves the pages; each needs its use cases configured.
func (s *Server) registerPageRoutes(e *echo.Echo) {
	if s.cfg.PageTokens == nil {
		return
	}
	if s.cfg.Monitors != nil {
		e.GET("/m/:id", s.monitorPage)
		e.POST("/m/:id", s.monitorPage)
	}
	if s.cfg.Accounts != nil {
		e.GET("/settings", s.settingsPage)
		e.POST("/settings", s.settingsPage)
	}
	if s.cfg.EmailVerifier != nil {
		e.GET("/verify-email", s.verifyEmailPage)
		e.POST("/verify-email", s.verifyEmailPage)
	}
}

// verifyEmailPage is the page a welcome email's link opens. GET only asks (mail scanners
// follow links); POST confirms. The signed token names the one account and address.
func (s *Server) verifyEmailPage(c echo.Context) error {
	token := c.QueryParam("token")
	if token == "" {
		token = c.FormValue("token")
	}
	view := map[string]any{"Title": "confirm your email", "Token": token}
	userID, email, err := s.cfg.PageTokens.VerifyEmailToken(token, s.cfg.Now())
	if err != nil {
		view["Error"] = linkExpired
		return s.renderPage(c, http.StatusBadRequest, "verify", view)
	}
	view["Email"] = email
	if c.Request().Method == http.MethodPost {
		err := s.cfg.EmailVerifier.VerifyEmail(c.Request().Context(), userID, email, clientOf(c))
		if domain.ErrorCode(err) == domain.EINVALID {
			view["Error"] = domain.ErrorMessage(err)
			return s.renderPage(c, http.StatusBadRequest, "verify", view)
		}
		if err != nil {
			return err
		}
		view["Done"] = true
	}
	return s.renderPage(c, http.StatusOK, "verify", view)
}

func (s *Server) registerResetPage(e *echo.Echo) {
	if s.cfg.PasswordResets != nil {
		e.GET("/reset-password", s.resetPage)
		e.POST("/reset-password", s.resetPage)
	}
}

// renderPage writes a page with the headers every page sends.
func (s *Server) renderPage(c echo.Context, status int, name string, view map[string]any) error {
	pageHeaders(c)
	c.Response().Header().Set(echo.HeaderContentType, echo.MIMETextHTMLCharsetUTF8)
	c.Response().WriteHeader(status)
	return pageTemplates[name].ExecuteTemplate(c.Response(), name+".html", view)
}

// sameOrigin refuses a form posted from another site: browsers send Origin with every
// POST, and a page of ours posts to itself. The CSRF token is checked as well.
func sameOrigin(c echo.Context) bool {
	origin := c.Request().Header.Get("Origin")
	if origin == "" || origin == "null" {
		return origin == ""
	}
	u, err := url.Parse(origin)
	return err == nil && strings.EqualFold(u.Host, c.Request().Host)
}

const linkExpired = "This link is not valid or has expired. Use the link in a newer email, or sign in to the API."

func (s *Server) monitorPage(c echo.Context) error {
	token := c.QueryParam("t")
	view := map[string]any{"Title": "monitor"}
	userID, monitorID, err := s.cfg.PageTokens.VerifyMonitor(token, s.cfg.Now())
	if err != nil || monitorID != c.Param("id") {
		view["Error"] = linkExpired
		return s.renderPage(c, http.StatusBadRequest, "monitor", view)
	}
	ctx := c.Request().Context()
	if c.Request().Method == http.MethodPost {
		if !sameOrigin(c) || !s.cfg.PageTokens.CheckCSRF(token, c.FormValue("csrf")) {
			view["Error"] = "The form was not sent from this page. Open the link again and retry."
			return s.renderPage(c, http.StatusForbidden, "monitor", view)
		}
		status := monitor.StatusPaused
		if c.FormValue("action") == "resume" {
			status = monitor.StatusActive
		}
		ctx = account.WithClient(ctx, clientOf(c))
		if _, err := s.cfg.Monitors.Update(ctx, userID, monitorID, monitor.Changes{Status: &status}, 0); err != nil {
			if domain.ErrorCode(err) == domain.ENOTFOUND {
				view["Error"] = "This monitor no longer exists."
				return s.renderPage(c, http.StatusNotFound, "monitor", view)
			}
			return err
		}
		notice := "Paused. Vigil checks nothing and sends nothing for this monitor until you resume it."
		if status == monitor.StatusActive {
			notice = "Resumed. The monitor is checked again from now."
		}
		view["Notice"] = notice
	}
	d, err := s.cfg.Monitors.Get(ctx, userID, monitorID)
	if domain.ErrorCode(err) == domain.ENOTFOUND {
		view["Error"] = "This monitor no longer exists."
		return s.renderPage(c, http.StatusNotFound, "monitor", view)
	}
	if err != nil {
		return err
	}
	history, _, err := s.cfg.Monitors.History(ctx, app.HistoryQuery{UserID: userID, MonitorID: monitorID, Limit: 30})
	if err != nil {
		return err
	}
	tz := d.Monitor.Timezone
	view["Title"], view["Monitor"], view["CSRF"] = d.Monitor.Name, d.Monitor, s.cfg.PageTokens.CSRF(token)
	view["StateLabel"] = map[monitor.State]string{monitor.StateActive: "Condition met", monitor.StateInactive: "Condition not met"}[d.Monitor.State]
	if view["StateLabel"] == "" {
		view["StateLabel"] = "Not known yet"
	}
	if e := d.LastEvaluation; e != nil {
		view["Last"] = map[string]string{"When": pageTime(e.ScheduledFor, tz), "Outcome": string(e.Status), "Explanation": firstOf(e.Explanation, e.Error)}
	}
	var facts []map[string]string
	for _, f := range d.LatestFacts {
		facts = append(facts, map[string]string{"Key": f.Key, "Value": factText(f), "When": pageTime(f.ObservedAt, tz)})
	}
	view["Facts"] = facts
	var rows []map[string]string
	for _, e := range history {
		var values []string
		for _, f := range e.Facts {
			values = append(values, f.Key+" "+factText(f))
		}
		rows = append(rows, map[string]string{"When": pageTime(e.ScheduledFor, tz), "State": string(e.State), "Values": strings.Join(values, ", ")})
	}
	view["History"] = rows
	view["Chart"] = pageChart(d.Monitor.Spec, history, tz)
	return s.renderPage(c, http.StatusOK, "monitor", view)
}

// pageChart draws the first numeric fact of the history as bars, oldest first.
func pageChart(spec monitor.Spec, history []app.EvaluationRecord, tz string) map[string]any {
	key, unit := "", ""
	for _, f := range spec.Facts {
		if f.Type == monitor.FactNumber {
			key, unit = f.Name, f.Unit
			break
		}
	}
	type point struct {
		at time.Time
		v  float64
	}
	var points []point
	for i := len(history) - 1; i >= 0; i-- {
		for _, f := range history[i].Facts {
			if f.Key == key && f.Number != nil {
				points = append(points, point{f.ObservedAt, *f.Number})
			}
		}
	}
	if len(points) < 2 {
		return nil
	}
	lo, hi := points[0].v, points[0].v
	for _, p := range points {
		lo, hi = min(lo, p.v), max(hi, p.v)
	}
	var bars []map[string]any
	for i, p := range points {
		pct := 100
		if hi > lo {
			pct = 8 + int(92*(p.v-lo)/(hi-lo))
		}
		bars = append(bars, map[string]any{"Percent": pct, "Title": number(p.v) + " at " + pageTime(p.at, tz), "Last": i == len(points)-1})
	}
	label := key
	if unit != "" {
		label += " (" + unit + ")"
	}
	return map[string]any{"Label": label, "Min": number(lo), "Max": number(hi), "Bars": bars}
}

func number(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

func factText(f monitor.Fact) string {
	if f.Number != nil && f.Unit != "" {
		return f.ValueText() + " " + f.Unit
	}
	return f.ValueText()
}

func pageTime(t time.Time, tz string) string {
	loc, err := time.LoadLocation(tz)
	if err != nil {
		loc = time.UTC
	}
	return t.In(loc).Format("Mon 2 Jan 2006, 15:04 MST")
}

func firstOf(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

func (s *Server) settingsPage(c echo.Context) error {
	token := c.QueryParam("t")
	view := map[string]any{"Title": "notification settings"}
	userID, err := s.cfg.PageTokens.VerifySettings(token, s.cfg.Now())
	if err != nil {
		view["Error"] = linkExpired
		return s.renderPage(c, http.StatusBadRequest, "settings", view)
	}
	ctx := c.Request().Context()
	status := http.StatusOK
	if c.Request().Method == http.MethodPost {
		if !sameOrigin(c) || !s.cfg.PageTokens.CheckCSRF(token, c.FormValue("csrf")) {
			view["Error"] = "The form was not sent from this page. Open the link again and retry."
			return s.renderPage(c, http.StatusForbidden, "settings", view)
		}
		on := c.FormValue("notifications_enabled") == "1"
		tz := strings.TrimSpace(c.FormValue("timezone"))
		upd := account.ProfileUpdate{NotificationsEnabled: &on, Timezone: &tz}
		if h, err := strconv.Atoi(c.FormValue("digest_hour")); err == nil {
			upd.DigestHour = &h
		}
		_, err := s.cfg.Accounts.UpdateMe(ctx, userID, "", upd, clientOf(c))
		switch {
		case err == nil:
			view["Notice"] = "Saved."
		case domain.ErrorCode(err) == domain.EINVALID:
			view["Problem"], status = "Not saved: "+fieldProblems(err), http.StatusUnprocessableEntity
		case domain.ErrorCode(err) == domain.EUNAUTHORIZED:
			view["Error"] = "This account no longer exists."
			return s.renderPage(c, http.StatusNotFound, "settings", view)
		default:
			return err
		}
	}
	u, err := s.cfg.Accounts.GetMe(ctx, userID)
	if domain.ErrorCode(err) == domain.EUNAUTHORIZED {
		view["Error"] = "This account no longer exists."
		return s.renderPage(c, http.StatusNotFound, "settings", view)
	}
	if err != nil {
		return err
	}
	var hours []map[string]any
	for h := 0; h < 24; h++ {
		hours = append(hours, map[string]any{"Value": h, "Label": strconv.Itoa(h) + ":00", "Selected": h == u.DigestHour})
	}
	view["Email"], view["Enabled"], view["Timezone"], view["Hours"] = u.Email, u.NotificationsEnabled && u.UnsubscribedAt == nil, u.Timezone, hours
	view["Unsubscribed"], view["CSRF"] = u.UnsubscribedAt != nil, s.cfg.PageTokens.CSRF(token)
	return s.renderPage(c, status, "settings", view)
}

// fieldProblems says a validation error's field problems in one line.
func fieldProblems(err error) string {
	var parts []string
	if de, ok := err.(*domain.Error); ok {
		for field, problem := range de.Fields {
			parts = append(parts, strings.ReplaceAll(field, "_", " ")+" "+problem)
		}
	}
	if len(parts) == 0 {
		return domain.ErrorMessage(err)
	}
	return strings.Join(parts, "; ") + "."
}

// resetPage is the form a password reset link opens: it posts the token from the link and
// the new password. The token, single use and short-lived, is what authorises it.
func (s *Server) resetPage(c echo.Context) error {
	token := c.QueryParam("token")
	if token == "" {
		token = c.FormValue("token")
	}
	view := map[string]any{"Title": "reset your password", "Token": token}
	status := http.StatusOK
	if c.Request().Method == http.MethodPost && token != "" {
		password := c.FormValue("password")
		switch {
		case !sameOrigin(c):
			view["Problem"], status = "The form was not sent from this page. Open the link again and retry.", http.StatusForbidden
		case password != c.FormValue("confirm"):
			view["Problem"], status = "The two passwords differ.", http.StatusUnprocessableEntity
		default:
			err := s.cfg.PasswordResets.ResetPassword(c.Request().Context(), token, password, clientOf(c))
			switch domain.ErrorCode(err) {
			case "":
				view["Done"] = true
			case domain.EINVALID, domain.EFORBIDDEN:
				view["Problem"], status = fieldProblems(err), http.StatusUnprocessableEntity
			default:
				return err
			}
		}
	}
	return s.renderPage(c, status, "reset", view)
}

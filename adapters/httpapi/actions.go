package httpapi

import (
	"context"
	"html/template"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/action"
	"github.com/vigilhq/vigil/domain/app"
)

// Actions is what the /api/actions handlers need; *app.ActionService satisfies it. Every
// method is scoped to the user: another user's action is ENOTFOUND.
type Actions interface {
	Create(ctx context.Context, d action.Draft) (*action.Action, error)
	Get(ctx context.Context, userID, id string) (*action.Action, error)
	List(ctx context.Context, userID string) ([]*action.Action, error)
	Update(ctx context.Context, userID, id string, c action.Changes) (*action.Action, error)
	Delete(ctx context.Context, userID, id string) error
	Test(ctx context.Context, userID, id string) ([]app.TestResult, error)
	VerifyRecipientToken(token string) (email string, err error)
	ConfirmRecipient(ctx context.Context, token string) (email string, err error)
}

func (s *Server) registerActionRoutes(e *echo.Echo) {
	g := e.Group("/api/actions", s.authenticated)
	g.GET("", s.listActions)
	g.POST("", s.createAction)
	g.GET("/:id", s.getAction)
	g.PATCH("/:id", s.patchAction)
	g.DELETE("/:id", s.deleteAction)
	if s.cfg.ActionTestLimit != nil {
		g.POST("/:id/test", s.testAction, s.cfg.ActionTestLimit)
	} else {
		g.POST("/:id/test", s.testAction)
	}
	e.GET("/confirm-recipient", s.confirmRecipient)
	e.POST("/confirm-recipient", s.confirmRecipient)
}

// ActionJSON is an action as the API shows it. Secret is present only in the answer that
// created or rotated it: it is stored encrypted and never shown again.
type ActionJSON struct {
	ID      string           `json:"id"`
	Name    string           `json:"name"`
	Type    string           `json:"type"`
	Config  ActionConfigJSON `json:"config"`
	Secret  *string          `json:"secret,omitempty"`
	Enabled bool             `json:"enabled"`
	// DisabledReason says why Vigil turned the action off, null otherwise.
	DisabledReason *string   `json:"disabled_reason"`
	IsDefault      bool      `json:"is_default"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// ActionConfigJSON is an action's channel settings.
type ActionConfigJSON struct {
	To  []string `json:"to,omitempty"`
	URL string   `json:"url,omitempty"`
}

// ActionListJSON is every action of the caller (at most action.PerUserMax).
type ActionListJSON struct {
	Actions []ActionJSON `json:"actions"`
}

type actionConfigRequest struct {
	To     *[]string `json:"to"`
	URL    *string   `json:"url"`
	Secret *string   `json:"secret"`
}

type actionRequest struct {
	Name         *string              `json:"name"`
	Type         *string              `json:"type"`
	Config       *actionConfigRequest `json:"config"`
	Enabled      *bool                `json:"enabled"`
	RotateSecret *bool                `json:"rotate_secret"`
}

func actionJSON(a *action.Action) ActionJSON {
	out := ActionJSON{ID: a.ID, Name: a.Name, Type: string(a.Type), Config: ActionConfigJSON{To: a.Recipients, URL: a.URL},
		Enabled: a.Enabled, DisabledReason: optional(a.DisabledReason), IsDefault: a.IsDefault, CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt}
	if a.Secret != "" {
		secret := a.Secret
		out.Secret = &secret
	}
	return out
}

func actionFieldError(field, problem string) error {
	return &domain.Error{Code: domain.EINVALID, Message: "The action has invalid fields.", Fields: map[string]string{field: problem}}
}

func (s *Server) createAction(c echo.Context) error {
	caller, err := mustCaller(c)
	if err != nil {
		return err
	}
	var req actionRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	switch {
	case req.Type == nil:
		return actionFieldError("type", "is required")
	case req.Config == nil:
		return actionFieldError("config", "is required")
	case req.RotateSecret != nil:
		return actionFieldError("rotate_secret", "is for updates; a new webhook gets a secret of its own")
	}
	d := action.Draft{UserID: caller.UserID, Name: deref(req.Name), Type: action.Type(*req.Type), URL: deref(req.Config.URL),
		Secret: deref(req.Config.Secret), Enabled: req.Enabled}
	if req.Config.To != nil {
		d.Recipients = *req.Config.To
		if d.Recipients == nil {
			d.Recipients = []string{}
		}
	}
	a, err := s.cfg.Actions.Create(c.Request().Context(), d)
	if err != nil {
		return err
	}
	noStore(c) // the answer carries a webhook's secret
	c.Response().Header().Set(echo.HeaderLocation, "/api/actions/"+a.ID)
	return c.JSON(http.StatusCreated, actionJSON(a))
}

func (s *Server) listActions(c echo.Context) error {
	caller, err := mustCaller(c)
	if err != nil {
		return err
	}
	list, err := s.cfg.Actions.List(c.Request().Context(), caller.UserID)
	if err != nil {
		return err
	}
	out := ActionListJSON{Actions: make([]ActionJSON, 0, len(list))}
	for _, a := range list {
		out.Actions = append(out.Actions, actionJSON(a))
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) getAction(c echo.Context) error {
	caller, err := mustCaller(c)
	if err != nil {
		return err
	}
	a, err := s.cfg.Actions.Get(c.Request().Context(), caller.UserID, c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, actionJSON(a))
}

func (s *Server) patchAction(c echo.Context) error {
	caller, err := mustCaller(c)
	if err != nil {
		return err
	}
	var req actionRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.Type != nil {
		return actionFieldError("type", "cannot change; create another action instead")
	}
	ch := action.Changes{Name: req.Name, Enabled: req.Enabled, RotateSecret: req.RotateSecret != nil && *req.RotateSecret}
	if req.Config != nil {
		ch.Recipients, ch.URL, ch.Secret = req.Config.To, req.Config.URL, req.Config.Secret
		if ch.Recipients != nil && *ch.Recipients == nil {
			ch.Recipients = &[]string{}
		}
	}
	a, err := s.cfg.Actions.Update(c.Request().Context(), caller.UserID, c.Param("id"), ch)
	if err != nil {
		return err
	}
	noStore(c)
	return c.JSON(http.StatusOK, actionJSON(a))
}

func (s *Server) deleteAction(c echo.Context) error {
	caller, err := mustCaller(c)
	if err != nil {
		return err
	}
	if err := s.cfg.Actions.Delete(c.Request().Context(), caller.UserID, c.Param("id")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// ActionTestJSON is what a test delivery did, per recipient.
type ActionTestJSON struct {
	Results []ActionTestResultJSON `json:"results"`
}

// ActionTestResultJSON is one recipient's outcome: delivered, retry (a transient failure),
// failed, gone, or skipped (with why).
type ActionTestResultJSON struct {
	Recipient string `json:"recipient"`
	Outcome   string `json:"outcome"`
	Code      *int   `json:"code"`
	Detail    string `json:"detail"`
}

func (s *Server) testAction(c echo.Context) error {
	caller, err := mustCaller(c)
	if err != nil {
		return err
	}
	results, err := s.cfg.Actions.Test(c.Request().Context(), caller.UserID, c.Param("id"))
	if err != nil {
		return err
	}
	out := ActionTestJSON{Results: make([]ActionTestResultJSON, 0, len(results))}
	for _, r := range results {
		j := ActionTestResultJSON{Recipient: r.Recipient, Outcome: string(r.Attempt.Result), Detail: r.Attempt.Detail}
		if r.Skipped != "" {
			j.Outcome, j.Detail = "skipped", r.Skipped
		}
		if r.Attempt.Code != 0 {
			code := r.Attempt.Code
			j.Code = &code
		}
		out.Results = append(out.Results, j)
	}
	return c.JSON(http.StatusOK, out)
}

var confirmRecipientPage = template.Must(template.New("confirm").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Vigil – confirm notifications</title></head>
<body style="font-family:-apple-system,Segoe UI,Roboto,sans-serif;max-width:480px;margin:40px auto;padding:0 16px;color:#1f2933">
{{if .Error}}<h1 style="font-size:22px">This link does not work</h1>
<p>{{.Error}}</p>
{{else if .Done}}<h1 style="font-size:22px">Confirmed</h1>
<p>{{.Email}} will now receive the monitor notifications it was added to. Every email has a link to unsubscribe.</p>
{{else}}<h1 style="font-size:22px">Receive notifications at {{.Email}}?</h1>
<p>A Vigil user added this address to their monitor notifications. Nothing is sent to it until you confirm.</p>
<form method="post"><input type="hidden" name="token" value="{{.Token}}">
<button type="submit" style="background:#1f6feb;color:#fff;border:0;border-radius:6px;padding:10px 18px;font-size:16px">Yes, send me these notifications</button></form>
{{end}}</body></html>`))

// confirmRecipient serves the link of recipient confirmation emails. GET only shows the
// question (mail scanners follow links); POST confirms. The signed token, which names the
// one user and address it is for, is what authorises the form.
func (s *Server) confirmRecipient(c echo.Context) error {
	token := c.QueryParam("token")
	if token == "" {
		token = c.FormValue("token")
	}
	view := map[string]any{"Token": token}
	status := http.StatusOK
	var err error
	if c.Request().Method == http.MethodPost {
		view["Email"], err = s.cfg.Actions.ConfirmRecipient(c.Request().Context(), token)
		view["Done"] = err == nil
	} else {
		view["Email"], err = s.cfg.Actions.VerifyRecipientToken(token)
	}
	if err != nil {
		code := domain.ErrorCode(err)
		if code != domain.EINVALID && code != domain.ENOTFOUND {
			return err
		}
		view["Error"], status = domain.ErrorMessage(err), http.StatusBadRequest
	}
	pageHeaders(c)
	c.Response().Header().Set(echo.HeaderContentType, echo.MIMETextHTMLCharsetUTF8)
	c.Response().WriteHeader(status)
	return confirmRecipientPage.Execute(c.Response(), view)
}

// pageHeaders sets what a server-rendered page sends beyond every response's headers
// (securityHeaders gives pages their strict CSP): no caching of the token-bearing URL.
func pageHeaders(c echo.Context) {
	c.Response().Header().Set("Cache-Control", "no-store")
}

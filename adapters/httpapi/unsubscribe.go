package httpapi

import (
	"context"
	"html/template"
	"net/http"

	"github.com/labstack/echo/v4"
)

// UnsubscribeVerifier verifies one-click unsubscribe tokens.
type UnsubscribeVerifier interface {
	Verify(token string) (userID, email string, err error)
}

// Unsubscriber stops notification email to an address.
type Unsubscriber interface {
	// Unsubscribe turns notifications off for the user when email is the user's own
	// address, and suppresses email otherwise.
	Unsubscribe(ctx context.Context, userID, email string) error
	// Resubscribe undoes Unsubscribe for the same user and address.
	Resubscribe(ctx context.Context, userID, email string) error
}

var unsubscribePage = template.Must(template.New("unsubscribe").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Vigil – unsubscribe</title></head>
<body style="font-family:-apple-system,Segoe UI,Roboto,sans-serif;max-width:480px;margin:40px auto;padding:0 16px;color:#1f2933">
{{if .Undone}}<h1 style="font-size:22px">You are subscribed again</h1>
<p>Vigil will send monitor notifications to {{.Email}} again.</p>
{{else if .Done}}<h1 style="font-size:22px">You are unsubscribed</h1>
<p>Vigil will send no more notification email to {{.Email}}.</p>
<form method="post"><input type="hidden" name="undo" value="1">
<button type="submit" style="background:#fff;color:#1f6feb;border:1px solid #1f6feb;border-radius:6px;padding:10px 18px;font-size:16px">Undo: keep sending them</button></form>
{{else}}<h1 style="font-size:22px">Unsubscribe {{.Email}}?</h1>
<p>Vigil will stop sending monitor notifications to this address.</p>
<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click">
<button type="submit" style="background:#1f6feb;color:#fff;border:0;border-radius:6px;padding:10px 18px;font-size:16px">Unsubscribe</button></form>
{{end}}</body></html>`))

// unsubscribe serves the link in every notification email. GET only shows a confirmation
// form (mail scanners follow links); POST, which is also the RFC 8058 one-click request
// mail clients send, unsubscribes; POST with undo=1, from the page it lands on, undoes it.
func (s *Server) unsubscribe(c echo.Context) error {
	userID, email, err := s.cfg.UnsubscribeTokens.Verify(c.QueryParam("token"))
	if err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "This unsubscribe link is not valid.")
	}
	done, undone := false, false
	switch {
	case c.Request().Method == http.MethodPost && c.FormValue("undo") == "1":
		if err := s.cfg.Unsubscriber.Resubscribe(c.Request().Context(), userID, email); err != nil {
			return err
		}
		s.log(c).Info().Str("user_id", userID).Msg("subscribed to notification email again")
		undone = true
	case c.Request().Method == http.MethodPost:
		if err := s.cfg.Unsubscriber.Unsubscribe(c.Request().Context(), userID, email); err != nil {
			return err
		}
		s.log(c).Info().Str("user_id", userID).Msg("unsubscribed from notification email")
		done = true
	}
	pageHeaders(c)
	c.Response().Header().Set(echo.HeaderContentType, echo.MIMETextHTMLCharsetUTF8)
	c.Response().WriteHeader(http.StatusOK)
	return unsubscribePage.Execute(c.Response(), map[string]any{"Email": email, "Done": done, "Undone": undone})
}

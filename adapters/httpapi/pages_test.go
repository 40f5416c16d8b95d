package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/httpapi"
	"github.com/vigilhq/vigil/adapters/tokens"
)

// form posts a form to path as a browser on the page would.
func (b *monitorsBundle) form(t *testing.T, path string, values url.Values, origin string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(values.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	rec := httptest.NewRecorder()
	b.h.ServeHTTP(rec, req)
	checkResponseAgainstSpec(t, req, rec)
	return rec
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func TestMonitorPage(t *testing.T) {
	t.Parallel()
	b := setupMonitorsAPI(t)
	ctx := context.Background()
	m := b.create(t, b.ann, fmt.Sprintf(`{"prompt":"Tell me when the price drops below $80","source_url":%q,"name":"Widget <b>deal</b>"}`, b.source.URL))
	// Three evaluations with prices, as the recorder stores them.
	for i, price := range []float64{90, 85, 79} {
		at := time.Now().UTC().Add(time.Duration(i-3) * time.Hour).Truncate(time.Second)
		var evID string
		require.NoError(t, b.pool.QueryRow(ctx, `
			INSERT INTO evaluations (monitor_id, scheduled_for, started_at, finished_at, status, state, changed, explanation)
			VALUES ($1, $2::timestamptz, $2::timestamptz, $2::timestamptz + interval '1 second', 'succeeded', $3, false, 'checked') RETURNING id`,
			m.ID, at, map[bool]string{true: "active", false: "inactive"}[price < 80]).Scan(&evID))
		_, err := b.pool.Exec(ctx, `INSERT INTO facts (monitor_id, evaluation_id, key, value_number, unit, observed_at)
			VALUES ($1, $2, 'price', $3, 'USD', $4)`, m.ID, evID, price, at.Add(500*time.Millisecond))
		require.NoError(t, err)
	}
	links := tokens.NewPageLinks(b.links, nil, "http://vigil.test", time.Now)
	u, err := url.Parse(links.Monitor(b.annUserID, m.ID))
	require.NoError(t, err)
	path := u.Path + "?" + u.RawQuery

	rec := b.do(t, http.MethodGet, path, "", "", nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	page := rec.Body.String()
	require.Contains(t, page, "Widget &lt;b&gt;deal&lt;/b&gt;", "user text is escaped")
	require.Contains(t, page, "79 USD")
	require.Contains(t, page, "Recent price (USD)")
	require.Equal(t, 3, strings.Count(page, `class="bar`), "one bar per stored value")
	require.Contains(t, page, "Pause this monitor")
	require.NotContains(t, page, "<script")
	csp := rec.Header().Get("Content-Security-Policy")
	require.Contains(t, csp, "default-src 'none'")
	require.Contains(t, csp, "frame-ancestors 'none'")
	require.Equal(t, "no-referrer", rec.Header().Get("Referrer-Policy"))
	csrf := csrfField.FindStringSubmatch(page)
	require.NotNil(t, csrf)

	// A form from another site, or without the page's token, changes nothing.
	rec = b.form(t, path, url.Values{"action": {"pause"}, "csrf": {csrf[1]}}, "https://evil.example")
	require.Equal(t, http.StatusForbidden, rec.Code)
	rec = b.form(t, path, url.Values{"action": {"pause"}, "csrf": {"forged"}}, "")
	require.Equal(t, http.StatusForbidden, rec.Code)
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM monitors WHERE id = $1 AND status = 'active'`, m.ID))

	// Pause, then resume, from the page.
	rec = b.form(t, path, url.Values{"action": {"pause"}, "csrf": {csrf[1]}}, "http://example.com")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Contains(t, rec.Body.String(), "Paused.")
	require.Contains(t, rec.Body.String(), "Resume monitoring")
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM monitors WHERE id = $1 AND status = 'paused'`, m.ID))
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM audit_log WHERE action = 'monitor_updated' AND target_id = $1`, m.ID))
	rec = b.form(t, path, url.Values{"action": {"resume"}, "csrf": {csrf[1]}}, "")
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM monitors WHERE id = $1 AND status = 'active'`, m.ID))

	// The token is for this monitor of this user only, and expires.
	bobMon := b.create(t, b.bob, fmt.Sprintf(`{"prompt":"price below 70","source_url":%q}`, b.source.URL))
	rec = b.do(t, http.MethodGet, "/m/"+bobMon.ID+"?"+u.RawQuery, "", "", nil)
	require.Equal(t, http.StatusBadRequest, rec.Code, "another monitor with this token")
	old := tokens.NewPageLinks(b.links, nil, "http://vigil.test", func() time.Time { return time.Now().Add(-31 * 24 * time.Hour) })
	expired, _ := url.Parse(old.Monitor(b.annUserID, m.ID))
	rec = b.do(t, http.MethodGet, expired.Path+"?"+expired.RawQuery, "", "", nil)
	require.Equal(t, http.StatusBadRequest, rec.Code)
	require.Contains(t, rec.Body.String(), "expired")
	settings, _ := url.Parse(links.Settings(b.annUserID))
	rec = b.do(t, http.MethodGet, "/m/"+m.ID+"?"+settings.RawQuery, "", "", nil)
	require.Equal(t, http.StatusBadRequest, rec.Code, "a settings token is not a monitor token")
	// A deleted monitor says so.
	require.Equal(t, http.StatusNoContent, b.do(t, http.MethodDelete, "/api/monitors/"+m.ID, "", b.ann, nil).Code)
	rec = b.do(t, http.MethodGet, path, "", "", nil)
	require.Equal(t, http.StatusNotFound, rec.Code)
}

func TestSettingsPage(t *testing.T) {
	t.Parallel()
	b := setupMonitorsAPI(t)
	ctx := context.Background()
	_, err := b.pool.Exec(ctx, `UPDATE users SET unsubscribed_at = now() WHERE id = $1`, b.annUserID)
	require.NoError(t, err)
	links := tokens.NewPageLinks(b.links, nil, "http://vigil.test", time.Now)
	u, _ := url.Parse(links.Settings(b.annUserID))
	path := u.Path + "?" + u.RawQuery
	rec := b.do(t, http.MethodGet, path, "", "", nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Contains(t, rec.Body.String(), "You unsubscribed")
	require.Contains(t, rec.Body.String(), "ann@example.com")
	csrf := csrfField.FindStringSubmatch(rec.Body.String())
	require.NotNil(t, csrf)

	rec = b.form(t, path, url.Values{"csrf": {csrf[1]}, "notifications_enabled": {"1"}, "digest_hour": {"7"}, "timezone": {"Europe/Paris"}}, "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Contains(t, rec.Body.String(), "Saved.")
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM users WHERE id = $1 AND unsubscribed_at IS NULL AND notifications_enabled
		AND digest_hour = 7 AND timezone = 'Europe/Paris'`, b.annUserID), "saving with notifications on subscribes again")

	rec = b.form(t, path, url.Values{"csrf": {csrf[1]}, "notifications_enabled": {"1"}, "digest_hour": {"7"}, "timezone": {"Mars/Olympus"}}, "")
	require.Equal(t, http.StatusUnprocessableEntity, rec.Code)
	require.Contains(t, rec.Body.String(), "timezone")
	rec = b.form(t, path, url.Values{"csrf": {"x"}, "notifications_enabled": {"0"}}, "")
	require.Equal(t, http.StatusForbidden, rec.Code)
	require.Equal(t, http.StatusBadRequest, b.do(t, http.MethodGet, "/settings?t=forged", "", "", nil).Code)
}

func TestResetPasswordPage(t *testing.T) {
	t.Parallel()
	b := setupReset(t)
	b.register(t, "page@example.com", goodPassword)
	require.Equal(t, http.StatusAccepted, b.forgot(t, "page@example.com").Code)
	token := tokenOf(t, b.smtp.WaitFor(t, 1, 10*time.Second)[0])

	get := func(path string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		rec := httptest.NewRecorder()
		b.h.ServeHTTP(rec, req)
		checkResponseAgainstSpec(t, req, rec)
		return rec
	}
	post := func(values url.Values) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/reset-password", strings.NewReader(values.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		b.h.ServeHTTP(rec, req)
		checkResponseAgainstSpec(t, req, rec)
		return rec
	}
	rec := get("/reset-password?token=" + token)
	require.Equal(t, http.StatusOK, rec.Code)
	require.Contains(t, rec.Body.String(), `type="password"`)
	require.Contains(t, rec.Body.String(), `value="`+token+`"`)
	require.Contains(t, rec.Header().Get("Content-Security-Policy"), "frame-ancestors 'none'")
	require.Contains(t, get("/reset-password").Body.String(), "no reset token")

	rec = post(url.Values{"token": {token}, "password": {newPassword}, "confirm": {"something else"}})
	require.Equal(t, http.StatusUnprocessableEntity, rec.Code)
	require.Contains(t, rec.Body.String(), "differ")
	rec = post(url.Values{"token": {token}, "password": {"short"}, "confirm": {"short"}})
	require.Equal(t, http.StatusUnprocessableEntity, rec.Code)
	rec = post(url.Values{"token": {token}, "password": {newPassword}, "confirm": {newPassword}})
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Contains(t, rec.Body.String(), "Your password is changed")
	require.Equal(t, http.StatusOK, b.login(t, "page@example.com", newPassword).Code)
	rec = post(url.Values{"token": {token}, "password": {newPassword + "2"}, "confirm": {newPassword + "2"}})
	require.Equal(t, http.StatusUnprocessableEntity, rec.Code, "the link works once")
	_ = httpapi.PageSizeMax
}

var verifyLink = regexp.MustCompile(`http://vigil\.test(/verify-email\?token=[A-Za-z0-9._%-]+)`)

// TestWelcomeEmailConfirmsTheAddress: registering mails a welcome with a link whose page
// confirms the account's address on POST (GET only asks).
func TestWelcomeEmailConfirmsTheAddress(t *testing.T) {
	t.Parallel()
	b := setupMonitorsAPI(t)
	msgs := b.welcome.WaitFor(t, 2, 10*time.Second) // ann and bob
	var link string
	for _, m := range msgs {
		if m.To[0] == "ann@example.com" {
			require.Equal(t, "Welcome to Vigil: confirm your email", m.Subject)
			link = verifyLink.FindStringSubmatch(m.Text)[1]
		}
	}
	require.NotEmpty(t, link)
	require.Equal(t, 0, b.count(t, `SELECT count(*) FROM users WHERE id = $1 AND email_verified_at IS NOT NULL`, b.annUserID))
	rec := b.do(t, http.MethodGet, link, "", "", nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Contains(t, rec.Body.String(), "Confirm ann@example.com?")
	require.Equal(t, 0, b.count(t, `SELECT count(*) FROM users WHERE id = $1 AND email_verified_at IS NOT NULL`, b.annUserID))
	rec = b.form(t, link, url.Values{}, "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Contains(t, rec.Body.String(), "Your address is confirmed")
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM users WHERE id = $1 AND email_verified_at IS NOT NULL`, b.annUserID))
	me := decode[httpapi.UserJSON](t, b.do(t, http.MethodGet, "/api/me", "", b.ann, nil))
	require.True(t, me.EmailVerified)
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM audit_log WHERE actor_user_id = $1 AND action = 'email_verified'`, b.annUserID))

	// A forged token, or one for an address the account no longer has, confirms nothing.
	require.Equal(t, http.StatusBadRequest, b.do(t, http.MethodGet, link+"x", "", "", nil).Code)
	other := "/verify-email?token=" + url.QueryEscape(b.links.SignVerifyEmail(b.annUserID, "old@example.com", time.Now().Add(time.Hour)))
	rec = b.form(t, other, url.Values{}, "")
	require.Equal(t, http.StatusBadRequest, rec.Code)
	require.Contains(t, rec.Body.String(), "no longer has")
}

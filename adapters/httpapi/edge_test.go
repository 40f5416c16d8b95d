package httpapi_test

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/httpapi"
)

// TestSecurityHeadersOnEveryResponse: ASVS 4.0.3 V14.4.3 (a CSP), V14.4.4 (nosniff), V14.4.5
// (HSTS), V14.4.6 (Referrer-Policy) and V14.4.7 (no framing by other origins), on JSON
// answers, errors, Echo's own 404, the pages links in emails open and the API reference.
func TestSecurityHeadersOnEveryResponse(t *testing.T) {
	t.Parallel()
	h := fullServer(t).Handler()
	for _, r := range []struct{ method, path, csp string }{
		{http.MethodGet, "/healthz", "default-src 'none'"},
		{http.MethodGet, "/api/monitors", "default-src 'none'"}, // 401
		{http.MethodGet, "/nowhere", "default-src 'none'"},
		{http.MethodDelete, "/healthz", "default-src 'none'"}, // 405
		{http.MethodGet, "/unsubscribe?token=good", "style-src 'unsafe-inline'"},
		{http.MethodGet, "/docs", "script-src 'self'"},
		{http.MethodGet, "/api/openapi.json", "default-src 'none'"},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(r.method, r.path, nil))
		hd := rec.Header()
		require.Equal(t, "nosniff", hd.Get("X-Content-Type-Options"), r.path)
		require.Equal(t, "no-referrer", hd.Get("Referrer-Policy"), r.path)
		require.Equal(t, "same-origin", hd.Get("Cross-Origin-Opener-Policy"), r.path)
		require.Equal(t, "same-origin", hd.Get("Cross-Origin-Resource-Policy"), r.path)
		require.Equal(t, "DENY", hd.Get("X-Frame-Options"), r.path)
		csp := hd.Get("Content-Security-Policy")
		require.Contains(t, csp, "frame-ancestors 'none'", r.path)
		require.Contains(t, csp, r.csp, r.path)
		require.NotContains(t, csp, "'unsafe-eval'", r.path)
		if !strings.Contains(r.csp, "script-src") {
			require.NotContains(t, csp, "script-src", "%s runs no script", r.path)
		}
		require.Empty(t, hd.Get("Strict-Transport-Security"), "no HSTS when the public URL is http: %s", r.path)
	}

	https := httpapi.New(httpapi.Config{Logger: zerolog.Nop(), HSTS: true}).Handler()
	for _, path := range []string{"/healthz", "/nowhere"} {
		rec := get(t, https, path)
		require.Equal(t, "max-age=31536000; includeSubDomains", rec.Header().Get("Strict-Transport-Security"), path)
	}
}

// TestMetricsAreForAdministratorsOnly: ASVS 4.0.3 V4.3.1 and V14.3.2. On the API's port
// /metrics is not public: anonymous callers get 401, users 403, administrators the metrics.
func TestMetricsAreForAdministratorsOnly(t *testing.T) {
	t.Parallel()
	metrics := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("vigil_up 1\n")) })
	b := setupAuth(t, authOpts{wire: func(cfg *httpapi.Config, pool *pgxpool.Pool, clock *fakeClock) {
		withAdmin(t)(cfg, pool, clock)
		cfg.Metrics = metrics
	}})
	requireProblem(t, b.do(t, http.MethodGet, "/metrics", "", ""), http.StatusUnauthorized, "unauthorized")
	ann := b.register(t, "ann@example.com", goodPassword)
	requireProblem(t, b.do(t, http.MethodGet, "/metrics", "", ann.AccessToken), http.StatusForbidden, "forbidden")
	admin := b.makeAdmin(t, "root@example.com")
	rec := b.do(t, http.MethodGet, "/metrics", "", admin.AccessToken)
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, "vigil_up 1\n", rec.Body.String())

	// Without authentication wired there is no one to show them to: no route at all.
	if rec := get(t, httpapi.New(httpapi.Config{Logger: zerolog.Nop(), Metrics: metrics}).Handler(), "/metrics"); rec.Code != http.StatusNotFound {
		t.Fatalf("/metrics without authentication = %d, want 404", rec.Code)
	}
}

// TestJSONRoutesRefuseOtherContentTypes: ASVS 4.0.3 V13.1.5. A body that is not declared
// as JSON is a 415, so a cross-origin "simple" POST (text/plain, a form), which a browser
// sends without a preflight, never reaches login, register or forgot-password.
func TestJSONRoutesRefuseOtherContentTypes(t *testing.T) {
	t.Parallel()
	b := setupAuth(t, authOpts{})
	body := `{"email":"ann@example.com","password":"` + goodPassword + `"}`
	for _, ct := range []string{"text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded",
		"multipart/form-data; boundary=x", "application/json; charset=iso-8859-1", "application/jsonx", ""} {
		for _, path := range []string{"/api/auth/register", "/api/auth/login"} {
			req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
			if ct != "" {
				req.Header.Set("Content-Type", ct)
			}
			rec := httptest.NewRecorder()
			b.h.ServeHTTP(rec, req)
			checkResponseAgainstSpec(t, req, rec)
			p := requireProblem(t, rec, http.StatusUnsupportedMediaType, "invalid")
			require.Contains(t, p.Detail, "application/json", "%s as %q", path, ct)
		}
	}
	require.Zero(t, b.count(t, `SELECT count(*) FROM users`), "nothing sent as another type was acted on")
	for _, ct := range []string{"application/json", "application/json; charset=utf-8", "Application/JSON; Charset=UTF-8"} {
		req := httptest.NewRequest(http.MethodPost, "/api/auth/login", strings.NewReader(body))
		req.Header.Set("Content-Type", ct)
		rec := httptest.NewRecorder()
		b.h.ServeHTTP(rec, req)
		require.Equal(t, http.StatusUnauthorized, rec.Code, "%q is JSON: the login is tried (and fails: no such user)", ct)
	}
}

// TestUnreadableTextIsRefusedAtTheEdge: ASVS 4.0.3 V5.1.3 and V5.1.4 (input validated,
// structured data checked) and V7.4.1 (no internal error shown). A NUL byte or bytes that
// are not UTF-8, in a JSON member, a query parameter, a path parameter or a form, is a 400
// naming the field, authenticated or not, and never reaches PostgreSQL.
func TestUnreadableTextIsRefusedAtTheEdge(t *testing.T) {
	t.Parallel()
	b := setupMonitorsAPI(t)
	type probe struct {
		method, path, body string
		token              bool
		field              string
	}
	for _, p := range []probe{
		{http.MethodPost, "/api/auth/login", `{"email":"ann\u0000@example.com","password":"x"}`, false, "email"},
		{http.MethodPost, "/api/auth/login", "{\"email\":\"ann\xff@example.com\",\"password\":\"x\"}", false, "email"},
		{http.MethodPost, "/api/auth/register", `{"email":"a@example.com","password":"` + goodPassword + `","name":"A\u0000"}`, false, "name"},
		{http.MethodPost, "/api/monitors", `{"prompt":"Tell me when the price drops below $80\u0000","source_url":"https://example.com/"}`, true, "prompt"},
		{http.MethodPost, "/api/monitors/validate", "{\"prompt\":\"price \xc3\x28 below 80\"}", true, "prompt"},
		{http.MethodPatch, "/api/monitors/01900000-0000-7000-8000-000000000000", `{"selector":{"pri\u0000ce":"span"}}`, true, `selector."pri\x00ce"`},
		{http.MethodPatch, "/api/monitors/01900000-0000-7000-8000-000000000000", `{"selector":{"price":"span\u0000"}}`, true, "selector.price"},
		{http.MethodGet, "/api/monitors?q=%00", "", true, "q"},
		{http.MethodGet, "/api/monitors?q=%ff%fe", "", true, "q"},
		{http.MethodGet, "/api/me/audit?action=%00", "", true, "action"},
		{http.MethodGet, "/api/monitors/%00", "", true, "id"},
		{http.MethodGet, "/api/monitors/%c3%28/history", "", true, "id"},
	} {
		token := ""
		if p.token {
			token = b.ann
		}
		rec := b.do(t, p.method, p.path, p.body, token, nil)
		problem := requireProblem(t, rec, http.StatusBadRequest, "invalid")
		require.Contains(t, problem.Errors, p.field, "%s %s %q: %s", p.method, p.path, p.body, rec.Body)
	}
	// An escaped backslash before u0000 is the text \u0000, not a NUL: it is read as text.
	rec := b.do(t, http.MethodGet, "/api/monitors?q="+`%5Cu0000`, "", b.ann, nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
}

// TestDatabaseErrorsAreAnsweredAsTheClientsOrAnOutage: ASVS 4.0.3 V7.4.1 (a generic
// message, no internals, when something unexpected happens). A listing cursor whose value
// the database cannot read as a time is a 422 naming the cursor, as every invalid listing
// parameter is; with the database gone,
// the API answers 503 with Retry-After, not 500, and shows none of the driver's text.
func TestDatabaseErrorsAreAnsweredAsTheClientsOrAnOutage(t *testing.T) {
	t.Parallel()
	b := setupMonitorsAPI(t)
	forged := base64.RawURLEncoding.EncodeToString([]byte(`{"s":"created_at","v":"yesterday-ish","i":"01900000-0000-7000-8000-000000000000"}`))
	rec := b.do(t, http.MethodGet, "/api/monitors?cursor="+forged, "", b.ann, nil)
	p := requireProblem(t, rec, http.StatusUnprocessableEntity, "invalid")
	require.Contains(t, p.Errors, "cursor", rec.Body.String())
	forged = base64.RawURLEncoding.EncodeToString([]byte(`{"s":"created_at","v":"2026-01-01 00:00:00+00","i":"not-a-uuid"}`))
	p = requireProblem(t, b.do(t, http.MethodGet, "/api/monitors?cursor="+forged, "", b.ann, nil), http.StatusUnprocessableEntity, "invalid")
	require.Contains(t, p.Errors, "cursor")

	b.pool.Close()
	for _, path := range []string{"/api/monitors", "/api/me", "/api/notifications"} {
		rec := b.do(t, http.MethodGet, path, "", b.ann, nil)
		p := requireProblem(t, rec, http.StatusServiceUnavailable, "unavailable")
		require.Equal(t, "5", rec.Header().Get("Retry-After"), path)
		require.NotContains(t, strings.ToLower(p.Detail), "pool", path)
	}
}

// TestCORSIsOffUnlessAnOriginIsListed: ASVS 4.0.3 V14.5.3 (the Origin header is checked
// against an allowlist, never * or a reflected origin). Without CORS_ORIGINS no origin is
// allowed; with it, preflights from a listed origin get its exact origin and what a client
// needs, and any other origin gets nothing.
func TestCORSIsOffUnlessAnOriginIsListed(t *testing.T) {
	t.Parallel()
	preflight := func(h http.Handler, origin string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodOptions, "/api/monitors", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", http.MethodPost)
		req.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	off := httpapi.New(httpapi.Config{Logger: zerolog.Nop()}).Handler()
	rec := preflight(off, "https://app.example")
	require.Empty(t, rec.Header().Get("Access-Control-Allow-Origin"), "CORS is off by default")

	on := httpapi.New(httpapi.Config{Logger: zerolog.Nop(), CORSOrigins: []string{"https://app.example"}}).Handler()
	rec = preflight(on, "https://app.example")
	require.Equal(t, http.StatusNoContent, rec.Code)
	require.Equal(t, "https://app.example", rec.Header().Get("Access-Control-Allow-Origin"))
	require.Contains(t, rec.Header().Get("Access-Control-Allow-Methods"), http.MethodPost)
	require.Contains(t, strings.ToLower(rec.Header().Get("Access-Control-Allow-Headers")), "authorization")
	require.Empty(t, rec.Header().Get("Access-Control-Allow-Credentials"), "bearer tokens, never cookies")
	require.Equal(t, "600", rec.Header().Get("Access-Control-Max-Age"))
	for _, other := range []string{"https://evil.example", "https://app.example.evil.example", "http://app.example", "null"} {
		rec := preflight(on, other)
		require.Empty(t, rec.Header().Get("Access-Control-Allow-Origin"), other)
	}
	// An actual request from the listed origin can read what it needs.
	req := httptest.NewRequest(http.MethodGet, "/healthz", nil)
	req.Header.Set("Origin", "https://app.example")
	rec = httptest.NewRecorder()
	on.ServeHTTP(rec, req)
	require.Equal(t, "https://app.example", rec.Header().Get("Access-Control-Allow-Origin"))
	require.Contains(t, rec.Header().Get("Access-Control-Expose-Headers"), "ETag")
}

// TestCrossSiteWritesAreRefused: ASVS 4.0.3 V4.2.2 (CSRF defences on state-changing
// requests). A browser POST from another site's page is 403 and does nothing, even with a
// valid bearer token; the same request from Vigil's own origin, from a listed CORS origin,
// or from a script (no browser headers) goes through. The one-click unsubscribe, which
// mail providers post from anywhere with the token in its URL, is not refused.
func TestCrossSiteWritesAreRefused(t *testing.T) {
	t.Parallel()
	b, cfg := newStack(t)
	cfg.CORSOrigins = []string{"https://app.example"}
	cfg.UnsubscribeTokens, cfg.Unsubscriber = fakeTokens{}, &recordingUnsubscriber{}
	b.h = httpapi.New(cfg).Handler()
	rec := b.do(t, http.MethodPost, "/api/auth/register", `{"email":"ann@example.com","password":"`+goodPassword+`","name":"Ann"}`, "", nil)
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	ann := decode[httpapi.TokenResponse](t, rec).AccessToken
	create := `{"prompt":"Tell me when the price drops below $80","source_url":"` + b.source.URL + `"}`
	for _, hostile := range []map[string]string{
		{"Sec-Fetch-Site": "cross-site"},
		{"Sec-Fetch-Site": "same-site", "Origin": "https://sub.example.com"},
		{"Origin": "https://evil.example"},
	} {
		requireProblem(t, b.do(t, http.MethodPost, "/api/monitors", create, ann, hostile), http.StatusForbidden, "forbidden")
		requireProblem(t, b.do(t, http.MethodPost, "/api/auth/login", `{"email":"ann@example.com","password":"x"}`, "", hostile),
			http.StatusForbidden, "forbidden")
	}
	require.Zero(t, b.count(t, `SELECT count(*) FROM monitors`), "no cross-site request was acted on")
	for _, fine := range []map[string]string{
		nil,                               // a script
		{"Sec-Fetch-Site": "same-origin"}, // Vigil's own page
		{"Origin": "http://example.com"},  // the request's own host
		{"Sec-Fetch-Site": "cross-site", "Origin": "https://app.example"}, // a listed front end
	} {
		require.Equal(t, http.StatusCreated, b.do(t, http.MethodPost, "/api/monitors", create, ann, fine).Code, "%v", fine)
	}
	// One-click unsubscribe from a provider's page still works.
	req := httptest.NewRequest(http.MethodPost, "/unsubscribe?token=good", strings.NewReader("List-Unsubscribe=One-Click"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	rec = httptest.NewRecorder()
	b.h.ServeHTTP(rec, req)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
}

// TestMonitorSourcesAreGuardedWhenStored: ASVS 4.0.3 V12.6.1. A source on a loopback,
// private, metadata or special address, in any of its IPv6 spellings, is refused when a
// monitor is created, validated or given a new source, naming source_url, before anything
// is classified or fetched; a host that does not resolve yet is accepted (each fetch
// checks again).
func TestMonitorSourcesAreGuardedWhenStored(t *testing.T) {
	t.Parallel()
	b := setupMonitorsAPIWith(t, stackOptions{strictSources: true})
	body := func(source string) string {
		return `{"prompt":"Tell me when the price drops below $80","source_url":"` + source + `"}`
	}
	for _, target := range []string{
		"http://127.0.0.1:8080/", "http://localhost/", "http://10.0.0.8/", "http://169.254.169.254/latest/meta-data/",
		"http://[::1]/", "http://[::127.0.0.1]/", "http://[::ffff:127.0.0.1]/", "http://[2002:7f00:1::1]/",
		"http://[64:ff9b::a9fe:a9fe]/", "http://[fec0::1]/", "http://[fd00:ec2::254]/", "http://0.0.0.0/",
	} {
		for _, path := range []string{"/api/monitors", "/api/monitors/validate"} {
			p := requireProblem(t, b.do(t, http.MethodPost, path, body(target), b.ann, nil), http.StatusUnprocessableEntity, "invalid")
			require.Contains(t, p.Errors["source_url"], "private or local address", "%s %s", path, target)
		}
	}
	require.Zero(t, b.claude.Requests(), "nothing was classified")
	rec := b.do(t, http.MethodPost, "/api/monitors", body("https://shop.example/item/42"), b.ann, nil)
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	id := decode[httpapi.MonitorJSON](t, rec).ID
	p := requireProblem(t, b.do(t, http.MethodPatch, "/api/monitors/"+id, `{"source_url":"http://[::127.0.0.1]:5432/"}`, b.ann, nil),
		http.StatusUnprocessableEntity, "invalid")
	require.Contains(t, p.Errors["source_url"], "private or local address")
}

package ratelimit_test

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/ratelimit"
	"github.com/vigilhq/vigil/domain"
)

// serve runs one request from remoteAddr through mw and a handler that counts its calls.
func serve(t *testing.T, e *echo.Echo, mw echo.MiddlewareFunc, remoteAddr string, calls *int) (*httptest.ResponseRecorder, error) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/api/auth/login", nil)
	req.RemoteAddr = remoteAddr
	rec := httptest.NewRecorder()
	c := e.NewContext(req, rec)
	err := mw(func(c echo.Context) error {
		*calls++
		return c.NoContent(http.StatusNoContent)
	})(c)
	return rec, err
}

func newEcho() *echo.Echo {
	e := echo.New()
	e.IPExtractor = echo.ExtractIPDirect()
	return e
}

func TestMiddlewareAllowsThenDenies(t *testing.T) {
	t.Parallel()
	_, b := setup(t)
	e := newEcho()
	rule := ratelimit.Rule{Name: "login-ip", Limit: 2, Window: time.Minute}
	mw := ratelimit.Middleware(b.lim, rule, ratelimit.IPKey, zerolog.Nop())
	calls := 0

	rec, err := serve(t, e, mw, "198.51.100.7:5000", &calls)
	require.NoError(t, err)
	require.Equal(t, http.StatusNoContent, rec.Code)
	require.Equal(t, "2", rec.Header().Get("RateLimit-Limit"))
	require.Equal(t, "1", rec.Header().Get("RateLimit-Remaining"))
	require.Equal(t, "60", rec.Header().Get("RateLimit-Reset"))
	require.Empty(t, rec.Header().Get("Retry-After"))

	b.clock.Advance(1500 * time.Millisecond)
	rec, err = serve(t, e, mw, "198.51.100.7:5001", &calls)
	require.NoError(t, err)
	require.Equal(t, "0", rec.Header().Get("RateLimit-Remaining"))
	require.Equal(t, "59", rec.Header().Get("RateLimit-Reset"), "58.5s rounds up")
	require.Equal(t, 2, calls)

	// Denied: the handler is not called, the error is ERATELIMITED for the API's error
	// handler to write as 429, and the headers are already set.
	rec, err = serve(t, e, mw, "198.51.100.7:5002", &calls)
	require.Equal(t, 2, calls, "a denied request must not reach the handler")
	var de *domain.Error
	require.True(t, errors.As(err, &de), "got %v", err)
	require.Equal(t, domain.ERATELIMITED, de.Code)
	require.Equal(t, "Too many requests; try again in 59 seconds.", de.Message)
	require.Equal(t, "59", rec.Header().Get("Retry-After"))
	require.Equal(t, "2", rec.Header().Get("RateLimit-Limit"))
	require.Equal(t, "0", rec.Header().Get("RateLimit-Remaining"))
	require.Equal(t, "59", rec.Header().Get("RateLimit-Reset"))

	// Another address is not affected.
	rec, err = serve(t, e, mw, "198.51.100.8:5000", &calls)
	require.NoError(t, err)
	require.Equal(t, "1", rec.Header().Get("RateLimit-Remaining"))

	// After the window, the first address is back.
	b.clock.Advance(59 * time.Second)
	rec, err = serve(t, e, mw, "198.51.100.7:5003", &calls)
	require.NoError(t, err)
	require.Equal(t, "1", rec.Header().Get("RateLimit-Remaining"))
}

// TestMiddlewareProblemResponse goes through a real echo.Echo whose error handler maps
// codes to statuses the way httpapi's does, to check the headers survive the error path.
func TestMiddlewareProblemResponse(t *testing.T) {
	t.Parallel()
	_, b := setup(t)
	e := newEcho()
	e.HTTPErrorHandler = func(err error, c echo.Context) {
		status := http.StatusInternalServerError
		if domain.ErrorCode(err) == domain.ERATELIMITED {
			status = http.StatusTooManyRequests
		}
		c.Response().Header().Set(echo.HeaderContentType, "application/problem+json")
		_ = c.JSON(status, map[string]any{"status": status, "code": domain.ErrorCode(err), "detail": domain.ErrorMessage(err)})
	}
	rule := ratelimit.Rule{Name: "forgot-ip", Limit: 1, Window: 15 * time.Minute}
	e.POST("/api/auth/password/forgot", func(c echo.Context) error { return c.NoContent(http.StatusAccepted) },
		ratelimit.Middleware(b.lim, rule, ratelimit.IPKey, zerolog.Nop()))
	do := func() *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/api/auth/password/forgot", nil)
		req.RemoteAddr = "192.0.2.1:4000"
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		return rec
	}

	rec := do()
	require.Equal(t, http.StatusAccepted, rec.Code)
	require.Equal(t, "0", rec.Header().Get("RateLimit-Remaining"))

	rec = do()
	require.Equal(t, http.StatusTooManyRequests, rec.Code)
	require.Equal(t, "application/problem+json", rec.Header().Get(echo.HeaderContentType))
	require.Equal(t, "900", rec.Header().Get("Retry-After"))
	require.Equal(t, "1", rec.Header().Get("RateLimit-Limit"))
	require.Equal(t, "0", rec.Header().Get("RateLimit-Remaining"))
	require.Equal(t, "900", rec.Header().Get("RateLimit-Reset"))
	require.JSONEq(t, `{"status":429,"code":"rate_limited","detail":"Too many requests; try again in 900 seconds."}`, rec.Body.String())
}

func TestMiddlewareReportsTheTightestLimit(t *testing.T) {
	t.Parallel()
	_, b := setup(t)
	e := newEcho()
	caller := func(echo.Context) string { return "user-1" }
	api := ratelimit.Middleware(b.lim, ratelimit.Rule{Name: "api", Limit: 600, Window: time.Minute}, caller, zerolog.Nop())
	evaluate := ratelimit.Middleware(b.lim, ratelimit.Rule{Name: "evaluate", Limit: 10, Window: time.Minute}, caller, zerolog.Nop())
	calls := 0

	rec, err := serve(t, e, func(next echo.HandlerFunc) echo.HandlerFunc { return api(evaluate(next)) }, "192.0.2.1:1", &calls)
	require.NoError(t, err)
	require.Equal(t, "10", rec.Header().Get("RateLimit-Limit"))
	require.Equal(t, "9", rec.Header().Get("RateLimit-Remaining"))

	rec, err = serve(t, e, func(next echo.HandlerFunc) echo.HandlerFunc { return evaluate(api(next)) }, "192.0.2.1:1", &calls)
	require.NoError(t, err)
	require.Equal(t, "10", rec.Header().Get("RateLimit-Limit"), "the outer, tighter limit is kept")
	require.Equal(t, "8", rec.Header().Get("RateLimit-Remaining"))
}

func TestMiddlewareSkipsEmptyKeys(t *testing.T) {
	t.Parallel()
	_, b := setup(t)
	mw := ratelimit.Middleware(b.lim, ratelimit.Rule{Name: "api", Limit: 1, Window: time.Minute},
		func(echo.Context) string { return "" }, zerolog.Nop())
	calls := 0
	for range 3 {
		rec, err := serve(t, newEcho(), mw, "192.0.2.1:1", &calls)
		require.NoError(t, err)
		require.Empty(t, rec.Header().Get("RateLimit-Limit"))
	}
	require.Equal(t, 3, calls)
	require.Zero(t, rows(testContext(t), t, b.pool))
}

func TestMiddlewareFailsOpen(t *testing.T) {
	t.Parallel()
	_, b := setup(t)
	var logs bytes.Buffer
	mw := ratelimit.Middleware(b.lim, ratelimit.Rule{Name: "login-ip", Limit: 1, Window: time.Minute},
		ratelimit.IPKey, zerolog.New(&logs))
	b.pool.Close() // the store is down

	calls := 0
	for range 3 {
		rec, err := serve(t, newEcho(), mw, "192.0.2.1:1", &calls)
		require.NoError(t, err)
		require.Equal(t, http.StatusNoContent, rec.Code)
		require.Empty(t, rec.Header().Get("RateLimit-Limit"))
	}
	require.Equal(t, 3, calls, "every request goes through while the limiter is down")
	require.Contains(t, logs.String(), `"level":"warn"`)
	require.Contains(t, logs.String(), `"rule":"login-ip"`)
	require.Equal(t, 1, bytes.Count(logs.Bytes(), []byte("\n")), "the warning is sampled, not one per request")
}

func TestMiddlewarePanicsOnWiringMistakes(t *testing.T) {
	t.Parallel()
	lim := ratelimit.New(nil, nil)
	require.Panics(t, func() {
		ratelimit.Middleware(lim, ratelimit.Rule{Name: "x", Limit: 0, Window: time.Minute}, ratelimit.IPKey, zerolog.Nop())
	})
	require.Panics(t, func() {
		ratelimit.Middleware(lim, ratelimit.Rule{Name: "x", Limit: 1, Window: time.Minute}, nil, zerolog.Nop())
	})
}

func TestIPKey(t *testing.T) {
	t.Parallel()
	tests := []struct{ remote, want string }{
		{"192.0.2.1:1234", "192.0.2.1"},
		{"[::ffff:192.0.2.1]:1234", "192.0.2.1"},
		{"[2001:db8:1:2:3:4:5:6]:1234", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2:ffff::1]:1234", "2001:db8:1:2::/64"},
		{"[fe80::1%eth0]:1234", "fe80::/64"},
	}
	for _, tt := range tests {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.RemoteAddr = tt.remote
		req.Header.Set("X-Forwarded-For", "10.9.9.9") // ignored with ExtractIPDirect
		c := newEcho().NewContext(req, httptest.NewRecorder())
		require.Equal(t, tt.want, ratelimit.IPKey(c), tt.remote)
	}
}

func TestDecisionErr(t *testing.T) {
	t.Parallel()
	require.NoError(t, ratelimit.Decision{Allowed: true}.Err())
	tests := []struct {
		retry       time.Duration
		retryHeader string
		want        string
	}{
		{0, "1", "Too many requests; try again in 1 second."},
		{time.Millisecond, "1", "Too many requests; try again in 1 second."},
		{time.Second, "1", "Too many requests; try again in 1 second."},
		{1001 * time.Millisecond, "2", "Too many requests; try again in 2 seconds."},
		{time.Hour, "3600", "Too many requests; try again in 3600 seconds."},
	}
	for _, tt := range tests {
		d := ratelimit.Decision{Limit: 5, RetryAfter: tt.retry, ResetAfter: tt.retry}
		err := d.Err()
		require.ErrorIs(t, err, &domain.Error{Code: domain.ERATELIMITED})
		require.Equal(t, tt.want, domain.ErrorMessage(err))
		h := http.Header{}
		d.SetHeaders(h)
		require.Equal(t, tt.retryHeader, h.Get("Retry-After"), "Retry-After for %s", tt.retry)
	}
}

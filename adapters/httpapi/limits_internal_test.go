package httpapi

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/postgres/pgtest"
	"github.com/vigilhq/vigil/adapters/ratelimit"
)

// TestForgotAndResetLimits checks the limits of the password reset routes, which attach by
// path: stand-in handlers are registered after New, as a later feature's routes would be.
// The forgot handler decodes the body itself, which proves the limit puts it back.
func TestForgotAndResetLimits(t *testing.T) {
	t.Parallel()
	rules := ratelimit.Defaults()
	rules.ForgotIP.Limit = 4
	rules.ForgotEmail.Limit = 2
	rules.ResetIP.Limit = 1
	s := New(Config{Logger: zerolog.Nop(), Limits: &Limits{Limiter: ratelimit.New(pgtest.New(t), nil), Rules: rules}})
	var asked []string
	s.echo.POST(pathForgot, func(c echo.Context) error {
		var req struct {
			Email string `json:"email"`
		}
		if err := decodeJSON(c, &req); err != nil {
			return err
		}
		asked = append(asked, req.Email)
		return c.NoContent(http.StatusAccepted)
	})
	s.echo.POST(pathReset, func(c echo.Context) error { return c.NoContent(http.StatusNoContent) })
	post := func(path, ip, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.RemoteAddr = ip + ":1234"
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		return rec
	}
	forgot := func(ip, email string) *httptest.ResponseRecorder {
		return post(pathForgot, ip, fmt.Sprintf(`{"email":%q}`, email))
	}

	// Per target email, whatever the address and spelling.
	require.Equal(t, http.StatusAccepted, forgot("192.0.2.1", "ann@example.com").Code)
	require.Equal(t, http.StatusAccepted, forgot("192.0.2.2", " ANN@example.com").Code)
	rec := forgot("192.0.2.3", "Ann@Example.com")
	require.Equal(t, http.StatusTooManyRequests, rec.Code, rec.Body.String())
	require.Equal(t, "2", rec.Header().Get("RateLimit-Limit"))
	require.NotEmpty(t, rec.Header().Get("Retry-After"))
	require.Equal(t, []string{"ann@example.com", " ANN@example.com"}, asked, "the handler reads the whole body")

	// Per IP, whatever the email.
	for i := range 3 {
		require.Equal(t, http.StatusAccepted, forgot("192.0.2.9", fmt.Sprintf("u%d@example.com", i)).Code)
	}
	// 192.0.2.9 has made 3 requests; the fourth is its last.
	require.Equal(t, http.StatusAccepted, forgot("192.0.2.9", "u3@example.com").Code)
	rec = forgot("192.0.2.9", "u4@example.com")
	require.Equal(t, http.StatusTooManyRequests, rec.Code)
	require.Equal(t, "4", rec.Header().Get("RateLimit-Limit"))

	// A body the handler rejects is still limited by IP and still rejected.
	rec = post(pathForgot, "192.0.2.20", `{"email": 42}`)
	require.Equal(t, http.StatusBadRequest, rec.Code, rec.Body.String())
	rec = post(pathForgot, "192.0.2.21", `{"email":"big@example.com","pad":"`+strings.Repeat("x", BodyLimit)+`"}`)
	require.Equal(t, http.StatusRequestEntityTooLarge, rec.Code, "an oversized body reaches the handler whole")

	// Reset, per IP.
	require.Equal(t, http.StatusNoContent, post(pathReset, "192.0.2.1", `{}`).Code)
	require.Equal(t, http.StatusTooManyRequests, post(pathReset, "192.0.2.1", `{}`).Code)
	require.Equal(t, http.StatusNoContent, post(pathReset, "192.0.2.2", `{}`).Code)
}

package httpapi

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/tokens"
	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/account"
)

type fakeAPIKeys map[string]Caller

func (f fakeAPIKeys) ResolveAPIKey(_ context.Context, key string) (Caller, error) {
	if c, ok := f[key]; ok {
		return c, nil
	}
	return Caller{}, domain.Errorf(domain.EUNAUTHORIZED, "unknown key")
}

type middlewareBundle struct {
	srv  *Server
	keys *tokens.KeySet
}

func setupMiddleware(t *testing.T, apiKeys APIKeyResolver) *middlewareBundle {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	keys, err := tokens.NewKeySet([]ed25519.PrivateKey{key}, tokens.JWTConfig{Issuer: "https://vigil.test"})
	require.NoError(t, err)
	srv := New(Config{Logger: zerolog.Nop(), AccessTokens: keys, APIKeys: apiKeys})
	whoami := func(c echo.Context) error {
		caller, ok := CallerFrom(c)
		if !ok {
			return c.String(http.StatusTeapot, "no caller")
		}
		return c.JSON(http.StatusOK, map[string]string{"user_id": caller.UserID, "role": string(caller.Role),
			"session_id": caller.SessionID, "api_key_id": caller.APIKeyID})
	}
	srv.echo.GET("/probe", whoami, srv.authenticated)
	srv.echo.GET("/admin-probe", whoami, srv.authenticated, srv.adminOnly)
	srv.echo.GET("/open", whoami)
	return &middlewareBundle{srv: srv, keys: keys}
}

func (b *middlewareBundle) get(path, authorization string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	rec := httptest.NewRecorder()
	b.srv.Handler().ServeHTTP(rec, req)
	return rec
}

func (b *middlewareBundle) token(t *testing.T, role account.Role) string {
	t.Helper()
	tok, _, err := b.keys.Issue(&account.User{ID: "user-" + string(role), Role: role}, "fam-1")
	require.NoError(t, err)
	return tok
}

func TestAuthenticatedMiddleware(t *testing.T) {
	t.Parallel()
	b := setupMiddleware(t, fakeAPIKeys{"vgl_good": {UserID: "key-owner", Role: account.RoleUser, APIKeyID: "k1"}})

	rec := b.get("/probe", "Bearer "+b.token(t, account.RoleUser))
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.JSONEq(t, `{"user_id":"user-user","role":"user","session_id":"fam-1","api_key_id":""}`, rec.Body.String())

	rec = b.get("/probe", "bearer "+b.token(t, account.RoleUser))
	require.Equal(t, http.StatusOK, rec.Code, "the scheme is case-insensitive")

	rec = b.get("/probe", "Bearer vgl_good")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.JSONEq(t, `{"user_id":"key-owner","role":"user","session_id":"","api_key_id":"k1"}`, rec.Body.String())

	for name, tc := range map[string]struct{ header, challenge string }{
		"no header":       {"", `Bearer realm="vigil"`},
		"basic auth":      {"Basic YTpi", `Bearer realm="vigil", error="invalid_request"`},
		"empty bearer":    {"Bearer ", `Bearer realm="vigil", error="invalid_request"`},
		"garbage token":   {"Bearer not.a.token", `Bearer realm="vigil", error="invalid_token"`},
		"unknown API key": {"Bearer vgl_bad", `Bearer realm="vigil", error="invalid_token"`},
	} {
		rec := b.get("/probe", tc.header)
		require.Equal(t, http.StatusUnauthorized, rec.Code, name)
		require.Equal(t, "application/problem+json", rec.Header().Get("Content-Type"), name)
		require.Equal(t, tc.challenge, rec.Header().Get("WWW-Authenticate"), name)
		require.Contains(t, rec.Body.String(), `"code":"unauthorized"`, name)
	}

	noKeys := setupMiddleware(t, nil)
	rec = noKeys.get("/probe", "Bearer vgl_good")
	require.Equal(t, http.StatusUnauthorized, rec.Code, "without a resolver API keys are rejected")

	require.Equal(t, http.StatusTeapot, b.get("/open", "").Code, "no caller outside the middleware")
}

func TestAdminOnlyMiddleware(t *testing.T) {
	t.Parallel()
	b := setupMiddleware(t, nil)
	rec := b.get("/admin-probe", "Bearer "+b.token(t, account.RoleUser))
	require.Equal(t, http.StatusForbidden, rec.Code)
	require.Contains(t, rec.Body.String(), `"code":"forbidden"`)
	require.Equal(t, http.StatusOK, b.get("/admin-probe", "Bearer "+b.token(t, account.RoleAdmin)).Code)
	require.Equal(t, http.StatusUnauthorized, b.get("/admin-probe", "").Code)
}

package httpapi_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestJWKSEndpoint(t *testing.T) {
	t.Parallel()
	b := setupAuth(t, authOpts{})
	rec := b.do(t, http.MethodGet, "/.well-known/jwks.json", "", "")
	require.Equal(t, http.StatusOK, rec.Code)
	require.Contains(t, rec.Header().Get("Content-Type"), "application/json")
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &set))
	require.Len(t, set.Keys, 1)
	k := set.Keys[0]
	require.NotContains(t, k, "d")
	require.Equal(t, "EdDSA", k["alg"])
	require.Equal(t, b.keys.SigningKeyID(), k["kid"])

	// The kid in issued tokens is the one published.
	reg := b.register(t, "jwks@example.com", goodPassword)
	hdr, err := base64.RawURLEncoding.DecodeString(strings.Split(reg.AccessToken, ".")[0])
	require.NoError(t, err)
	require.Contains(t, string(hdr), `"kid":"`+b.keys.SigningKeyID()+`"`)
}

func TestStrictJSONBodies(t *testing.T) {
	t.Parallel()
	b := setupAuth(t, authOpts{})
	for name, tc := range map[string]struct {
		path, body string
		status     int
		detail     string
	}{
		"unknown field":     {"/api/auth/register", `{"email":"a@example.com","password":"long enough pw","role":"admin"}`, 400, `Unknown field "role"`},
		"unknown login":     {"/api/auth/login", `{"email":"a@example.com","password":"x","remember":true}`, 400, `"remember"`},
		"unknown refresh":   {"/api/auth/refresh", `{"refresh_token":"x","family":"y"}`, 400, `"family"`},
		"wrong type":        {"/api/auth/login", `{"email":42,"password":"x"}`, 400, `"email"`},
		"malformed":         {"/api/auth/login", `{"email":`, 400, "not valid JSON"},
		"empty":             {"/api/auth/login", ``, 400, "empty"},
		"array":             {"/api/auth/login", `[]`, 400, "JSON object"},
		"trailing data":     {"/api/auth/login", `{"email":"a@example.com","password":"x"} {}`, 400, "single JSON object"},
		"larger than limit": {"/api/auth/register", `{"name":"` + strings.Repeat("x", 70<<10) + `"}`, 413, "64 KiB"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			rec := b.do(t, http.MethodPost, tc.path, tc.body, "")
			p := requireProblem(t, rec, tc.status, "invalid")
			require.Contains(t, p.Detail, tc.detail)
		})
	}
	require.Zero(t, b.hasher.compares.Load(), "rejected bodies never reach the use cases")
}

func TestLogsNeverContainPasswordsOrTokens(t *testing.T) {
	t.Parallel()
	b := setupAuth(t, authOpts{})
	const secret = "my very secret passphrase 42"
	reg := b.register(t, "logs@example.com", secret)
	require.Equal(t, http.StatusOK, b.login(t, "logs@example.com", secret).Code)
	require.Equal(t, http.StatusUnauthorized, b.login(t, "logs@example.com", secret+"x").Code)
	require.Equal(t, http.StatusOK, b.refresh(t, reg.RefreshToken).Code)
	require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, "/api/me", "", reg.AccessToken).Code)

	logs := b.logs.String()
	require.Contains(t, logs, `"path":"/api/auth/login"`, "the login request is logged")
	require.NotContains(t, logs, "secret passphrase")
	require.NotContains(t, logs, reg.RefreshToken)
	require.NotContains(t, logs, reg.AccessToken)
	require.NotContains(t, logs, strings.Split(reg.AccessToken, ".")[2])
}

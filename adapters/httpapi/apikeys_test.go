package httpapi_test

import (
	"context"
	"crypto/sha256"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/httpapi"
	"github.com/vigilhq/vigil/adapters/postgres"
	"github.com/vigilhq/vigil/domain/account"
	"github.com/vigilhq/vigil/domain/app"
)

// withAPIKeys wires the real API key service (as resolver and manager) and the monitor
// routes, so a key can be tried on /api/monitors too.
func withAPIKeys(t *testing.T) func(*httpapi.Config, *pgxpool.Pool, *fakeClock) {
	t.Helper()
	return func(cfg *httpapi.Config, pool *pgxpool.Pool, clock *fakeClock) {
		svc, err := account.NewAPIKeyService(account.APIKeyDeps{Keys: postgres.NewAPIKeyStore(pool),
			Users: postgres.NewAccountStore(pool, "vigil/test"), Audit: postgres.NewAuditStore(pool), Clock: clock})
		require.NoError(t, err)
		cfg.APIKeys = httpapi.NewAPIKeyResolver(svc)
		cfg.APIKeyManager = svc
		cfg.Monitors = app.NewMonitorService(postgres.NewMonitorStore(pool, "vigil/test"), nil, nil, nil, clock.Now,
			app.MonitorConfig{})
	}
}

var apiKeyFormat = regexp.MustCompile(`^vgl_[A-Za-z0-9]{8}_[A-Za-z0-9_-]{43}$`)

func (b *authBundle) createKey(t *testing.T, token string, body map[string]any) httpapi.NewAPIKeyJSON {
	t.Helper()
	rec := b.do(t, http.MethodPost, "/api/me/api-keys", jsonBody(t, body), token)
	require.Equal(t, http.StatusCreated, rec.Code, "create api key: %s", rec.Body)
	return decode[httpapi.NewAPIKeyJSON](t, rec)
}

func (b *authBundle) insertMonitor(t *testing.T, userID, name string) {
	t.Helper()
	_, err := b.pool.Exec(context.Background(), `
		INSERT INTO monitors (user_id, name, prompt, kind, spec, interval_seconds, next_run_at)
		VALUES ($1, $2, 'Tell me when the price drops', 'current_state', '{}', 3600, now())`, userID, name)
	require.NoError(t, err)
}

func TestAPIKeyLifecycle(t *testing.T) {
	t.Parallel()
	b := setupAuth(t, authOpts{wire: withAPIKeys(t)})
	ann := b.register(t, "ann@example.com", goodPassword)
	bob := b.register(t, "bob@example.com", goodPassword)
	b.insertMonitor(t, ann.User.ID, "Ann's price")
	b.insertMonitor(t, bob.User.ID, "Bob's price")

	created := b.createKey(t, ann.AccessToken, map[string]any{"name": "  CI deploys  "})
	require.Regexp(t, apiKeyFormat, created.Key)
	require.Equal(t, "CI deploys", created.Name)
	require.Equal(t, created.Key[4:12], created.Prefix)
	require.Nil(t, created.ExpiresAt)
	require.Nil(t, created.LastUsedAt)

	// The key works as a bearer credential on every authenticated route.
	rec := b.do(t, http.MethodGet, "/api/me", "", created.Key)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Equal(t, ann.User.ID, decode[httpapi.UserJSON](t, rec).ID)
	rec = b.do(t, http.MethodGet, "/api/monitors", "", created.Key)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	mons := decode[httpapi.MonitorListJSON](t, rec)
	require.Len(t, mons.Monitors, 1, "a key sees its owner's monitors only")
	require.Equal(t, "Ann's price", mons.Monitors[0].Name)

	// Listed without the key; stored as the SHA-256 of the whole key, never the key.
	rec = b.do(t, http.MethodGet, "/api/me/api-keys", "", ann.AccessToken)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Equal(t, "no-store", rec.Header().Get("Cache-Control"))
	require.NotContains(t, rec.Body.String(), created.Key)
	require.NotContains(t, rec.Body.String(), created.Key[13:], "not even the secret part")
	require.NotContains(t, rec.Body.String(), "hash")
	list := decode[httpapi.APIKeyListJSON](t, rec)
	require.Len(t, list.Items, 1)
	require.Equal(t, created.ID, list.Items[0].ID)
	require.Equal(t, created.Prefix, list.Items[0].Prefix)
	require.Equal(t, "CI deploys", list.Items[0].Name)
	require.NotNil(t, list.Items[0].LastUsedAt, "use is noted")

	sum := sha256.Sum256([]byte(created.Key))
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM api_keys WHERE id = $1 AND key_hash = $2 AND prefix = $3`,
		created.ID, sum[:], created.Prefix))
	require.Zero(t, b.count(t, `SELECT count(*) FROM api_keys
		WHERE key_hash = convert_to($1, 'UTF8') OR position(convert_to($2, 'UTF8') IN key_hash) > 0`,
		created.Key, created.Key[13:]))
	audits := b.auditRows(t, account.ActionAPIKeyCreated)
	require.Len(t, audits, 1)
	require.Equal(t, ann.User.ID, audits[0].actor)
	require.Equal(t, "api_key", audits[0].targetType)
	require.Equal(t, created.ID, audits[0].targetID)
	require.NotContains(t, audits[0].metadata, created.Key[13:])

	// Bob can neither see nor revoke Ann's key.
	rec = b.do(t, http.MethodGet, "/api/me/api-keys", "", bob.AccessToken)
	require.Empty(t, decode[httpapi.APIKeyListJSON](t, rec).Items)
	requireProblem(t, b.do(t, http.MethodDelete, "/api/me/api-keys/"+created.ID, "", bob.AccessToken), http.StatusNotFound, "not_found")
	require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, "/api/me", "", created.Key).Code, "still works")

	// Revoked: it stops working at once.
	rec = b.do(t, http.MethodDelete, "/api/me/api-keys/"+created.ID, "", ann.AccessToken)
	require.Equal(t, http.StatusNoContent, rec.Code, rec.Body.String())
	rec = b.do(t, http.MethodGet, "/api/me", "", created.Key)
	requireProblem(t, rec, http.StatusUnauthorized, "unauthorized")
	require.Contains(t, rec.Header().Get("WWW-Authenticate"), `error="invalid_token"`)
	requireProblem(t, b.do(t, http.MethodGet, "/api/monitors", "", created.Key), http.StatusUnauthorized, "unauthorized")
	requireProblem(t, b.do(t, http.MethodDelete, "/api/me/api-keys/"+created.ID, "", ann.AccessToken), http.StatusNotFound, "not_found")
	requireProblem(t, b.do(t, http.MethodDelete, "/api/me/api-keys/not-a-uuid", "", ann.AccessToken), http.StatusNotFound, "not_found")
	rec = b.do(t, http.MethodGet, "/api/me/api-keys", "", ann.AccessToken)
	require.Empty(t, decode[httpapi.APIKeyListJSON](t, rec).Items)
	revoked := b.auditRows(t, account.ActionAPIKeyRevoked)
	require.Len(t, revoked, 1)
	require.Equal(t, ann.User.ID, revoked[0].actor)
	require.Equal(t, created.ID, revoked[0].targetID)
}

func TestAPIKeyRejections(t *testing.T) {
	t.Parallel()
	b := setupAuth(t, authOpts{wire: withAPIKeys(t)})
	ann := b.register(t, "ann@example.com", goodPassword)
	key := b.createKey(t, ann.AccessToken, map[string]any{"name": "script",
		"expires_at": b.clock.Now().Add(time.Hour).Format(time.RFC3339)}).Key
	require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, "/api/me", "", key).Code)

	flip := func(s string, i int) string {
		c := byte('A')
		if s[i] == 'A' {
			c = 'B'
		}
		return s[:i] + string(c) + s[i+1:]
	}
	bad := map[string]string{
		"tampered secret":   flip(key, len(key)-2),
		"tampered prefix":   flip(key, 5),
		"unknown":           "vgl_AAAAAAAA_" + strings.Repeat("A", 43),
		"truncated":         key[:len(key)-1],
		"extended":          key + "A",
		"no separator":      key[:12] + "-" + key[13:],
		"prefix alphabet":   "vgl_AAAA-AAA_" + key[13:],
		"secret not base64": key[:13] + strings.Repeat("*", 43),
		"bare tag":          "vgl_",
	}
	for name, k := range bad {
		rec := b.do(t, http.MethodGet, "/api/me", "", k)
		requireProblem(t, rec, http.StatusUnauthorized, "unauthorized")
		require.Contains(t, rec.Header().Get("WWW-Authenticate"), `error="invalid_token"`, name)
	}

	// Expired with the injected clock.
	b.clock.Advance(time.Hour)
	requireProblem(t, b.do(t, http.MethodGet, "/api/me", "", key), http.StatusUnauthorized, "unauthorized")
}

func TestAPIKeyValidationAndLimit(t *testing.T) {
	t.Parallel()
	b := setupAuth(t, authOpts{wire: withAPIKeys(t)})
	ann := b.register(t, "ann@example.com", goodPassword)
	create := func(body map[string]any) *httptest.ResponseRecorder {
		return b.do(t, http.MethodPost, "/api/me/api-keys", jsonBody(t, body), ann.AccessToken)
	}
	past := b.clock.Now().Add(-time.Minute).Format(time.RFC3339)
	tests := []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{}, "name"},
		{map[string]any{"name": "   "}, "name"},
		{map[string]any{"name": strings.Repeat("x", 201)}, "name"},
		{map[string]any{"name": "tab\there"}, "name"},
		{map[string]any{"name": "ok", "expires_at": past}, "expires_at"},
		{map[string]any{"name": "ok", "expires_at": "tomorrow"}, "expires_at"},
	}
	for _, tt := range tests {
		p := requireProblem(t, create(tt.body), http.StatusUnprocessableEntity, "invalid")
		require.Contains(t, p.Errors, tt.field, "%v", tt.body)
	}
	requireProblem(t, create(map[string]any{"name": "x", "scopes": "all"}), http.StatusBadRequest, "invalid")
	require.Equal(t, http.StatusCreated, create(map[string]any{"name": strings.Repeat("é", 200)}).Code)

	// At most 20 usable keys: expired and revoked ones do not count.
	soon := b.createKey(t, ann.AccessToken, map[string]any{"name": "short-lived",
		"expires_at": b.clock.Now().Add(time.Minute).Format(time.RFC3339)})
	var last httpapi.NewAPIKeyJSON
	for i := 2; i < account.APIKeysActiveMax; i++ {
		last = b.createKey(t, ann.AccessToken, map[string]any{"name": "key"})
	}
	p := requireProblem(t, create(map[string]any{"name": "one too many"}), http.StatusConflict, "conflict")
	require.Contains(t, p.Detail, "20 active API keys")
	require.Equal(t, http.StatusNoContent, b.do(t, http.MethodDelete, "/api/me/api-keys/"+last.ID, "", ann.AccessToken).Code)
	b.createKey(t, ann.AccessToken, map[string]any{"name": "replacement"})
	requireProblem(t, create(map[string]any{"name": "one too many"}), http.StatusConflict, "conflict")
	b.clock.Advance(2 * time.Minute) // soon expires
	b.createKey(t, ann.AccessToken, map[string]any{"name": "after expiry"})
	require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, "/api/me/api-keys", "", ann.AccessToken).Code)
	require.NotEmpty(t, soon.ID)
}

func TestAPIKeyCannotManageKeys(t *testing.T) {
	t.Parallel()
	b := setupAuth(t, authOpts{wire: withAPIKeys(t)})
	ann := b.register(t, "ann@example.com", goodPassword)
	key := b.createKey(t, ann.AccessToken, map[string]any{"name": "script"})
	requireProblem(t, b.do(t, http.MethodPost, "/api/me/api-keys", `{"name":"more"}`, key.Key), http.StatusForbidden, "forbidden")
	requireProblem(t, b.do(t, http.MethodGet, "/api/me/api-keys", "", key.Key), http.StatusForbidden, "forbidden")
	requireProblem(t, b.do(t, http.MethodDelete, "/api/me/api-keys/"+key.ID, "", key.Key), http.StatusForbidden, "forbidden")
	requireProblem(t, b.do(t, http.MethodGet, "/api/me/api-keys", "", ""), http.StatusUnauthorized, "unauthorized")
}

func TestAPIKeyLastUsedAtOncePerMinute(t *testing.T) {
	t.Parallel()
	b := setupAuth(t, authOpts{wire: withAPIKeys(t)})
	ann := b.register(t, "ann@example.com", goodPassword)
	key := b.createKey(t, ann.AccessToken, map[string]any{"name": "poller"})
	lastUsed := func() time.Time {
		var at time.Time
		require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT last_used_at FROM api_keys WHERE id = $1`, key.ID).Scan(&at))
		return at
	}
	require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, "/api/me", "", key.Key).Code)
	first := lastUsed()
	require.WithinDuration(t, b.clock.Now(), first, time.Millisecond)
	b.clock.Advance(30 * time.Second)
	require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, "/api/me", "", key.Key).Code)
	require.Equal(t, first, lastUsed(), "not written again within a minute")
	b.clock.Advance(31 * time.Second)
	require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, "/api/me", "", key.Key).Code)
	require.True(t, lastUsed().After(first))
}

func TestAPIKeyOfDisabledOrDeletedUser(t *testing.T) {
	t.Parallel()
	b := setupAuth(t, authOpts{wire: withAPIKeys(t)})
	ann := b.register(t, "ann@example.com", goodPassword)
	key := b.createKey(t, ann.AccessToken, map[string]any{"name": "script"})
	_, err := b.pool.Exec(context.Background(), `UPDATE users SET disabled_at = now() WHERE id = $1`, ann.User.ID)
	require.NoError(t, err)
	requireProblem(t, b.do(t, http.MethodGet, "/api/me", "", key.Key), http.StatusForbidden, "forbidden")
	_, err = b.pool.Exec(context.Background(), `DELETE FROM users WHERE id = $1`, ann.User.ID)
	require.NoError(t, err)
	require.Zero(t, b.count(t, `SELECT count(*) FROM api_keys WHERE id = $1`, key.ID), "keys go with the account")
	requireProblem(t, b.do(t, http.MethodGet, "/api/me", "", key.Key), http.StatusUnauthorized, "unauthorized")
}

// TestAPIKeyScopes: ASVS 4.0.3 V4.1.3 (least privilege) and V1.4.x. A read key reads; a
// monitors key also changes monitors and nothing else; a full key changes everything but
// the password and the account's existence, which need the owner signed in.
func TestAPIKeyScopes(t *testing.T) {
	t.Parallel()
	b := setupAuth(t, authOpts{wire: withAPIKeys(t)})
	ann := b.register(t, "ann@example.com", goodPassword)
	p := requireProblem(t, b.do(t, http.MethodPost, "/api/me/api-keys", `{"name":"x","scope":"admin"}`, ann.AccessToken),
		http.StatusUnprocessableEntity, "invalid")
	require.Contains(t, p.Errors, "scope")
	read := b.createKey(t, ann.AccessToken, map[string]any{"name": "dashboard", "scope": "read"})
	mons := b.createKey(t, ann.AccessToken, map[string]any{"name": "importer", "scope": "monitors"})
	full := b.createKey(t, ann.AccessToken, map[string]any{"name": "ops"})
	require.Equal(t, "read", read.Scope)
	require.Equal(t, "monitors", mons.Scope)
	require.Equal(t, "full", full.Scope, "a key made without a scope is full, as keys were before scopes")

	scoped := func(key string, method, path, body string) int {
		rec := b.do(t, method, path, body, key)
		if rec.Code == http.StatusForbidden {
			p := requireProblem(t, rec, http.StatusForbidden, "forbidden")
			require.Contains(t, p.Detail, "scope", "%s %s", method, path)
		}
		return rec.Code
	}
	for _, key := range []string{read.Key, mons.Key, full.Key} {
		require.Equal(t, http.StatusOK, scoped(key, http.MethodGet, "/api/monitors", ""))
		require.Equal(t, http.StatusOK, scoped(key, http.MethodGet, "/api/me", ""))
	}
	// Writes to monitors: refused for read, passed on (then judged by the handler) for the others.
	require.Equal(t, http.StatusForbidden, scoped(read.Key, http.MethodPost, "/api/monitors", `{"prompt":"x"}`))
	require.Equal(t, http.StatusForbidden, scoped(read.Key, http.MethodDelete, "/api/monitors/01900000-0000-7000-8000-000000000000", ""))
	require.Equal(t, http.StatusNotFound, scoped(mons.Key, http.MethodDelete, "/api/monitors/01900000-0000-7000-8000-000000000000", ""))
	require.Equal(t, http.StatusNotFound, scoped(full.Key, http.MethodDelete, "/api/monitors/01900000-0000-7000-8000-000000000000", ""))
	// Writes elsewhere: only full.
	rename := `{"name":"Ann B."}`
	require.Equal(t, http.StatusForbidden, scoped(read.Key, http.MethodPatch, "/api/me", rename))
	require.Equal(t, http.StatusForbidden, scoped(mons.Key, http.MethodPatch, "/api/me", rename))
	require.Equal(t, http.StatusOK, scoped(full.Key, http.MethodPatch, "/api/me", rename))
	// The password is the owner's alone.
	change := jsonBody(t, map[string]string{"current_password": goodPassword, "new_password": "another long passphrase"})
	p = requireProblem(t, b.do(t, http.MethodPatch, "/api/me", change, full.Key), http.StatusForbidden, "forbidden")
	require.Contains(t, p.Detail, "cannot change the password")
	require.Equal(t, http.StatusOK, b.login(t, "ann@example.com", goodPassword).Code, "the password is unchanged")

	list := decode[httpapi.APIKeyListJSON](t, b.do(t, http.MethodGet, "/api/me/api-keys", "", ann.AccessToken))
	scopes := map[string]string{}
	for _, k := range list.Items {
		scopes[k.Name] = k.Scope
	}
	require.Equal(t, map[string]string{"dashboard": "read", "importer": "monitors", "ops": "full"}, scopes)
	rows := b.auditRows(t, account.ActionAPIKeyCreated)
	require.Len(t, rows, 3)
	require.Contains(t, rows[0].metadata, `"scope": "read"`)
}

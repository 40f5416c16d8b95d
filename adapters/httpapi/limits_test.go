package httpapi_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/httpapi"
	"github.com/vigilhq/vigil/adapters/postgres"
	"github.com/vigilhq/vigil/adapters/postgres/pgtest"
	"github.com/vigilhq/vigil/adapters/ratelimit"
)

// withLimits wires the limits with rules on the bundle's pool (one Limiter per server, the
// per-caller limit from leases, as in production).
func withLimits(rules ratelimit.Rules) func(*httpapi.Config, *pgxpool.Pool, *fakeClock) {
	return func(cfg *httpapi.Config, pool *pgxpool.Pool, _ *fakeClock) {
		lim := ratelimit.New(pool, nil)
		cfg.Limits = &httpapi.Limits{Limiter: lim, Leases: ratelimit.NewLeases(lim, nil), Rules: rules}
	}
}

// wires applies several wire functions in order.
func wires(fns ...func(*httpapi.Config, *pgxpool.Pool, *fakeClock)) func(*httpapi.Config, *pgxpool.Pool, *fakeClock) {
	return func(cfg *httpapi.Config, pool *pgxpool.Pool, clock *fakeClock) {
		for _, fn := range fns {
			fn(cfg, pool, clock)
		}
	}
}

// doFrom sends a request from the client address ip.
func (b *authBundle) doFrom(t *testing.T, ip, method, path, body, token string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	req.RemoteAddr = ip + ":40000"
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	b.h.ServeHTTP(rec, req)
	return rec
}

func loginBody(t *testing.T, email, pw string) string {
	t.Helper()
	return jsonBody(t, map[string]string{"email": email, "password": pw})
}

// requireLimited checks a 429 problem with the rate limit headers of a rule of limit.
func requireLimited(t *testing.T, rec *httptest.ResponseRecorder, limit int) httpapi.Problem {
	t.Helper()
	p := requireProblem(t, rec, http.StatusTooManyRequests, "rate_limited")
	require.NotEmpty(t, rec.Header().Get("Retry-After"))
	require.Equal(t, fmt.Sprint(limit), rec.Header().Get("RateLimit-Limit"))
	require.Equal(t, "0", rec.Header().Get("RateLimit-Remaining"))
	require.NotEmpty(t, rec.Header().Get("RateLimit-Reset"))
	return p
}

func TestLoginLimitPerIP(t *testing.T) {
	t.Parallel()
	rules := ratelimit.Defaults()
	rules.LoginIP.Limit = 3
	b := setupAuth(t, authOpts{wire: withLimits(rules)})
	b.register(t, "ann@example.com", goodPassword)

	for i := range 3 {
		rec := b.doFrom(t, "192.0.2.10", http.MethodPost, "/api/auth/login", loginBody(t, "ann@example.com", "wrong password!"), "")
		requireProblem(t, rec, http.StatusUnauthorized, "unauthorized")
		require.Equal(t, "3", rec.Header().Get("RateLimit-Limit"))
		require.Equal(t, fmt.Sprint(2-i), rec.Header().Get("RateLimit-Remaining"))
	}
	rec := b.doFrom(t, "192.0.2.10", http.MethodPost, "/api/auth/login", loginBody(t, "ann@example.com", goodPassword), "")
	requireLimited(t, rec, 3)
	retry, err := strconv.Atoi(rec.Header().Get("Retry-After"))
	require.NoError(t, err)
	require.True(t, retry >= 1 && retry <= 60, "the window is a minute, got %d", retry)

	// Other addresses are not affected; other endpoints have their own limits.
	rec = b.doFrom(t, "192.0.2.11", http.MethodPost, "/api/auth/login", loginBody(t, "ann@example.com", goodPassword), "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	rec = b.doFrom(t, "192.0.2.10", http.MethodPost, "/api/auth/register",
		jsonBody(t, map[string]string{"email": "bob@example.com", "password": goodPassword}), "")
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	require.Equal(t, "10", rec.Header().Get("RateLimit-Limit"), "the register rule")
	// Unlimited routes carry no headers.
	rec = b.doFrom(t, "192.0.2.10", http.MethodPost, "/api/auth/refresh", `{"refresh_token":"x"}`, "")
	require.Empty(t, rec.Header().Get("RateLimit-Limit"))
}

func TestLoginFailureBudgetAcrossRotatingIPs(t *testing.T) {
	t.Parallel()
	rules := ratelimit.Defaults()
	rules.LoginFailuresAccount.Limit = 3
	b := setupAuth(t, authOpts{wire: withLimits(rules)})
	b.register(t, "ann@example.com", goodPassword)
	b.register(t, "bob@example.com", goodPassword)
	ip := 0
	login := func(email, pw string) *httptest.ResponseRecorder {
		ip++
		return b.doFrom(t, fmt.Sprintf("203.0.113.%d", ip), http.MethodPost, "/api/auth/login", loginBody(t, email, pw), "")
	}

	// Successful logins do not spend the budget.
	for range 4 {
		require.Equal(t, http.StatusOK, login("ann@example.com", goodPassword).Code)
	}
	// Three failures, each from a new address, spend it, however the email is spelt.
	for _, email := range []string{"ann@example.com", "ANN@example.com", " ann@Example.com"} {
		requireProblem(t, login(email, "wrong password!"), http.StatusUnauthorized, "unauthorized")
	}
	compares := b.hasher.compares.Load()
	rec := login("ann@example.com", goodPassword)
	p := requireLimited(t, rec, 3)
	require.Contains(t, p.Detail, "Too many failed logins for this account")
	require.Equal(t, compares, b.hasher.compares.Load(), "refused before the password is checked")
	requireLimited(t, login("ann@example.com", "wrong password!"), 3)
	require.Len(t, b.auditRows(t, "login"), 4+3, "refusals are not login attempts")
	// Other accounts are not affected.
	require.Equal(t, http.StatusOK, login("bob@example.com", goodPassword).Code)

	// An unknown email has a budget too, and its refusal reads the same: no enumeration.
	for range 3 {
		requireProblem(t, login("ghost@example.com", "wrong password!"), http.StatusUnauthorized, "unauthorized")
	}
	ghost := requireLimited(t, login("ghost@example.com", "wrong password!"), 3)
	require.Equal(t, p.Detail, ghost.Detail)

	// Invalid requests are not guesses and are not charged.
	for range 5 {
		requireProblem(t, login("bob@example.com", ""), http.StatusUnprocessableEntity, "invalid")
	}
	require.Equal(t, http.StatusOK, login("bob@example.com", goodPassword).Code)
}

func TestLimitsPerCaller(t *testing.T) {
	t.Parallel()
	rules := ratelimit.Defaults()
	rules.API.Limit = 4
	rules.EvaluateNow.Limit = 2
	b := setupAuth(t, authOpts{wire: wires(withAPIKeys(t), withLimits(rules))})
	ann := b.register(t, "ann@example.com", goodPassword)
	bob := b.register(t, "bob@example.com", goodPassword)
	const missing = "01900000-0000-7000-8000-000000000000"

	// Evaluate has its own, tighter limit, reported in the headers; the general one counts too.
	for i := range 2 {
		rec := b.do(t, http.MethodPost, "/api/monitors/"+missing+"/evaluate", "", ann.AccessToken)
		requireProblem(t, rec, http.StatusNotFound, "not_found")
		require.Equal(t, "2", rec.Header().Get("RateLimit-Limit"))
		require.Equal(t, fmt.Sprint(1-i), rec.Header().Get("RateLimit-Remaining"))
	}
	requireLimited(t, b.do(t, http.MethodPost, "/api/monitors/"+missing+"/evaluate", "", ann.AccessToken), 2)

	// The general limit: 3 hits so far (a denied evaluate counted under the general rule).
	rec := b.do(t, http.MethodGet, "/api/me", "", ann.AccessToken)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Equal(t, "4", rec.Header().Get("RateLimit-Limit"))
	require.Equal(t, "0", rec.Header().Get("RateLimit-Remaining"))
	requireLimited(t, b.do(t, http.MethodGet, "/api/monitors", "", ann.AccessToken), 4)

	// Another user, and an API key, are other callers.
	require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, "/api/me", "", bob.AccessToken).Code)
	key := b.createKey(t, bob.AccessToken, map[string]any{"name": "script"})
	for range 4 {
		require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, "/api/me", "", key.Key).Code)
	}
	requireLimited(t, b.do(t, http.MethodGet, "/api/me", "", key.Key), 4)
	// Unauthenticated requests are not counted against anyone.
	requireProblem(t, b.do(t, http.MethodGet, "/api/me", "", ""), http.StatusUnauthorized, "unauthorized")
}

// TestLimitsHoldAcrossTwoServers runs two API servers, each with its own pool and limiter
// on one database, as two processes would, and alternates requests between them.
func TestLimitsHoldAcrossTwoServers(t *testing.T) {
	t.Parallel()
	url := pgtest.NewURL(t)
	open := func() *pgxpool.Pool {
		pool, err := postgres.Open(context.Background(), postgres.PoolConfig{URL: url, AppName: "vigil-test", MaxConns: 4})
		require.NoError(t, err)
		t.Cleanup(pool.Close)
		return pool
	}
	rules := ratelimit.Defaults()
	rules.RegisterIP.Limit = 4
	rules.API.Limit = 6
	wire := wires(withAPIKeys(t), withLimits(rules))
	bundles := []*authBundle{setupAuthOn(t, open(), authOpts{wire: wire}), setupAuthOn(t, open(), authOpts{wire: wire})}
	servers := make([]*httptest.Server, len(bundles))
	for i, b := range bundles {
		servers[i] = httptest.NewServer(b.h)
		t.Cleanup(servers[i].Close)
	}
	send := func(i int, method, path, body, token string) (*http.Response, string) {
		req, err := http.NewRequest(method, servers[i%2].URL+path, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := servers[i%2].Client().Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp, string(raw)
	}

	// Register, per IP: 4 in all, whichever server answers.
	var token string
	statuses := make([]int, 0, 8)
	for i := range 8 {
		resp, body := send(i, http.MethodPost, "/api/auth/register",
			jsonBody(t, map[string]string{"email": fmt.Sprintf("user%d@example.com", i), "password": goodPassword}), "")
		statuses = append(statuses, resp.StatusCode)
		if resp.StatusCode == http.StatusTooManyRequests {
			require.NotEmpty(t, resp.Header.Get("Retry-After"))
			require.Equal(t, "4", resp.Header.Get("RateLimit-Limit"))
			require.Contains(t, body, `"code":"rate_limited"`)
		}
		if i == 0 {
			token = decodeString[httpapi.TokenResponse](t, body).AccessToken
		}
	}
	require.Equal(t, []int{201, 201, 201, 201, 429, 429, 429, 429}, statuses)

	// The general limit per caller, with an API key that both servers accept.
	resp, body := send(0, http.MethodPost, "/api/me/api-keys", `{"name":"both"}`, token)
	require.Equal(t, http.StatusCreated, resp.StatusCode, body)
	key := decodeString[httpapi.NewAPIKeyJSON](t, body).Key
	statuses = statuses[:0]
	for i := range 10 {
		resp, _ := send(i, http.MethodGet, "/api/me", "", key)
		statuses = append(statuses, resp.StatusCode)
	}
	require.Equal(t, []int{200, 200, 200, 200, 200, 200, 429, 429, 429, 429}, statuses)
}

func decodeString[T any](t *testing.T, body string) T {
	t.Helper()
	rec := httptest.NewRecorder()
	rec.Body.WriteString(body)
	return decode[T](t, rec)
}

// TestLimiterOutageFailsOpen: with the limiter's store gone, requests still go through.
func TestLimiterOutageFailsOpen(t *testing.T) {
	t.Parallel()
	dead, err := pgxpool.New(context.Background(), "postgres://nobody@127.0.0.1:1/none?connect_timeout=1")
	require.NoError(t, err)
	t.Cleanup(dead.Close)
	rules := ratelimit.Defaults()
	rules.LoginIP.Limit = 1
	rules.LoginFailuresAccount.Limit = 1
	b := setupAuth(t, authOpts{wire: func(cfg *httpapi.Config, _ *pgxpool.Pool, _ *fakeClock) {
		lim := ratelimit.New(dead, nil)
		cfg.Limits = &httpapi.Limits{Limiter: lim, Leases: ratelimit.NewLeases(lim, nil), Rules: rules}
	}})
	b.register(t, "ann@example.com", goodPassword)
	start := time.Now()
	for range 3 {
		requireProblem(t, b.login(t, "ann@example.com", "wrong password!"), http.StatusUnauthorized, "unauthorized")
	}
	require.Equal(t, http.StatusOK, b.login(t, "ann@example.com", goodPassword).Code)
	require.Less(t, time.Since(start), 30*time.Second)
	require.Contains(t, b.logs.String(), "rate limiter unavailable")
}

// TestCostLimitsPerUser: ASVS 4.0.3 V11.1.4 (anti-automation on costly functions). Creating
// and validating a monitor (an AI classification, a fetch, AI calls) have limits of their
// own per user, shared by the user's token and every API key, so making keys does not
// multiply them; another user has their own.
func TestCostLimitsPerUser(t *testing.T) {
	t.Parallel()
	rules := ratelimit.Defaults()
	rules.ValidateMonitor.Limit = 3
	rules.CreateMonitor.Limit = 2
	b := setupAuth(t, authOpts{wire: wires(withAPIKeys(t), withLimits(rules))})
	ann := b.register(t, "ann@example.com", goodPassword)
	bob := b.register(t, "bob@example.com", goodPassword)
	k1 := b.createKey(t, ann.AccessToken, map[string]any{"name": "one"})
	k2 := b.createKey(t, ann.AccessToken, map[string]any{"name": "two"})
	const missing = "01900000-0000-7000-8000-000000000000"

	// Three validations, through the token and both keys, and both validate routes: the
	// fourth is refused whichever credential asks. (Empty bodies: what is counted is the
	// request, whatever the handler then answers.)
	for i, cred := range []string{ann.AccessToken, k1.Key, k2.Key} {
		path := "/api/monitors/validate"
		if i == 1 {
			path = "/api/monitors/" + missing + "/validate"
		}
		rec := b.do(t, http.MethodPost, path, "", cred)
		require.Equal(t, http.StatusBadRequest, rec.Code, rec.Body.String())
		require.Equal(t, "3", rec.Header().Get("RateLimit-Limit"))
		require.Equal(t, fmt.Sprint(2-i), rec.Header().Get("RateLimit-Remaining"))
	}
	for _, cred := range []string{ann.AccessToken, k1.Key} {
		requireLimited(t, b.do(t, http.MethodPost, "/api/monitors/validate", "", cred), 3)
	}
	// Creation has its own count.
	for range 2 {
		require.Equal(t, http.StatusBadRequest, b.do(t, http.MethodPost, "/api/monitors", "", k2.Key).Code)
	}
	requireLimited(t, b.do(t, http.MethodPost, "/api/monitors", "", ann.AccessToken), 2)
	// Reading is not a cost: the listing still answers.
	require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, "/api/monitors", "", ann.AccessToken).Code)
	// Bob is another user.
	require.Equal(t, http.StatusBadRequest, b.do(t, http.MethodPost, "/api/monitors/validate", "", bob.AccessToken).Code)
	require.Equal(t, http.StatusBadRequest, b.do(t, http.MethodPost, "/api/monitors", "", bob.AccessToken).Code)
}

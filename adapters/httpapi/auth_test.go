package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"crypto/ed25519"
	"crypto/rand"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/httpapi"
	"github.com/vigilhq/vigil/adapters/password"
	"github.com/vigilhq/vigil/adapters/postgres"
	"github.com/vigilhq/vigil/adapters/postgres/pgtest"
	"github.com/vigilhq/vigil/adapters/tokens"
	"github.com/vigilhq/vigil/domain/account"
)

// fakeClock is the injected clock of the account service and the key set.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// countingHasher counts compares, to prove unknown emails pay for one too.
type countingHasher struct {
	account.PasswordHasher
	compares atomic.Int64
}

func (h *countingHasher) Compare(hash, pw string) (bool, error) {
	h.compares.Add(1)
	return h.PasswordHasher.Compare(hash, pw)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type authBundle struct {
	pool   *pgxpool.Pool
	h      http.Handler
	clock  *fakeClock
	hasher *countingHasher
	keys   *tokens.KeySet
	logs   *syncBuffer
	// accounts is the account use cases the server runs on.
	accounts *account.Service
}

type authOpts struct {
	beta    bool
	apiKeys httpapi.APIKeyResolver
	// wire adds to the server's config before it is built (api keys, admin, rate limits);
	// it gets the bundle's pool and clock.
	wire func(cfg *httpapi.Config, pool *pgxpool.Pool, clock *fakeClock)
	// deps adds to the account service's ports before it is built (password reset, google
	// sign-in).
	deps func(d *account.Deps, pool *pgxpool.Pool)
}

func setupAuth(t *testing.T, opts authOpts) *authBundle {
	t.Helper()
	return setupAuthOn(t, pgtest.New(t), opts)
}

// setupAuthOn builds the real stack (Postgres stores, bcrypt at the minimum cost, JWT key
// set, Echo server) on pool.
func setupAuthOn(t *testing.T, pool *pgxpool.Pool, opts authOpts) *authBundle {
	t.Helper()
	clock := &fakeClock{t: time.Now().UTC()}
	bcrypt, err := password.New(password.CostMin)
	require.NoError(t, err)
	hasher := &countingHasher{PasswordHasher: bcrypt}
	_, key, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	keys, err := tokens.NewKeySet([]ed25519.PrivateKey{key}, tokens.JWTConfig{Issuer: "https://vigil.test", Now: clock.Now})
	require.NoError(t, err)
	deps := account.Deps{
		Users: postgres.NewAccountStore(pool, "vigil/test"), Sessions: postgres.NewSessionStore(pool),
		Audit: postgres.NewAuditStore(pool), Allowlist: postgres.NewAllowlistStore(pool),
		Hasher: hasher, Tokens: keys, Clock: clock,
	}
	if opts.deps != nil { // password reset, google sign-in
		opts.deps(&deps, pool)
	}
	svc, err := account.NewService(deps, account.Config{Beta: opts.beta})
	require.NoError(t, err)
	logs := &syncBuffer{}
	cfg := httpapi.Config{Logger: zerolog.New(logs).Level(zerolog.DebugLevel), Accounts: svc,
		AccessTokens: keys, APIKeys: opts.apiKeys, TranslateError: postgres.Translate}
	if opts.wire != nil {
		opts.wire(&cfg, pool, clock)
	}
	srv := httpapi.New(cfg)
	return &authBundle{pool: pool, h: srv.Handler(), clock: clock, hasher: hasher, keys: keys, logs: logs, accounts: svc}
}

const userAgent = "vigil-test/1.0"

func (b *authBundle) do(t *testing.T, method, path, body, token string) *httptest.ResponseRecorder {
	t.Helper()
	var req *http.Request
	if body == "" {
		req = httptest.NewRequest(method, path, nil)
	} else {
		req = httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("User-Agent", userAgent)
	req.RemoteAddr = "198.51.100.23:40000"
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	b.h.ServeHTTP(rec, req)
	checkResponseAgainstSpec(t, req, rec)
	return rec
}

func jsonBody(t *testing.T, v any) string {
	t.Helper()
	raw, err := json.Marshal(v)
	require.NoError(t, err)
	return string(raw)
}

func decode[T any](t *testing.T, rec *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &v), "body: %s", rec.Body)
	return v
}

func requireProblem(t *testing.T, rec *httptest.ResponseRecorder, status int, code string) httpapi.Problem {
	t.Helper()
	require.Equal(t, status, rec.Code, "body: %s", rec.Body)
	require.Equal(t, "application/problem+json", rec.Header().Get("Content-Type"))
	p := decode[httpapi.Problem](t, rec)
	require.Equal(t, code, p.Code)
	require.Equal(t, status, p.Status)
	return p
}

const goodPassword = "correct horse battery staple"

func (b *authBundle) register(t *testing.T, email, pw string) httpapi.TokenResponse {
	t.Helper()
	rec := b.do(t, http.MethodPost, "/api/auth/register", jsonBody(t, map[string]string{"email": email, "password": pw, "name": "Ann"}), "")
	require.Equal(t, http.StatusCreated, rec.Code, "register: %s", rec.Body)
	return decode[httpapi.TokenResponse](t, rec)
}

func (b *authBundle) login(t *testing.T, email, pw string) *httptest.ResponseRecorder {
	t.Helper()
	return b.do(t, http.MethodPost, "/api/auth/login", jsonBody(t, map[string]string{"email": email, "password": pw}), "")
}

func (b *authBundle) refresh(t *testing.T, token string) *httptest.ResponseRecorder {
	t.Helper()
	return b.do(t, http.MethodPost, "/api/auth/refresh", jsonBody(t, map[string]string{"refresh_token": token}), "")
}

type auditRow struct {
	actor, action, targetType, targetID, ip, ua, outcome, metadata string
}

func (b *authBundle) auditRows(t *testing.T, action string) []auditRow {
	t.Helper()
	rows, err := b.pool.Query(context.Background(), `
		SELECT coalesce(actor_user_id::text, ''), action, coalesce(target_type, ''), coalesce(target_id, ''),
		       coalesce(host(ip), ''), coalesce(user_agent, ''), outcome, metadata::text
		FROM audit_log WHERE action = $1 ORDER BY created_at, id`, action)
	require.NoError(t, err)
	defer rows.Close()
	var out []auditRow
	for rows.Next() {
		var r auditRow
		require.NoError(t, rows.Scan(&r.actor, &r.action, &r.targetType, &r.targetID, &r.ip, &r.ua, &r.outcome, &r.metadata))
		out = append(out, r)
	}
	require.NoError(t, rows.Err())
	return out
}

func (b *authBundle) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, b.pool.QueryRow(context.Background(), sql, args...).Scan(&n))
	return n
}

func TestRegisterLoginAndMe(t *testing.T) {
	t.Parallel()
	b := setupAuth(t, authOpts{})
	reg := b.register(t, "Ann@Example.com", goodPassword)
	require.Equal(t, "Bearer", reg.TokenType)
	require.Equal(t, 900, reg.ExpiresIn)
	require.NotEmpty(t, reg.AccessToken)
	require.Len(t, reg.RefreshToken, 43)
	require.Equal(t, "Ann@Example.com", reg.User.Email)
	require.Equal(t, "user", reg.User.Role)
	require.Equal(t, "UTC", reg.User.Timezone)
	require.True(t, reg.User.HasPassword)

	rec := b.do(t, http.MethodGet, "/api/me", "", reg.AccessToken)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Equal(t, "no-store", rec.Header().Get("Cache-Control"))
	me := decode[httpapi.UserJSON](t, rec)
	require.Equal(t, reg.User.ID, me.ID)
	require.NotContains(t, rec.Body.String(), "hash")

	rec = b.login(t, "  ANN@example.COM ", goodPassword)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Equal(t, "no-store", rec.Header().Get("Cache-Control"))
	login := decode[httpapi.TokenResponse](t, rec)
	require.Equal(t, reg.User.ID, login.User.ID)
	require.NotNil(t, login.User.LastLoginAt)
	require.NotEqual(t, reg.RefreshToken, login.RefreshToken)

	// The stored refresh token is only a hash.
	require.Zero(t, b.count(t, `SELECT count(*) FROM refresh_tokens WHERE encode(token_hash, 'escape') LIKE '%' || $1 || '%'`, login.RefreshToken))
	require.Equal(t, 2, b.count(t, `SELECT count(DISTINCT family_id) FROM refresh_tokens WHERE user_id = $1`, reg.User.ID))

	regRows := b.auditRows(t, account.ActionRegister)
	require.Len(t, regRows, 1)
	require.Equal(t, auditRow{actor: reg.User.ID, action: "register", targetType: "user", targetID: reg.User.ID,
		ip: "198.51.100.23", ua: userAgent, outcome: "success", metadata: "{}"}, regRows[0])
	logins := b.auditRows(t, account.ActionLogin)
	require.Len(t, logins, 1)
	require.Equal(t, "success", logins[0].outcome)
	require.Equal(t, reg.User.ID, logins[0].actor)
}

func TestRegisterValidation(t *testing.T) {
	t.Parallel()
	b := setupAuth(t, authOpts{})
	cases := []struct {
		name  string
		body  map[string]string
		field string
	}{
		{"short password", map[string]string{"email": "a@example.com", "password": "Sh0rt!pw"}, "password"},
		{"long password", map[string]string{"email": "a@example.com", "password": strings.Repeat("Long", 33)}, "password"},
		{"common password", map[string]string{"email": "a@example.com", "password": "Password123"}, "password"},
		{"common password, 10+", map[string]string{"email": "a@example.com", "password": "qwertyuiop"}, "password"},
		{"empty password", map[string]string{"email": "a@example.com", "password": ""}, "password"},
		{"bad email", map[string]string{"email": "not-an-email", "password": goodPassword}, "email"},
		{"no email", map[string]string{"password": goodPassword}, "email"},
		{"long name", map[string]string{"email": "a@example.com", "password": goodPassword, "name": strings.Repeat("n", 201)}, "name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := b.do(t, http.MethodPost, "/api/auth/register", jsonBody(t, tc.body), "")
			p := requireProblem(t, rec, http.StatusUnprocessableEntity, "invalid")
			require.Contains(t, p.Errors, tc.field)
			if pw := tc.body["password"]; pw != "" {
				require.NotContains(t, rec.Body.String(), pw, "the password is echoed")
			}
		})
	}
}

func TestRegisterDuplicateEmailIsConflict(t *testing.T) {
	t.Parallel()
	b := setupAuth(t, authOpts{})
	b.register(t, "dup@example.com", goodPassword)
	rec := b.do(t, http.MethodPost, "/api/auth/register",
		jsonBody(t, map[string]string{"email": "DUP@Example.COM", "password": "another good passphrase"}), "")
	p := requireProblem(t, rec, http.StatusConflict, "conflict")
	require.Contains(t, p.Errors, "email")
}

func TestLoginBadCredentials(t *testing.T) {
	t.Parallel()
	b := setupAuth(t, authOpts{})
	reg := b.register(t, "known@example.com", goodPassword)

	before := b.hasher.compares.Load()
	unknown := b.login(t, "Nobody@Example.com", "whatever password 1")
	require.Equal(t, before+1, b.hasher.compares.Load(), "an unknown email still pays for one compare")
	before = b.hasher.compares.Load()
	wrong := b.login(t, "known@example.com", "whatever password 2")
	require.Equal(t, before+1, b.hasher.compares.Load())

	p1 := requireProblem(t, unknown, http.StatusUnauthorized, "unauthorized")
	p2 := requireProblem(t, wrong, http.StatusUnauthorized, "unauthorized")
	require.Equal(t, "Email or password is incorrect.", p1.Detail)
	require.Equal(t, p1, p2, "unknown email and wrong password answer alike")

	rows := b.auditRows(t, account.ActionLogin)
	require.Len(t, rows, 2)
	require.Equal(t, "", rows[0].actor, "unknown email: no actor")
	require.Equal(t, "failure", rows[0].outcome)
	require.Contains(t, rows[0].metadata, `"email": "nobody@example.com"`)
	require.Equal(t, reg.User.ID, rows[1].actor)
	require.Equal(t, "failure", rows[1].outcome)
	for _, r := range rows {
		require.NotContains(t, r.metadata, "whatever password")
	}
	require.Zero(t, b.count(t, `SELECT count(*) FROM audit_log WHERE metadata::text LIKE '%whatever%'`))

	rec := b.do(t, http.MethodPost, "/api/auth/login", `{"email":"known@example.com"}`, "")
	p := requireProblem(t, rec, http.StatusUnprocessableEntity, "invalid")
	require.Contains(t, p.Errors, "password")
}

func TestRefreshRotationAndReuseDetection(t *testing.T) {
	t.Parallel()
	b := setupAuth(t, authOpts{})
	reg := b.register(t, "rotate@example.com", goodPassword)

	rec := b.refresh(t, reg.RefreshToken)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	second := decode[httpapi.TokenResponse](t, rec)
	require.NotEqual(t, reg.RefreshToken, second.RefreshToken)
	require.Equal(t, "Bearer", second.TokenType)
	require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, "/api/me", "", second.AccessToken).Code)

	rec = b.refresh(t, second.RefreshToken)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	third := decode[httpapi.TokenResponse](t, rec)

	var family string
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT DISTINCT family_id::text FROM refresh_tokens WHERE user_id = $1`,
		reg.User.ID).Scan(&family))
	require.Equal(t, 3, b.count(t, `SELECT count(*) FROM refresh_tokens WHERE family_id = $1`, family))
	require.Equal(t, 2, b.count(t, `SELECT count(*) FROM refresh_tokens WHERE family_id = $1 AND parent_id IS NOT NULL`, family))
	require.Equal(t, 2, b.count(t, `SELECT count(*) FROM refresh_tokens WHERE family_id = $1 AND used_at IS NOT NULL`, family))

	// The first token was spent: presenting it again is reuse, and kills the family.
	requireProblem(t, b.refresh(t, reg.RefreshToken), http.StatusUnauthorized, "unauthorized")
	requireProblem(t, b.refresh(t, third.RefreshToken), http.StatusUnauthorized, "unauthorized")
	require.Equal(t, 3, b.count(t, `SELECT count(*) FROM refresh_tokens WHERE family_id = $1 AND revoked_at IS NOT NULL`, family))

	rows := b.auditRows(t, account.ActionRefreshReuseDetected)
	require.Len(t, rows, 1)
	require.Equal(t, reg.User.ID, rows[0].actor)
	require.Equal(t, "refresh_family", rows[0].targetType)
	require.Equal(t, family, rows[0].targetID)
	require.Equal(t, "failure", rows[0].outcome)

	for _, bad := range []string{"", "nonsense", strings.Repeat("A", 43)} {
		requireProblem(t, b.refresh(t, bad), http.StatusUnauthorized, "unauthorized")
	}
}

func TestConcurrentRefreshOfOneTokenSucceedsOnce(t *testing.T) {
	t.Parallel()
	b := setupAuth(t, authOpts{})
	reg := b.register(t, "race@example.com", goodPassword)
	const n = 4
	codes := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = b.refresh(t, reg.RefreshToken).Code
		}()
	}
	wg.Wait()
	ok := 0
	for _, c := range codes {
		if c == http.StatusOK {
			ok++
		} else {
			require.Equal(t, http.StatusUnauthorized, c)
		}
	}
	require.Equal(t, 1, ok, "codes %v", codes)
}

func TestExpiryWithInjectedClock(t *testing.T) {
	t.Parallel()
	b := setupAuth(t, authOpts{})
	reg := b.register(t, "clock@example.com", goodPassword)

	b.clock.Advance(14 * time.Minute)
	require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, "/api/me", "", reg.AccessToken).Code)
	b.clock.Advance(2*time.Minute + tokens.LeewayDefault)
	rec := b.do(t, http.MethodGet, "/api/me", "", reg.AccessToken)
	requireProblem(t, rec, http.StatusUnauthorized, "unauthorized")
	require.Contains(t, rec.Header().Get("WWW-Authenticate"), `error="invalid_token"`)

	// The family lives 30 days from login, however often it refreshes.
	b.clock.Advance(29 * 24 * time.Hour)
	rec = b.refresh(t, reg.RefreshToken)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	next := decode[httpapi.TokenResponse](t, rec)
	b.clock.Advance(24 * time.Hour)
	requireProblem(t, b.refresh(t, next.RefreshToken), http.StatusUnauthorized, "unauthorized")
	require.Empty(t, b.auditRows(t, account.ActionRefreshReuseDetected), "expiry is not reuse")
}

func TestLogout(t *testing.T) {
	t.Parallel()
	b := setupAuth(t, authOpts{})
	reg := b.register(t, "bye@example.com", goodPassword)
	rec := b.refresh(t, reg.RefreshToken)
	require.Equal(t, http.StatusOK, rec.Code)
	current := decode[httpapi.TokenResponse](t, rec)

	body := jsonBody(t, map[string]string{"refresh_token": current.RefreshToken})
	rec = b.do(t, http.MethodPost, "/api/auth/logout", body, "")
	require.Equal(t, http.StatusNoContent, rec.Code, rec.Body.String())
	requireProblem(t, b.refresh(t, current.RefreshToken), http.StatusUnauthorized, "unauthorized")
	require.Equal(t, http.StatusNoContent, b.do(t, http.MethodPost, "/api/auth/logout", body, "").Code, "logging out twice is fine")
	require.Equal(t, http.StatusNoContent, b.do(t, http.MethodPost, "/api/auth/logout", `{"refresh_token":"junk"}`, "").Code)

	rows := b.auditRows(t, account.ActionLogout)
	require.Len(t, rows, 2)
	require.Equal(t, reg.User.ID, rows[0].actor)
	require.Equal(t, "refresh_family", rows[0].targetType)
}

func TestPasswordChangeRevokesOtherSessions(t *testing.T) {
	t.Parallel()
	b := setupAuth(t, authOpts{})
	a := b.register(t, "change@example.com", goodPassword)
	rec := b.login(t, "change@example.com", goodPassword)
	require.Equal(t, http.StatusOK, rec.Code)
	other := decode[httpapi.TokenResponse](t, rec)

	patch := func(body any) *httptest.ResponseRecorder {
		return b.do(t, http.MethodPatch, "/api/me", jsonBody(t, body), a.AccessToken)
	}
	p := requireProblem(t, patch(map[string]string{"current_password": "wrong password here", "new_password": "a brand new passphrase"}),
		http.StatusUnprocessableEntity, "invalid")
	require.Contains(t, p.Errors, "current_password")
	p = requireProblem(t, patch(map[string]string{"new_password": "a brand new passphrase"}), http.StatusUnprocessableEntity, "invalid")
	require.Contains(t, p.Errors, "current_password")
	p = requireProblem(t, patch(map[string]string{"current_password": goodPassword, "new_password": "iloveyou123"}),
		http.StatusUnprocessableEntity, "invalid")
	require.Contains(t, p.Errors, "new_password")

	rec = patch(map[string]string{"current_password": goodPassword, "new_password": "a brand new passphrase"})
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())

	requireProblem(t, b.refresh(t, other.RefreshToken), http.StatusUnauthorized, "unauthorized")
	require.Equal(t, http.StatusOK, b.refresh(t, a.RefreshToken).Code, "the session that changed the password survives")
	requireProblem(t, b.login(t, "change@example.com", goodPassword), http.StatusUnauthorized, "unauthorized")
	require.Equal(t, http.StatusOK, b.login(t, "change@example.com", "a brand new passphrase").Code)

	rows := b.auditRows(t, account.ActionPasswordChanged)
	require.Len(t, rows, 2)
	require.Equal(t, "failure", rows[0].outcome)
	require.Equal(t, "success", rows[1].outcome)
	require.Zero(t, b.count(t, `SELECT count(*) FROM audit_log WHERE metadata::text LIKE '%passphrase%' OR metadata::text LIKE '%horse%'`))
}

func TestPatchMeProfile(t *testing.T) {
	t.Parallel()
	b := setupAuth(t, authOpts{})
	reg := b.register(t, "profile@example.com", goodPassword)
	rec := b.do(t, http.MethodPatch, "/api/me",
		`{"name":" Ann Lee ","timezone":"Europe/Berlin","digest_hour":6,"notifications_enabled":false}`, reg.AccessToken)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	u := decode[httpapi.UserJSON](t, rec)
	require.Equal(t, "Ann Lee", u.Name)
	require.Equal(t, "Europe/Berlin", u.Timezone)
	require.Equal(t, 6, u.DigestHour)
	require.False(t, u.NotificationsEnabled)

	rec = b.do(t, http.MethodGet, "/api/me", "", reg.AccessToken)
	require.Equal(t, u, decode[httpapi.UserJSON](t, rec))

	p := requireProblem(t, b.do(t, http.MethodPatch, "/api/me", `{"timezone":"Mars/Olympus","digest_hour":24}`, reg.AccessToken),
		http.StatusUnprocessableEntity, "invalid")
	require.Contains(t, p.Errors, "timezone")
	require.Contains(t, p.Errors, "digest_hour")

	p = requireProblem(t, b.do(t, http.MethodPatch, "/api/me", `{"email":"new@example.com"}`, reg.AccessToken),
		http.StatusBadRequest, "invalid")
	require.Contains(t, p.Detail, `"email"`)
	p = requireProblem(t, b.do(t, http.MethodPatch, "/api/me", `{"digest_hour":"six"}`, reg.AccessToken), http.StatusBadRequest, "invalid")
	require.Contains(t, p.Detail, "digest_hour")

	requireProblem(t, b.do(t, http.MethodPatch, "/api/me", `{"name":"x"}`, ""), http.StatusUnauthorized, "unauthorized")
}

func TestBetaAllowlist(t *testing.T) {
	t.Parallel()
	pool := pgtest.New(t)
	open := setupAuthOn(t, pool, authOpts{})
	beta := setupAuthOn(t, pool, authOpts{beta: true})
	_, err := pool.Exec(context.Background(), `INSERT INTO beta_allowlist (pattern, kind) VALUES ('vip@example.com', 'email'), ('@invited.example', 'domain')`)
	require.NoError(t, err)

	// Beta off: anyone registers.
	outsider := open.register(t, "outsider@example.com", goodPassword)

	reg := func(email string) *httptest.ResponseRecorder {
		return beta.do(t, http.MethodPost, "/api/auth/register", jsonBody(t, map[string]string{"email": email, "password": goodPassword}), "")
	}
	p := requireProblem(t, reg("stranger@example.com"), http.StatusForbidden, "forbidden")
	require.Equal(t, "Vigil is in private beta; ask for an invitation.", p.Detail)
	p2 := requireProblem(t, reg("OUTSIDER@example.com"), http.StatusForbidden, "forbidden")
	require.Equal(t, p.Detail, p2.Detail, "an existing account gets the same answer")
	require.Equal(t, http.StatusCreated, reg("VIP@example.com").Code)
	require.Equal(t, http.StatusCreated, reg("anyone@invited.example").Code)
	requireProblem(t, reg("anyone@sub.invited.example"), http.StatusForbidden, "forbidden")

	// Login checks credentials first, the allowlist second.
	requireProblem(t, beta.login(t, "outsider@example.com", "not the password!"), http.StatusUnauthorized, "unauthorized")
	p = requireProblem(t, beta.login(t, "outsider@example.com", goodPassword), http.StatusForbidden, "forbidden")
	require.Equal(t, "Vigil is in private beta; ask for an invitation.", p.Detail)
	require.Equal(t, http.StatusOK, beta.login(t, "vip@example.com", goodPassword).Code)
	require.Equal(t, http.StatusOK, open.login(t, "outsider@example.com", goodPassword).Code, "beta off lets them in")

	var reasons []string
	for _, r := range beta.auditRows(t, account.ActionLogin) {
		if r.actor == outsider.User.ID && r.outcome == "failure" {
			reasons = append(reasons, r.metadata)
		}
	}
	require.Len(t, reasons, 2)
	require.Contains(t, reasons[1], "not_allowlisted")
}

// TestDeleteMe: ASVS 4.0.3 V2.5.x and V3.7.1 (re-authentication before a sensitive
// operation). Deleting the account needs the current password, and no API key can do it,
// whatever its scope.
func TestDeleteMe(t *testing.T) {
	t.Parallel()
	b := setupAuth(t, authOpts{wire: withAPIKeys(t)})
	reg := b.register(t, "leaving@example.com", goodPassword)
	keep := b.register(t, "staying@example.com", goodPassword)
	for _, owner := range []string{reg.User.ID, keep.User.ID} {
		_, err := b.pool.Exec(context.Background(), `
			INSERT INTO monitors (user_id, name, prompt, kind, spec, interval_seconds, next_run_at)
			VALUES ($1, 'Price', 'Tell me when the price drops', 'current_state', '{}', 60, now())`, owner)
		require.NoError(t, err)
	}

	requireProblem(t, b.do(t, http.MethodDelete, "/api/me", "", ""), http.StatusUnauthorized, "unauthorized")
	p := requireProblem(t, b.do(t, http.MethodDelete, "/api/me", "", reg.AccessToken), http.StatusUnprocessableEntity, "invalid")
	require.Contains(t, p.Errors["current_password"], "is required")
	p = requireProblem(t, b.do(t, http.MethodDelete, "/api/me", `{"current_password":"not the password"}`, reg.AccessToken),
		http.StatusUnprocessableEntity, "invalid")
	require.Equal(t, "is incorrect", p.Errors["current_password"])
	key := b.createKey(t, reg.AccessToken, map[string]any{"name": "everything", "scope": "full"})
	p = requireProblem(t, b.do(t, http.MethodDelete, "/api/me", jsonBody(t, map[string]string{"current_password": goodPassword}), key.Key),
		http.StatusForbidden, "forbidden")
	require.Contains(t, p.Detail, "API keys cannot delete the account")
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM users WHERE id = $1`, reg.User.ID), "still there")
	failed := b.auditRows(t, account.ActionAccountDeleted)
	require.Len(t, failed, 1, "the wrong password is audited")
	require.Equal(t, account.OutcomeFailure, failed[0].outcome)

	rec := b.do(t, http.MethodDelete, "/api/me", jsonBody(t, map[string]string{"current_password": goodPassword}), reg.AccessToken)
	require.Equal(t, http.StatusNoContent, rec.Code, rec.Body.String())

	require.Zero(t, b.count(t, `SELECT count(*) FROM users WHERE id = $1`, reg.User.ID))
	require.Zero(t, b.count(t, `SELECT count(*) FROM monitors WHERE user_id = $1`, reg.User.ID))
	require.Zero(t, b.count(t, `SELECT count(*) FROM refresh_tokens WHERE user_id = $1`, reg.User.ID))
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM monitors WHERE user_id = $1`, keep.User.ID))

	requireProblem(t, b.do(t, http.MethodGet, "/api/me", "", reg.AccessToken), http.StatusUnauthorized, "unauthorized")
	requireProblem(t, b.refresh(t, reg.RefreshToken), http.StatusUnauthorized, "unauthorized")
	requireProblem(t, b.login(t, "leaving@example.com", goodPassword), http.StatusUnauthorized, "unauthorized")

	rows := b.auditRows(t, account.ActionAccountDeleted)
	require.Len(t, rows, 2)
	require.Equal(t, "", rows[1].actor)
	require.Equal(t, reg.User.ID, rows[1].targetID)
	require.Equal(t, "user", rows[1].targetType)
}

func TestMyAuditPagination(t *testing.T) {
	t.Parallel()
	b := setupAuth(t, authOpts{})
	reg := b.register(t, "audit@example.com", goodPassword)
	other := b.register(t, "other@example.com", goodPassword)
	tok := reg.RefreshToken
	for range 3 {
		rec := b.refresh(t, tok)
		require.Equal(t, http.StatusOK, rec.Code)
		tok = decode[httpapi.TokenResponse](t, rec).RefreshToken
	}
	require.Equal(t, http.StatusNoContent, b.do(t, http.MethodPost, "/api/auth/logout", jsonBody(t, map[string]string{"refresh_token": tok}), "").Code)
	// Own events: register, logout. The other user's register must not show.
	var actions []string
	cursor := ""
	for pages := 0; pages < 5; pages++ {
		path := "/api/me/audit?limit=1"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		rec := b.do(t, http.MethodGet, path, "", reg.AccessToken)
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		page := decode[httpapi.AuditListJSON](t, rec)
		for _, e := range page.Items {
			actions = append(actions, e.Action)
			require.Equal(t, "198.51.100.23", e.IP)
			require.Equal(t, userAgent, e.UserAgent)
		}
		if page.NextCursor == nil {
			break
		}
		cursor = *page.NextCursor
	}
	require.Equal(t, []string{"logout", "register"}, actions)

	rec := b.do(t, http.MethodGet, "/api/me/audit", "", other.AccessToken)
	require.Equal(t, http.StatusOK, rec.Code)
	page := decode[httpapi.AuditListJSON](t, rec)
	require.Len(t, page.Items, 1)
	require.Nil(t, page.NextCursor)

	for _, q := range []string{"limit=101", "limit=0", "limit=-1", "limit=ten", "cursor=bogus"} {
		p := requireProblem(t, b.do(t, http.MethodGet, "/api/me/audit?"+q, "", reg.AccessToken), http.StatusUnprocessableEntity, "invalid")
		require.NotEmpty(t, p.Errors, q)
	}
	require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, "/api/me/audit?limit=100", "", reg.AccessToken).Code)
}

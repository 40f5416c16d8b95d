package httpapi_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/oauth2-proxy/mockoidc"
	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/google"
	"github.com/vigilhq/vigil/adapters/httpapi"
	"github.com/vigilhq/vigil/adapters/postgres"
	"github.com/vigilhq/vigil/domain/account"
)

type googleBundle struct {
	*authBundle
	oidc    *mockoidc.MockOIDC
	srv     *httptest.Server // the API behind a real HTTP server, the callback's host
	browser *http.Client     // keeps cookies and follows redirects, like a browser
}

// setupGoogle serves the API with Google sign-in pointed at a mockoidc provider.
func setupGoogle(t *testing.T, opts authOpts) *googleBundle {
	t.Helper()
	m, err := mockoidc.NewServer(nil)
	require.NoError(t, err)
	_, err = m.Keypair.KeyID() // computed lazily and unguarded: compute it before serving
	require.NoError(t, err)
	oidcLn, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	require.NoError(t, m.Start(oidcLn, nil))
	t.Cleanup(func() { _ = m.Shutdown() })

	apiLn, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	secret := make([]byte, 32)
	_, err = rand.Read(secret)
	require.NoError(t, err)
	client, err := google.New(google.Config{
		ClientID: m.ClientID, ClientSecret: m.ClientSecret,
		RedirectURL: "http://" + apiLn.Addr().String() + "/api/auth/google/callback",
		Issuer:      m.Issuer(), AuthURL: m.AuthorizationEndpoint(), TokenURL: m.TokenEndpoint(), JWKSURL: m.JWKSEndpoint(),
		StateSecret: secret,
	}, nil)
	require.NoError(t, err)

	opts.deps = func(d *account.Deps, pool *pgxpool.Pool) { d.Google = postgres.NewAccountStore(pool, "vigil/test") }
	opts.wire = func(cfg *httpapi.Config, _ *pgxpool.Pool, _ *fakeClock) {
		cfg.Google, cfg.GoogleAccounts = client, cfg.Accounts.(httpapi.GoogleAccounts)
	}
	b := setupAuth(t, opts)
	srv := httptest.NewUnstartedServer(b.h)
	require.NoError(t, srv.Listener.Close())
	srv.Listener = apiLn
	srv.Start()
	t.Cleanup(srv.Close)
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &googleBundle{authBundle: b, oidc: m, srv: srv, browser: &http.Client{Jar: jar, Timeout: 30 * time.Second}}
}

// signIn runs a whole sign-in in the browser: the login redirect, the provider, the callback.
func (b *googleBundle) signIn(t *testing.T) (*http.Response, []byte) {
	t.Helper()
	resp, err := b.browser.Get(b.srv.URL + "/api/auth/google/login")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, "/api/auth/google/callback", resp.Request.URL.Path, "the browser ends at the callback")
	return resp, body
}

func (b *googleBundle) signInOK(t *testing.T) httpapi.TokenResponse {
	t.Helper()
	resp, body := b.signIn(t)
	require.Equal(t, http.StatusOK, resp.StatusCode, "body: %s", body)
	require.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
	var tr httpapi.TokenResponse
	require.NoError(t, json.Unmarshal(body, &tr))
	require.Equal(t, "Bearer", tr.TokenType)
	require.NotEmpty(t, tr.AccessToken)
	require.NotEmpty(t, tr.RefreshToken)
	requireCookieCleared(t, resp)
	return tr
}

func (b *googleBundle) signInProblem(t *testing.T, status int, code string) httpapi.Problem {
	t.Helper()
	resp, body := b.signIn(t)
	require.Equal(t, status, resp.StatusCode, "body: %s", body)
	requireCookieCleared(t, resp)
	var p httpapi.Problem
	require.NoError(t, json.Unmarshal(body, &p))
	require.Equal(t, code, p.Code)
	return p
}

func requireCookieCleared(t *testing.T, resp *http.Response) {
	t.Helper()
	for _, c := range resp.Cookies() {
		if c.Name == google.CookieName {
			require.Empty(t, c.Value)
			require.Negative(t, c.MaxAge)
			return
		}
	}
	t.Fatalf("the callback did not clear the %s cookie; Set-Cookie: %q", google.CookieName, resp.Header.Values("Set-Cookie"))
}

func (b *googleBundle) googleIdentity(t *testing.T, userID string) (issuer, subject string) {
	t.Helper()
	var iss, sub *string
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT google_issuer, google_subject FROM users WHERE id = $1`, userID).
		Scan(&iss, &sub))
	if iss == nil || sub == nil {
		return "", ""
	}
	return *iss, *sub
}

func TestGoogleSignInCreatesAccount(t *testing.T) {
	t.Parallel()
	b := setupGoogle(t, authOpts{})

	// The login endpoint redirects to the provider and sets the state cookie.
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(b.srv.URL + "/api/auth/google/login")
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusFound, resp.StatusCode)
	to, err := url.Parse(resp.Header.Get("Location"))
	require.NoError(t, err)
	require.Equal(t, b.oidc.AuthorizationEndpoint(), to.Scheme+"://"+to.Host+to.Path)
	require.Equal(t, "S256", to.Query().Get("code_challenge_method"))
	require.NotEmpty(t, to.Query().Get("nonce"))
	require.Len(t, resp.Cookies(), 1)
	require.Equal(t, google.CookieName, resp.Cookies()[0].Name)
	require.True(t, resp.Cookies()[0].HttpOnly)

	tr := b.signInOK(t)
	require.Equal(t, "jane.doe@example.com", tr.User.Email)
	require.Equal(t, "jane.doe", tr.User.Name)
	require.True(t, tr.User.EmailVerified)
	require.False(t, tr.User.HasPassword)
	require.Equal(t, "user", tr.User.Role)
	iss, sub := b.googleIdentity(t, tr.User.ID)
	require.Equal(t, b.oidc.Issuer(), iss)
	require.Equal(t, "1234567890", sub)

	require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, "/api/me", "", tr.AccessToken).Code)
	require.Equal(t, http.StatusOK, b.refresh(t, tr.RefreshToken).Code)
	requireProblem(t, b.login(t, "jane.doe@example.com", goodPassword), http.StatusUnauthorized, "unauthorized")

	rows := b.auditRows(t, account.ActionRegister)
	require.Len(t, rows, 1)
	require.Equal(t, tr.User.ID, rows[0].actor)
	require.Contains(t, rows[0].metadata, `"method": "google"`)

	// Signing in again finds the account by (issuer, subject).
	again := b.signInOK(t)
	require.Equal(t, tr.User.ID, again.User.ID)
	require.NotEqual(t, tr.RefreshToken, again.RefreshToken)
	logins := b.auditRows(t, account.ActionGoogleLogin)
	require.Len(t, logins, 1)
	require.Equal(t, "success", logins[0].outcome)
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM users`))
}

func TestGoogleSignInLinksVerifiedEmail(t *testing.T) {
	t.Parallel()
	b := setupGoogle(t, authOpts{})
	reg := b.register(t, "Jane.Doe@example.com", goodPassword)
	require.False(t, reg.User.EmailVerified)

	tr := b.signInOK(t)
	require.Equal(t, reg.User.ID, tr.User.ID, "the existing account is linked, not duplicated")
	require.True(t, tr.User.HasPassword)
	require.True(t, tr.User.EmailVerified, "Google vouched for the email")
	iss, sub := b.googleIdentity(t, reg.User.ID)
	require.Equal(t, b.oidc.Issuer(), iss)
	require.Equal(t, "1234567890", sub)
	rows := b.auditRows(t, account.ActionGoogleLinked)
	require.Len(t, rows, 1)
	require.Equal(t, reg.User.ID, rows[0].actor)

	require.Equal(t, http.StatusOK, b.login(t, "jane.doe@example.com", goodPassword).Code, "the password still works")
	require.Equal(t, reg.User.ID, b.signInOK(t).User.ID)
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM users`))
}

func TestGoogleSignInRefusesToLinkUnverifiedEmail(t *testing.T) {
	t.Parallel()
	b := setupGoogle(t, authOpts{})
	reg := b.register(t, "victim@example.com", goodPassword)
	mallory := mockoidc.DefaultUser()
	mallory.Subject, mallory.Email, mallory.EmailVerified = "mallory-1", "victim@example.com", false
	b.oidc.QueueUser(mallory)

	p := b.signInProblem(t, http.StatusConflict, "conflict")
	require.Equal(t, "An account with this email exists; sign in with your password first.", p.Detail)
	iss, sub := b.googleIdentity(t, reg.User.ID)
	require.Empty(t, iss+sub, "not linked")
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM users`))
	rows := b.auditRows(t, account.ActionGoogleLogin)
	require.Len(t, rows, 1)
	require.Equal(t, "failure", rows[0].outcome)
	require.Contains(t, rows[0].metadata, "email_unverified")
}

func TestGoogleSignInBadState(t *testing.T) {
	t.Parallel()
	b := setupGoogle(t, authOpts{})
	noFollow := &http.Client{Jar: b.browser.Jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	hop := func(u string) *http.Response {
		resp, err := noFollow.Get(u)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		return resp
	}
	toProvider := hop(b.srv.URL + "/api/auth/google/login")
	require.Equal(t, http.StatusFound, toProvider.StatusCode)
	back := hop(toProvider.Header.Get("Location"))
	require.Equal(t, http.StatusFound, back.StatusCode)
	callback, err := url.Parse(back.Header.Get("Location"))
	require.NoError(t, err)
	q := callback.Query()
	require.NotEmpty(t, q.Get("code"))
	q.Set("state", "forged-state")
	callback.RawQuery = q.Encode()

	resp, err := b.browser.Get(callback.String())
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "body: %s", body)
	require.Contains(t, string(body), `"code":"unauthorized"`)
	requireCookieCleared(t, resp)

	// Without the cookie (another browser) the callback is refused too.
	resp, err = http.Get(b.srv.URL + "/api/auth/google/callback?state=x&code=y")
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	require.Zero(t, b.count(t, `SELECT count(*) FROM users`))
}

func TestGoogleSignInBeta(t *testing.T) {
	t.Parallel()
	b := setupGoogle(t, authOpts{beta: true})
	_, err := b.pool.Exec(context.Background(), `INSERT INTO beta_allowlist (pattern, kind) VALUES ('@invited.example', 'domain')`)
	require.NoError(t, err)

	outsider := mockoidc.DefaultUser()
	outsider.Subject, outsider.Email = "outsider-1", "outsider@example.com"
	b.oidc.QueueUser(outsider)
	p := b.signInProblem(t, http.StatusForbidden, "forbidden")
	require.Equal(t, account.MsgBeta, p.Detail)
	require.Zero(t, b.count(t, `SELECT count(*) FROM users`))

	insider := mockoidc.DefaultUser()
	insider.Subject, insider.Email = "insider-1", "ada@invited.example"
	b.oidc.QueueUser(insider)
	tr := b.signInOK(t)
	require.Equal(t, "ada@invited.example", tr.User.Email)
}

// TestGoogleAccountDeletesItselfOnlyAfterARecentSignIn: ASVS 4.0.3 V3.7.1. An account with
// no password confirms a deletion with a fresh sign-in: a session older than
// account.ReauthWindow is refused, one just made is accepted.
func TestGoogleAccountDeletesItselfOnlyAfterARecentSignIn(t *testing.T) {
	t.Parallel()
	b := setupGoogle(t, authOpts{})
	old := b.signInOK(t)
	b.clock.Advance(account.ReauthWindow + time.Minute)
	p := requireProblem(t, b.do(t, http.MethodDelete, "/api/me", "", old.AccessToken), http.StatusForbidden, "forbidden")
	require.Contains(t, p.Detail, "Sign in with Google again")
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM users WHERE id = $1`, old.User.ID))

	fresh := b.signInOK(t)
	require.Equal(t, old.User.ID, fresh.User.ID)
	require.Equal(t, http.StatusNoContent, b.do(t, http.MethodDelete, "/api/me", "", fresh.AccessToken).Code)
	require.Zero(t, b.count(t, `SELECT count(*) FROM users WHERE id = $1`, old.User.ID))
}

package google

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/oauth2-proxy/mockoidc"
	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/domain"
)

const testRedirectURL = "http://localhost:8080/api/auth/google/callback"

// testClock is an adjustable clock shared by a Client and a fake provider.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newTestClock(now time.Time) *testClock { return &testClock{now: now} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func testSecret(t *testing.T) []byte {
	t.Helper()
	b := make([]byte, 32)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return b
}

// newTestClient fills the settings every test shares and builds a Client on clock.
func newTestClient(t *testing.T, cfg Config, clock *testClock) *Client {
	t.Helper()
	if cfg.RedirectURL == "" {
		cfg.RedirectURL = testRedirectURL
	}
	if cfg.StateSecret == nil {
		cfg.StateSecret = testSecret(t)
	}
	c, err := New(cfg, clock.Now)
	require.NoError(t, err)
	return c
}

// authorize plays the browser at the provider: it follows authURL without following the
// redirect back and returns the callback's query.
func authorize(t *testing.T, authURL string) url.Values {
	t.Helper()
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Get(authURL)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusFound, resp.StatusCode, "authorize should redirect back")
	loc, err := url.Parse(resp.Header.Get("Location"))
	require.NoError(t, err)
	require.Equal(t, "/api/auth/google/callback", loc.Path)
	return loc.Query()
}

// signIn runs a whole sign-in like a browser would and returns Finish's result.
func signIn(t *testing.T, c *Client) (Identity, error) {
	t.Helper()
	authURL, cookie, err := c.Start()
	require.NoError(t, err)
	return c.Finish(context.Background(), authorize(t, authURL), cookie)
}

// requireCode asserts err is a *domain.Error with code and, when msg is not empty, message.
func requireCode(t *testing.T, err error, code, msg string) {
	t.Helper()
	require.Error(t, err)
	var de *domain.Error
	require.True(t, errors.As(err, &de), "want *domain.Error, got %T: %v", err, err)
	require.Equal(t, code, de.Code, "error: %v", err)
	if msg != "" {
		require.Equal(t, msg, de.Message, "error: %v", err)
	}
}

// mockBundle is a Client signing in against mockoidc.
type mockBundle struct {
	oidc   *mockoidc.MockOIDC
	client *Client
	clock  *testClock
}

// setupMock starts mockoidc; prepare runs before it serves (mockoidc's settings are not
// guarded, so they must be set before its goroutines start).
func setupMock(t *testing.T, prepare func(*mockoidc.MockOIDC)) *mockBundle {
	t.Helper()
	m, err := mockoidc.NewServer(nil)
	require.NoError(t, err)
	_, err = m.Keypair.KeyID() // computed lazily and unguarded: compute it before serving
	require.NoError(t, err)
	if prepare != nil {
		prepare(m)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	require.NoError(t, m.Start(ln, nil))
	t.Cleanup(func() { _ = m.Shutdown() })

	clock := newTestClock(time.Now())
	client := newTestClient(t, Config{
		ClientID:     m.ClientID,
		ClientSecret: m.ClientSecret,
		Issuer:       m.Issuer(),
		AuthURL:      m.AuthorizationEndpoint(),
		TokenURL:     m.TokenEndpoint(),
		JWKSURL:      m.JWKSEndpoint(),
	}, clock)
	return &mockBundle{oidc: m, client: client, clock: clock}
}

// fakeProvider is a minimal OIDC provider whose ID tokens the test controls: their claims,
// the key that signs them and the keys it publishes. It records token requests.
type fakeProvider struct {
	srv          *httptest.Server
	clientID     string
	clientSecret string
	clock        *testClock

	mu         sync.Mutex
	signKey    jwk.Key // private key the token endpoint signs with
	published  jwk.Set // public keys served as the JWKS
	jwksStatus int     // when not 0, the JWKS endpoint answers with this status
	jwksHits   int
	codes      map[string]fakeAuthorization
	tokenReqs  []url.Values
	editClaims func(claims map[string]any)
	mint       func(claims map[string]any) string // replaces signing when set
	noIDToken  bool
}

type fakeAuthorization struct {
	nonce, challenge, method string
	used                     bool
}

func newFakeProvider(t *testing.T, clock *testClock) *fakeProvider {
	t.Helper()
	p := &fakeProvider{
		clientID:     "fake-client",
		clientSecret: "fake-secret",
		clock:        clock,
		codes:        map[string]fakeAuthorization{},
		published:    jwk.NewSet(),
	}
	p.signKey = newSigningKey(t, "key-1")
	p.publish(t, p.signKey)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /authorize", p.authorize)
	mux.HandleFunc("POST /token", p.token)
	mux.HandleFunc("GET /jwks", p.jwks)
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

// newSigningKey returns a fresh ES256 private key with kid.
func newSigningKey(t *testing.T, kid string) jwk.Key {
	t.Helper()
	raw, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	key, err := jwk.FromRaw(raw)
	require.NoError(t, err)
	require.NoError(t, key.Set(jwk.KeyIDKey, kid))
	require.NoError(t, key.Set(jwk.AlgorithmKey, jwa.ES256))
	return key
}

// publish adds key's public half to the JWKS.
func (p *fakeProvider) publish(t *testing.T, key jwk.Key) {
	t.Helper()
	pub, err := key.PublicKey()
	require.NoError(t, err)
	p.mu.Lock()
	defer p.mu.Unlock()
	require.NoError(t, p.published.AddKey(pub))
}

// rotate replaces the published keys and the signing key with a new key.
func (p *fakeProvider) rotate(t *testing.T, kid string) {
	t.Helper()
	key := newSigningKey(t, kid)
	p.mu.Lock()
	p.signKey = key
	p.published = jwk.NewSet()
	p.mu.Unlock()
	p.publish(t, key)
}

func (p *fakeProvider) config() Config {
	return Config{
		ClientID:     p.clientID,
		ClientSecret: p.clientSecret,
		Issuer:       p.srv.URL,
		AuthURL:      p.srv.URL + "/authorize",
		TokenURL:     p.srv.URL + "/token",
		JWKSURL:      p.srv.URL + "/jwks",
	}
}

func (p *fakeProvider) tokenRequests() []url.Values {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]url.Values(nil), p.tokenReqs...)
}

func (p *fakeProvider) jwksCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.jwksHits
}

func (p *fakeProvider) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != p.clientID || q.Get("response_type") != "code" {
		http.Error(w, "bad authorization request", http.StatusBadRequest)
		return
	}
	code := rand.Text()
	p.mu.Lock()
	p.codes[code] = fakeAuthorization{
		nonce:     q.Get("nonce"),
		challenge: q.Get("code_challenge"),
		method:    q.Get("code_challenge_method"),
	}
	p.mu.Unlock()
	back, err := url.Parse(q.Get("redirect_uri"))
	if err != nil {
		http.Error(w, "bad redirect_uri", http.StatusBadRequest)
		return
	}
	back.RawQuery = url.Values{"code": {code}, "state": {q.Get("state")}}.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
}

func (p *fakeProvider) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request")
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tokenReqs = append(p.tokenReqs, r.PostForm)

	if r.PostForm.Get("client_id") != p.clientID || r.PostForm.Get("client_secret") != p.clientSecret {
		oauthError(w, http.StatusUnauthorized, "invalid_client")
		return
	}
	code := r.PostForm.Get("code")
	auth, ok := p.codes[code]
	if !ok || auth.used || r.PostForm.Get("grant_type") != "authorization_code" {
		oauthError(w, http.StatusBadRequest, "invalid_grant")
		return
	}
	auth.used = true
	p.codes[code] = auth
	if auth.method != "S256" || s256(r.PostForm.Get("code_verifier")) != auth.challenge {
		oauthError(w, http.StatusBadRequest, "invalid_grant")
		return
	}

	now := p.clock.Now()
	claims := map[string]any{
		"iss":            p.srv.URL,
		"sub":            "fake-subject-42",
		"aud":            p.clientID,
		"azp":            p.clientID,
		"iat":            now.Unix(),
		"exp":            now.Add(time.Hour).Unix(),
		"nonce":          auth.nonce,
		"email":          "ada@example.com",
		"email_verified": true,
		"name":           "Ada Lovelace",
	}
	if p.editClaims != nil {
		p.editClaims(claims)
	}
	resp := map[string]any{"access_token": "fake-access", "token_type": "Bearer", "expires_in": 3600}
	if !p.noIDToken {
		if p.mint != nil {
			resp["id_token"] = p.mint(claims)
		} else {
			resp["id_token"] = signClaims(p.signKey, claims)
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resp)
}

func (p *fakeProvider) jwks(w http.ResponseWriter, _ *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.jwksHits++
	if p.jwksStatus != 0 {
		http.Error(w, "unavailable", p.jwksStatus)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(p.published)
}

func oauthError(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code})
}

// signClaims signs claims as a compact JWS with key's alg and kid. It panics on error
// because it runs inside HTTP handlers; the inputs are the test's own.
func signClaims(key jwk.Key, claims map[string]any) string {
	payload, err := json.Marshal(claims)
	if err != nil {
		panic(err)
	}
	hdr := jws.NewHeaders()
	if err := hdr.Set(jws.KeyIDKey, key.KeyID()); err != nil {
		panic(err)
	}
	if err := hdr.Set(jws.TypeKey, "JWT"); err != nil {
		panic(err)
	}
	signed, err := jws.Sign(payload, jws.WithKey(key.Algorithm(), key, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		panic(err)
	}
	return string(signed)
}

// s256 is RFC 7636's S256 code challenge of verifier, computed independently of oauth2.
func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// set changes the provider's behaviour under its lock, as its handlers read it concurrently.
func (p *fakeProvider) set(change func(p *fakeProvider)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	change(p)
}

// mintUnsigned returns an "alg":"none" token naming the published kid.
func mintUnsigned(claims map[string]any) string {
	hdr := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","kid":"key-1","typ":"JWT"}`))
	payload, err := json.Marshal(claims)
	if err != nil {
		panic(err)
	}
	return hdr + "." + base64.RawURLEncoding.EncodeToString(payload) + "."
}

// mintHMACWithPublicKey signs with HS256 using the published public key as the secret, the
// classic algorithm-confusion forgery.
func mintHMACWithPublicKey(key jwk.Key, claims map[string]any) string {
	pub, err := key.PublicKey()
	if err != nil {
		panic(err)
	}
	secret, err := json.Marshal(pub)
	if err != nil {
		panic(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		panic(err)
	}
	hdr := jws.NewHeaders()
	if err := hdr.Set(jws.KeyIDKey, key.KeyID()); err != nil {
		panic(err)
	}
	signed, err := jws.Sign(payload, jws.WithKey(jwa.HS256, secret, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		panic(err)
	}
	return string(signed)
}

// mintTampered signs claims properly, then swaps in a payload with another subject.
func mintTampered(key jwk.Key, claims map[string]any) string {
	parts := strings.Split(signClaims(key, claims), ".")
	claims["sub"] = "someone-else"
	payload, err := json.Marshal(claims)
	if err != nil {
		panic(err)
	}
	return parts[0] + "." + base64.RawURLEncoding.EncodeToString(payload) + "." + parts[2]
}

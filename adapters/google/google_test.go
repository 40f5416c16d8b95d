package google

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"testing"
	"time"

	gjwt "github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/domain"
)

func TestNew(t *testing.T) {
	t.Parallel()

	t.Run("ReportsEveryProblemAtOnce", func(t *testing.T) {
		t.Parallel()
		_, err := New(Config{
			RedirectURL: "http://vigil.example.com/api/auth/google/callback",
			Scopes:      []string{"email"},
			StateSecret: []byte("short"),
			TokenURL:    "not a url",
		}, nil)
		require.Error(t, err)
		for _, want := range []string{"client id", "client secret", "must use https", "openid", "state secret", "token url"} {
			assert.Contains(t, err.Error(), want)
		}
	})

	t.Run("Defaults", func(t *testing.T) {
		t.Parallel()
		c, err := New(Config{ClientID: "id", ClientSecret: "secret", RedirectURL: "https://vigil.example.com/api/auth/google/callback", StateSecret: testSecret(t)}, nil)
		require.NoError(t, err)
		assert.Equal(t, IssuerDefault, c.cfg.Issuer)
		assert.Equal(t, AuthURLDefault, c.cfg.AuthURL)
		assert.Equal(t, TokenURLDefault, c.cfg.TokenURL)
		assert.Equal(t, JWKSURLDefault, c.cfg.JWKSURL)
		assert.Equal(t, []string{"openid", "email", "profile"}, c.cfg.Scopes)
		assert.NotNil(t, c.cfg.HTTPClient)
		assert.NotNil(t, c.now)
	})

	t.Run("RedirectURL", func(t *testing.T) {
		t.Parallel()
		for raw, ok := range map[string]bool{
			"https://vigil.example.com/cb":      true,
			"http://localhost:8080/cb":          true,
			"http://127.0.0.1:8080/cb":          true,
			"http://[::1]:8080/cb":              true,
			"http://vigil.example.com/cb":       false,
			"/api/auth/google/callback":         false,
			"https://vigil.example.com/cb#frag": false,
			"ftp://vigil.example.com/cb":        false,
		} {
			_, err := New(Config{ClientID: "id", ClientSecret: "secret", RedirectURL: raw, StateSecret: testSecret(t)}, nil)
			if ok {
				assert.NoError(t, err, raw)
			} else {
				assert.ErrorContains(t, err, "redirect url", raw)
			}
		}
	})
}

func TestStart(t *testing.T) {
	t.Parallel()

	t.Run("RedirectsWithStatePKCEAndNonce", func(t *testing.T) {
		t.Parallel()
		p := newFakeProvider(t, newTestClock(time.Now()))
		c := newTestClient(t, p.config(), p.clock)

		authURL, _, err := c.Start()
		require.NoError(t, err)
		u, err := url.Parse(authURL)
		require.NoError(t, err)
		q := u.Query()
		assert.Equal(t, p.srv.URL+"/authorize", u.Scheme+"://"+u.Host+u.Path)
		assert.Equal(t, "code", q.Get("response_type"))
		assert.Equal(t, "fake-client", q.Get("client_id"))
		assert.Equal(t, testRedirectURL, q.Get("redirect_uri"))
		assert.Equal(t, "openid email profile", q.Get("scope"))
		assert.Equal(t, "S256", q.Get("code_challenge_method"))
		assert.Len(t, q.Get("code_challenge"), 43)
		assert.GreaterOrEqual(t, len(q.Get("state")), 43)
		assert.GreaterOrEqual(t, len(q.Get("nonce")), 43)
		assert.Empty(t, q.Get("code_verifier"), "the verifier never goes to the browser")
		assert.NotContains(t, authURL, "fake-secret")
	})

	t.Run("CookieAttributes", func(t *testing.T) {
		t.Parallel()
		for redirect, secure := range map[string]bool{
			"https://vigil.example.com/api/auth/google/callback": true,
			"http://localhost:8080/api/auth/google/callback":     false,
			"http://127.0.0.1:8080/api/auth/google/callback":     false,
		} {
			c := newTestClient(t, Config{ClientID: "id", ClientSecret: "secret", RedirectURL: redirect}, newTestClock(time.Now()))
			_, cookie, err := c.Start()
			require.NoError(t, err)
			assert.Equal(t, CookieName, cookie.Name)
			assert.Equal(t, "/api/auth/google", cookie.Path)
			assert.Equal(t, 600, cookie.MaxAge)
			assert.True(t, cookie.HttpOnly)
			assert.Equal(t, secure, cookie.Secure, redirect)
			assert.Equal(t, http.SameSiteLaxMode, cookie.SameSite)
			assert.NoError(t, cookie.Valid())

			clear := c.ClearCookie()
			assert.Equal(t, CookieName, clear.Name)
			assert.Equal(t, "/api/auth/google", clear.Path)
			assert.Equal(t, -1, clear.MaxAge)
			assert.Empty(t, clear.Value)
			assert.Equal(t, secure, clear.Secure)
		}
	})

	t.Run("CookieHidesItsContents", func(t *testing.T) {
		t.Parallel()
		c := newTestClient(t, Config{ClientID: "id", ClientSecret: "secret"}, newTestClock(time.Now()))
		authURL, cookie, err := c.Start()
		require.NoError(t, err)
		u, err := url.Parse(authURL)
		require.NoError(t, err)
		raw, err := base64.RawURLEncoding.DecodeString(cookie.Value)
		require.NoError(t, err)
		for _, secret := range []string{u.Query().Get("state"), u.Query().Get("nonce")} {
			assert.NotContains(t, cookie.Value, secret)
			assert.NotContains(t, string(raw), secret)
		}
		st, err := c.cookies.open(cookie.Value)
		require.NoError(t, err)
		assert.Equal(t, u.Query().Get("code_challenge"), s256(st.Verifier))
		assert.NotContains(t, string(raw), st.Verifier)
	})

	t.Run("EverySignInIsFresh", func(t *testing.T) {
		t.Parallel()
		c := newTestClient(t, Config{ClientID: "id", ClientSecret: "secret"}, newTestClock(time.Now()))
		url1, cookie1, err := c.Start()
		require.NoError(t, err)
		url2, cookie2, err := c.Start()
		require.NoError(t, err)
		assert.NotEqual(t, url1, url2)
		assert.NotEqual(t, cookie1.Value, cookie2.Value)
	})
}

// claimsUser is a mockoidc user whose ID token claims a test can edit.
type claimsUser struct {
	*mockoidc.MockUser
	edit func(*mockoidc.IDTokenClaims)
}

func (u claimsUser) Claims(scope []string, c *mockoidc.IDTokenClaims) (gjwt.Claims, error) {
	u.edit(c)
	return u.MockUser.Claims(scope, c)
}

func TestSignInMockOIDC(t *testing.T) {
	t.Parallel()

	t.Run("HappyPath", func(t *testing.T) {
		t.Parallel()
		b := setupMock(t, nil)
		id, err := signIn(t, b.client)
		require.NoError(t, err)
		assert.Equal(t, Identity{
			Issuer:        b.oidc.Issuer(),
			Subject:       "1234567890",
			Email:         "jane.doe@example.com",
			EmailVerified: true,
			Name:          "jane.doe",
		}, id)
	})

	t.Run("UnverifiedEmail", func(t *testing.T) {
		t.Parallel()
		b := setupMock(t, nil)
		user := mockoidc.DefaultUser()
		user.Subject, user.Email, user.EmailVerified = "unverified-1", "mallory@example.com", false
		b.oidc.QueueUser(user)
		id, err := signIn(t, b.client)
		require.NoError(t, err)
		assert.Equal(t, "unverified-1", id.Subject)
		assert.Equal(t, "mallory@example.com", id.Email)
		assert.False(t, id.EmailVerified, "an unverified email must never link accounts")
	})

	for name, edit := range map[string]func(*mockoidc.IDTokenClaims){
		"BadNonce":      func(c *mockoidc.IDTokenClaims) { c.Nonce = "nonce-of-another-sign-in" },
		"MissingNonce":  func(c *mockoidc.IDTokenClaims) { c.Nonce = "" },
		"WrongAudience": func(c *mockoidc.IDTokenClaims) { c.Audience = gjwt.ClaimStrings{"another-app"} },
		"WrongIssuer":   func(c *mockoidc.IDTokenClaims) { c.Issuer = "https://evil.example.com" },
		"Expired": func(c *mockoidc.IDTokenClaims) {
			c.IssuedAt = gjwt.NewNumericDate(time.Now().Add(-time.Hour))
			c.ExpiresAt = gjwt.NewNumericDate(time.Now().Add(-2 * time.Minute))
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setupMock(t, nil)
			b.oidc.QueueUser(claimsUser{MockUser: mockoidc.DefaultUser(), edit: edit})
			_, err := signIn(t, b.client)
			requireCode(t, err, domain.EUNAUTHORIZED, "The sign-in could not be verified.")
		})
	}

	t.Run("ExpiredByProviderClock", func(t *testing.T) {
		t.Parallel()
		// The provider's clock is an hour behind ours: its ten-minute token has expired.
		b := setupMock(t, func(m *mockoidc.MockOIDC) { m.FastForward(-time.Hour) })
		_, err := signIn(t, b.client)
		requireCode(t, err, domain.EUNAUTHORIZED, "The sign-in could not be verified.")
		assert.ErrorContains(t, err, "exp")
	})

	t.Run("CodeReplay", func(t *testing.T) {
		t.Parallel()
		b := setupMock(t, nil)
		authURL, cookie, err := b.client.Start()
		require.NoError(t, err)
		query := authorize(t, authURL)
		_, err = b.client.Finish(context.Background(), query, cookie)
		require.NoError(t, err)

		_, err = b.client.Finish(context.Background(), query, cookie)
		requireCode(t, err, domain.EUNAUTHORIZED, "The sign-in could not be verified.")
		assert.NotContains(t, err.Error(), query.Get("code"), "mockoidc echoes the code; we must not")
	})

	t.Run("TokenEndpointFails", func(t *testing.T) {
		t.Parallel()
		b := setupMock(t, nil)
		authURL, cookie, err := b.client.Start()
		require.NoError(t, err)
		query := authorize(t, authURL)
		b.oidc.QueueError(&mockoidc.ServerError{Code: http.StatusInternalServerError, Error: mockoidc.InternalServerError})
		_, err = b.client.Finish(context.Background(), query, cookie)
		requireCode(t, err, domain.EUNAVAILABLE, "")
	})

	t.Run("ProviderUnreachable", func(t *testing.T) {
		t.Parallel()
		b := setupMock(t, nil)
		authURL, cookie, err := b.client.Start()
		require.NoError(t, err)
		query := authorize(t, authURL)
		require.NoError(t, b.oidc.Shutdown())
		_, err = b.client.Finish(context.Background(), query, cookie)
		requireCode(t, err, domain.EUNAVAILABLE, "")
	})
}

func TestSignInFakeProvider(t *testing.T) {
	t.Parallel()

	setup := func(t *testing.T) (*fakeProvider, *Client) {
		t.Helper()
		p := newFakeProvider(t, newTestClock(time.Now()))
		return p, newTestClient(t, p.config(), p.clock)
	}

	t.Run("SendsPKCEVerifier", func(t *testing.T) {
		t.Parallel()
		p, c := setup(t)
		authURL, cookie, err := c.Start()
		require.NoError(t, err)
		u, err := url.Parse(authURL)
		require.NoError(t, err)
		id, err := c.Finish(context.Background(), authorize(t, authURL), cookie)
		require.NoError(t, err)
		assert.Equal(t, Identity{Issuer: p.srv.URL, Subject: "fake-subject-42", Email: "ada@example.com", EmailVerified: true, Name: "Ada Lovelace"}, id)

		reqs := p.tokenRequests()
		require.Len(t, reqs, 1)
		verifier := reqs[0].Get("code_verifier")
		require.NotEmpty(t, verifier, "the token request must carry the PKCE verifier")
		assert.Equal(t, u.Query().Get("code_challenge"), s256(verifier))
		assert.Equal(t, "authorization_code", reqs[0].Get("grant_type"))
		assert.Equal(t, testRedirectURL, reqs[0].Get("redirect_uri"))
	})

	t.Run("SignedByAnotherKeyUnknownKid", func(t *testing.T) {
		t.Parallel()
		p, c := setup(t)
		other := newSigningKey(t, "attacker-key")
		p.set(func(p *fakeProvider) {
			p.mint = func(claims map[string]any) string { return signClaims(other, claims) }
		})
		_, err := signIn(t, c)
		requireCode(t, err, domain.EUNAUTHORIZED, "The sign-in could not be verified.")
	})

	t.Run("SignedByAnotherKeyPublishedKid", func(t *testing.T) {
		t.Parallel()
		p, c := setup(t)
		other := newSigningKey(t, "key-1") // same kid as the published key
		p.set(func(p *fakeProvider) {
			p.mint = func(claims map[string]any) string { return signClaims(other, claims) }
		})
		_, err := signIn(t, c)
		requireCode(t, err, domain.EUNAUTHORIZED, "The sign-in could not be verified.")
	})

	t.Run("AlgNone", func(t *testing.T) {
		t.Parallel()
		p, c := setup(t)
		p.set(func(p *fakeProvider) { p.mint = mintUnsigned })
		_, err := signIn(t, c)
		requireCode(t, err, domain.EUNAUTHORIZED, "The sign-in could not be verified.")
		assert.ErrorContains(t, err, "not allowed")
	})

	t.Run("HMACWithPublicKey", func(t *testing.T) {
		t.Parallel()
		p, c := setup(t)
		p.set(func(p *fakeProvider) {
			key := p.signKey
			p.mint = func(claims map[string]any) string { return mintHMACWithPublicKey(key, claims) }
		})
		_, err := signIn(t, c)
		requireCode(t, err, domain.EUNAUTHORIZED, "The sign-in could not be verified.")
	})

	t.Run("TamperedPayload", func(t *testing.T) {
		t.Parallel()
		p, c := setup(t)
		p.set(func(p *fakeProvider) {
			key := p.signKey
			p.mint = func(claims map[string]any) string { return mintTampered(key, claims) }
		})
		_, err := signIn(t, c)
		requireCode(t, err, domain.EUNAUTHORIZED, "The sign-in could not be verified.")
	})

	for name, tc := range map[string]struct {
		edit func(p *fakeProvider, claims map[string]any)
		ok   bool
	}{
		"WrongAudience":   {edit: func(_ *fakeProvider, c map[string]any) { c["aud"] = "another-app"; delete(c, "azp") }},
		"WrongIssuer":     {edit: func(_ *fakeProvider, c map[string]any) { c["iss"] = "https://evil.example.com" }},
		"MissingIssuer":   {edit: func(_ *fakeProvider, c map[string]any) { delete(c, "iss") }},
		"BadNonce":        {edit: func(_ *fakeProvider, c map[string]any) { c["nonce"] = "nonce-of-another-sign-in" }},
		"MissingNonce":    {edit: func(_ *fakeProvider, c map[string]any) { delete(c, "nonce") }},
		"MissingSubject":  {edit: func(_ *fakeProvider, c map[string]any) { delete(c, "sub") }},
		"MissingExpiry":   {edit: func(_ *fakeProvider, c map[string]any) { delete(c, "exp") }},
		"MissingIssuedAt": {edit: func(_ *fakeProvider, c map[string]any) { delete(c, "iat") }},
		"ForeignAzp":      {edit: func(_ *fakeProvider, c map[string]any) { c["azp"] = "another-app" }},
		"SeveralAudNoAzp": {edit: func(p *fakeProvider, c map[string]any) {
			c["aud"] = []string{p.clientID, "another-app"}
			delete(c, "azp")
		}},
		"SeveralAudWithAzp": {edit: func(p *fakeProvider, c map[string]any) { c["aud"] = []string{p.clientID, "another-app"} }, ok: true},
		"Expired": {edit: func(p *fakeProvider, c map[string]any) {
			c["exp"] = p.clock.Now().Add(-2 * time.Minute).Unix()
		}},
		"ExpiredWithinSkew": {edit: func(p *fakeProvider, c map[string]any) {
			c["exp"] = p.clock.Now().Add(-30 * time.Second).Unix()
		}, ok: true},
		"IssuedInTheFuture": {edit: func(p *fakeProvider, c map[string]any) {
			c["iat"] = p.clock.Now().Add(5 * time.Minute).Unix()
		}},
		"IssuedSlightlyInTheFuture": {edit: func(p *fakeProvider, c map[string]any) {
			c["iat"] = p.clock.Now().Add(30 * time.Second).Unix()
		}, ok: true},
		"NotYetValid": {edit: func(p *fakeProvider, c map[string]any) {
			c["nbf"] = p.clock.Now().Add(5 * time.Minute).Unix()
		}},
	} {
		t.Run("Claims"+name, func(t *testing.T) {
			t.Parallel()
			p, c := setup(t)
			p.set(func(p *fakeProvider) { p.editClaims = func(claims map[string]any) { tc.edit(p, claims) } })
			_, err := signIn(t, c)
			if tc.ok {
				require.NoError(t, err)
				return
			}
			requireCode(t, err, domain.EUNAUTHORIZED, "The sign-in could not be verified.")
		})
	}

	t.Run("EmailVerifiedAsString", func(t *testing.T) {
		t.Parallel()
		p, c := setup(t)
		p.set(func(p *fakeProvider) {
			p.editClaims = func(claims map[string]any) { claims["email_verified"] = "true" }
		})
		id, err := signIn(t, c)
		require.NoError(t, err)
		assert.True(t, id.EmailVerified)
	})

	t.Run("EmailNotVerified", func(t *testing.T) {
		t.Parallel()
		p, c := setup(t)
		p.set(func(p *fakeProvider) { p.editClaims = func(claims map[string]any) { claims["email_verified"] = false } })
		id, err := signIn(t, c)
		require.NoError(t, err)
		assert.False(t, id.EmailVerified)
	})

	t.Run("GoogleBareIssuer", func(t *testing.T) {
		t.Parallel()
		p := newFakeProvider(t, newTestClock(time.Now()))
		cfg := p.config()
		cfg.Issuer = "" // Google's default
		c := newTestClient(t, cfg, p.clock)
		for _, iss := range []string{"accounts.google.com", "https://accounts.google.com"} {
			p.set(func(p *fakeProvider) { p.editClaims = func(claims map[string]any) { claims["iss"] = iss } })
			id, err := signIn(t, c)
			require.NoError(t, err, iss)
			assert.Equal(t, "https://accounts.google.com", id.Issuer, "one account key whatever form Google uses")
		}
	})

	t.Run("NoIDToken", func(t *testing.T) {
		t.Parallel()
		p, c := setup(t)
		p.set(func(p *fakeProvider) { p.noIDToken = true })
		_, err := signIn(t, c)
		requireCode(t, err, domain.EUNAUTHORIZED, "The sign-in could not be verified.")
	})

	t.Run("KeyRotation", func(t *testing.T) {
		t.Parallel()
		p, c := setup(t)
		_, err := signIn(t, c)
		require.NoError(t, err)
		_, err = signIn(t, c)
		require.NoError(t, err)
		assert.Equal(t, 1, p.jwksCount(), "keys are cached")

		p.rotate(t, "key-2")
		p.clock.Add(2 * jwksMinRefresh)
		_, err = signIn(t, c)
		require.NoError(t, err, "an unknown kid refreshes the keys")
		assert.Equal(t, 2, p.jwksCount())

		// A token naming a kid that is still unknown right after a refresh does not fetch again.
		other := newSigningKey(t, "made-up")
		p.set(func(p *fakeProvider) {
			p.mint = func(claims map[string]any) string { return signClaims(other, claims) }
		})
		_, err = signIn(t, c)
		requireCode(t, err, domain.EUNAUTHORIZED, "")
		assert.Equal(t, 2, p.jwksCount(), "unknown kids are rate limited")
	})

	t.Run("JWKSUnavailable", func(t *testing.T) {
		t.Parallel()
		p, c := setup(t)
		p.set(func(p *fakeProvider) { p.jwksStatus = http.StatusServiceUnavailable })
		_, err := signIn(t, c)
		requireCode(t, err, domain.EUNAVAILABLE, "")
	})

	t.Run("StaleKeysOutliveAnOutage", func(t *testing.T) {
		t.Parallel()
		p, c := setup(t)
		_, err := signIn(t, c)
		require.NoError(t, err)
		p.set(func(p *fakeProvider) { p.jwksStatus = http.StatusServiceUnavailable })
		p.clock.Add(jwksMaxAge + time.Minute)
		_, err = signIn(t, c)
		require.NoError(t, err)
		assert.Equal(t, 2, p.jwksCount(), "a refresh was attempted")
	})

	t.Run("ProviderRejectsClient", func(t *testing.T) {
		t.Parallel()
		p := newFakeProvider(t, newTestClock(time.Now()))
		cfg := p.config()
		cfg.ClientSecret = "wrong"
		c := newTestClient(t, cfg, p.clock)
		_, err := signIn(t, c)
		require.Error(t, err)
		assert.Equal(t, domain.EINTERNAL, domain.ErrorCode(err), "a misconfigured client is ours to fix: %v", err)
		assert.NotContains(t, err.Error(), "wrong")
	})
}

func TestFinishState(t *testing.T) {
	t.Parallel()

	// started is a sign-in that reached the callback, ready to be finished or tampered with.
	type started struct {
		p      *fakeProvider
		c      *Client
		query  url.Values
		cookie *http.Cookie
	}
	start := func(t *testing.T) started {
		t.Helper()
		p := newFakeProvider(t, newTestClock(time.Now()))
		c := newTestClient(t, p.config(), p.clock)
		authURL, cookie, err := c.Start()
		require.NoError(t, err)
		return started{p: p, c: c, query: authorize(t, authURL), cookie: cookie}
	}

	for name, tc := range map[string]struct {
		tamper func(t *testing.T, s *started)
		msg    string
	}{
		"TamperedCookie": {msg: "The sign-in could not be verified.", tamper: func(_ *testing.T, s *started) {
			v := []byte(s.cookie.Value)
			i := len(v) / 2
			v[i] = map[bool]byte{true: 'A', false: 'B'}[v[i] != 'A']
			s.cookie = &http.Cookie{Name: CookieName, Value: string(v)}
		}},
		"TruncatedCookie": {msg: "The sign-in could not be verified.", tamper: func(_ *testing.T, s *started) {
			s.cookie = &http.Cookie{Name: CookieName, Value: s.cookie.Value[:20]}
		}},
		"GarbageCookie": {msg: "The sign-in could not be verified.", tamper: func(_ *testing.T, s *started) {
			s.cookie = &http.Cookie{Name: CookieName, Value: "not base64 !!"}
		}},
		"StateMismatch": {msg: "The sign-in could not be verified.", tamper: func(_ *testing.T, s *started) {
			s.query.Set("state", "attacker-state")
		}},
		"MissingState": {msg: "The sign-in could not be verified.", tamper: func(_ *testing.T, s *started) {
			s.query.Del("state")
		}},
		"CookieOfAnotherSignIn": {msg: "The sign-in could not be verified.", tamper: func(t *testing.T, s *started) {
			_, other, err := s.c.Start()
			require.NoError(t, err)
			s.cookie = other
		}},
		"CookieUnderAnotherSecret": {msg: "The sign-in could not be verified.", tamper: func(t *testing.T, s *started) {
			other := newTestClient(t, s.p.config(), s.p.clock)
			st, err := s.c.cookies.open(s.cookie.Value)
			require.NoError(t, err)
			v, err := other.cookies.seal(st)
			require.NoError(t, err)
			s.cookie = &http.Cookie{Name: CookieName, Value: v}
		}},
		"ExpiredCookie": {msg: "The sign-in expired; start again.", tamper: func(_ *testing.T, s *started) {
			s.p.clock.Add(StateTTL + time.Second)
		}},
		"MissingCookie": {msg: "The sign-in expired; start again.", tamper: func(_ *testing.T, s *started) {
			s.cookie = nil
		}},
		"EmptyCookie": {msg: "The sign-in expired; start again.", tamper: func(_ *testing.T, s *started) {
			s.cookie = &http.Cookie{Name: CookieName}
		}},
		"AccessDenied": {msg: "The sign-in was cancelled.", tamper: func(_ *testing.T, s *started) {
			s.query.Del("code")
			s.query.Set("error", "access_denied")
		}},
		"ProviderError": {msg: "The sign-in could not be verified.", tamper: func(_ *testing.T, s *started) {
			s.query.Del("code")
			s.query.Set("error", "server_error")
		}},
		"MissingCode": {msg: "The sign-in could not be verified.", tamper: func(_ *testing.T, s *started) {
			s.query.Del("code")
		}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := start(t)
			code := s.query.Get("code")
			require.NotEmpty(t, code)
			tc.tamper(t, &s)
			_, err := s.c.Finish(context.Background(), s.query, s.cookie)
			requireCode(t, err, domain.EUNAUTHORIZED, tc.msg)
			assert.Empty(t, s.p.tokenRequests(), "a bad state must not reach the token endpoint")
			assert.NotContains(t, err.Error(), code)
		})
	}

	t.Run("JustBeforeExpiry", func(t *testing.T) {
		t.Parallel()
		s := start(t)
		s.p.clock.Add(StateTTL - time.Second)
		_, err := s.c.Finish(context.Background(), s.query, s.cookie)
		require.NoError(t, err)
	})
}

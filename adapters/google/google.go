package google

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/vigilhq/vigil/domain"
)

// Defaults for Config: Google's published endpoints.
const (
	// IssuerDefault is Google's issuer, the iss claim of its ID tokens.
	IssuerDefault = "https://accounts.google.com"
	// AuthURLDefault is Google's authorization endpoint.
	AuthURLDefault = "https://accounts.google.com/o/oauth2/v2/auth"
	// TokenURLDefault is Google's token endpoint.
	TokenURLDefault = "https://oauth2.googleapis.com/token" // #nosec G101 -- Google's public endpoint, not a credential
	// JWKSURLDefault is where Google publishes the keys that sign its ID tokens.
	JWKSURLDefault = "https://www.googleapis.com/oauth2/v3/certs"
	// HTTPTimeoutDefault bounds each call to the provider when Config.HTTPClient is nil.
	HTTPTimeoutDefault = 10 * time.Second
)

// Cookie settings for the sign-in state.
const (
	// CookieName is the name of the cookie that binds a sign-in to the browser that started it.
	CookieName = "vigil_oidc"
	// CookiePath limits the cookie to the sign-in endpoints.
	CookiePath = "/api/auth/google"
	// StateTTL is how long a started sign-in may take to finish.
	StateTTL = 10 * time.Minute
	// MinStateSecretLen is the shortest accepted Config.StateSecret, in bytes.
	MinStateSecretLen = 32
	// ClockSkew is the tolerance on the ID token's exp, iat and nbf.
	ClockSkew = time.Minute
)

// User-facing messages. They never contain codes or tokens.
const (
	msgExpired     = "The sign-in expired; start again."
	msgUnverified  = "The sign-in could not be verified."
	msgCancelled   = "The sign-in was cancelled."
	msgUnavailable = "The sign-in provider is unavailable; try again later."
)

// Config configures a Client. Zero values take Google's defaults where there are any.
type Config struct {
	// ClientID and ClientSecret are the OAuth client registered with the provider.
	ClientID, ClientSecret string
	// RedirectURL is the absolute callback URL registered with the provider: https, or http
	// on a loopback host for development.
	RedirectURL string
	// Issuer is the expected iss claim; default IssuerDefault.
	Issuer string
	// AuthURL, TokenURL and JWKSURL are the provider's endpoints; defaults are Google's.
	AuthURL, TokenURL, JWKSURL string
	// Scopes requested; default openid email profile. Must include openid.
	Scopes []string
	// StateSecret keys the state cookie; at least MinStateSecretLen bytes of randomness.
	// Every API process must share it.
	StateSecret []byte
	// HTTPClient calls the token and JWKS endpoints; default a client with HTTPTimeoutDefault.
	HTTPClient *http.Client
}

// withDefaults returns a copy of cfg with defaults filled in.
func (cfg Config) withDefaults() Config {
	cfg.Issuer = strings.TrimSpace(cfg.Issuer)
	if cfg.Issuer == "" {
		cfg.Issuer = IssuerDefault
	}
	if cfg.AuthURL == "" {
		cfg.AuthURL = AuthURLDefault
	}
	if cfg.TokenURL == "" {
		cfg.TokenURL = TokenURLDefault
	}
	if cfg.JWKSURL == "" {
		cfg.JWKSURL = JWKSURLDefault
	}
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = []string{"openid", "email", "profile"}
	} else {
		cfg.Scopes = slices.Clone(cfg.Scopes)
	}
	cfg.StateSecret = slices.Clone(cfg.StateSecret)
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: HTTPTimeoutDefault}
	}
	return cfg
}

// validate returns every problem with cfg in one error, nil if there is none.
func (cfg Config) validate() error {
	var errs []error
	if strings.TrimSpace(cfg.ClientID) == "" {
		errs = append(errs, errors.New("client id is required"))
	}
	if cfg.ClientSecret == "" {
		errs = append(errs, errors.New("client secret is required"))
	}
	if err := validateRedirectURL(cfg.RedirectURL); err != nil {
		errs = append(errs, err)
	}
	if err := validateEndpoint("issuer", cfg.Issuer); err != nil {
		errs = append(errs, err)
	}
	for _, e := range []struct{ name, value string }{
		{"auth url", cfg.AuthURL}, {"token url", cfg.TokenURL}, {"jwks url", cfg.JWKSURL},
	} {
		if err := validateEndpoint(e.name, e.value); err != nil {
			errs = append(errs, err)
		}
	}
	if !slices.Contains(cfg.Scopes, "openid") {
		errs = append(errs, fmt.Errorf("scopes %q must include openid", cfg.Scopes))
	}
	if len(cfg.StateSecret) < MinStateSecretLen {
		errs = append(errs, fmt.Errorf("state secret must be at least %d bytes, got %d", MinStateSecretLen, len(cfg.StateSecret)))
	}
	return errors.Join(errs...)
}

// validateRedirectURL accepts an absolute https URL, or http on a loopback host, so the
// authorization code never crosses a network in the clear.
func validateRedirectURL(raw string) error {
	if raw == "" {
		return errors.New("redirect url is required")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("redirect url: %w", err)
	}
	switch {
	case u.Host == "":
		return fmt.Errorf("redirect url %q must be absolute", raw)
	case u.Fragment != "":
		return fmt.Errorf("redirect url %q must not have a fragment", raw)
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && isLoopback(u.Hostname()):
		return nil
	default:
		return fmt.Errorf("redirect url %q must use https (http only on localhost)", raw)
	}
}

// validateEndpoint accepts an absolute http or https URL.
func validateEndpoint(name, raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%s %q must be an absolute http(s) url", name, raw)
	}
	return nil
}

// isLoopback reports whether host names this machine.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Identity is who the provider says signed in. Accounts are keyed by (Issuer, Subject); the
// email may change and may belong to someone else until the provider has verified it.
type Identity struct {
	Issuer        string // the configured issuer (Google's scheme-less form normalized)
	Subject       string // the provider's stable user id, the sub claim
	Email         string // may be empty
	EmailVerified bool   // the provider vouches for Email; only then may accounts be linked
	Name          string // name, else preferred_username; may be empty
}

// Client runs sign-ins against one OIDC provider. It is safe for concurrent use.
type Client struct {
	cfg          Config
	now          func() time.Time
	oauth        *oauth2.Config
	cookies      *stateSealer
	keys         *keyCache
	secureCookie bool
}

// New returns a Client for cfg, or an error naming every invalid setting. now is the clock
// (time.Now when nil); tests inject one to expire cookies and tokens.
func New(cfg Config, now func() time.Time) (*Client, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("google sign-in config: %w", err)
	}
	if now == nil {
		now = time.Now
	}
	sealer, err := newStateSealer(cfg.StateSecret)
	if err != nil {
		return nil, fmt.Errorf("google sign-in config: %w", err)
	}
	redirect, _ := url.Parse(cfg.RedirectURL) // validated above
	return &Client{
		cfg: cfg,
		now: now,
		oauth: &oauth2.Config{
			ClientID:     cfg.ClientID,
			ClientSecret: cfg.ClientSecret,
			RedirectURL:  cfg.RedirectURL,
			Scopes:       cfg.Scopes,
			Endpoint: oauth2.Endpoint{
				AuthURL:  cfg.AuthURL,
				TokenURL: cfg.TokenURL,
				// Google accepts both; params is what every provider supports and it costs
				// one request instead of auto-detection's possible two.
				AuthStyle: oauth2.AuthStyleInParams,
			},
		},
		cookies:      sealer,
		keys:         newKeyCache(cfg.JWKSURL, cfg.HTTPClient, now),
		secureCookie: !(redirect.Scheme == "http" && isLoopback(redirect.Hostname())),
	}, nil
}

// Start begins a sign-in. It returns the provider URL to redirect the browser to and the
// cookie to set on that response, which binds the state, PKCE verifier and nonce to this
// browser for StateTTL.
func (c *Client) Start() (redirectURL string, cookie *http.Cookie, err error) {
	st := sealedState{
		State:    randomToken(),
		Verifier: oauth2.GenerateVerifier(),
		Nonce:    randomToken(),
		Expires:  c.now().Add(StateTTL).Unix(),
	}
	value, err := c.cookies.seal(st)
	if err != nil {
		return "", nil, fmt.Errorf("start google sign-in: %w", err)
	}
	redirectURL = c.oauth.AuthCodeURL(st.State,
		oauth2.S256ChallengeOption(st.Verifier),
		oauth2.SetAuthURLParam("nonce", st.Nonce),
	)
	cookie = c.cookie(value, int(StateTTL/time.Second))
	return redirectURL, cookie, nil
}

// ClearCookie returns a cookie that deletes the sign-in cookie. The callback handler sets it
// whatever Finish returns, so a sign-in cannot be finished twice from one browser.
func (c *Client) ClearCookie() *http.Cookie {
	return c.cookie("", -1)
}

func (c *Client) cookie(value string, maxAge int) *http.Cookie {
	return &http.Cookie{ // #nosec G124 -- Secure, but for a dev server on http://localhost, which browsers would refuse it on
		Name:     CookieName,
		Value:    value,
		Path:     CookiePath,
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   c.secureCookie,
		SameSite: http.SameSiteLaxMode,
	}
}

// Finish completes a sign-in from the callback's query and the cookie Start set. It checks the
// state, exchanges the code with the PKCE verifier and verifies the ID token.
// It returns EUNAUTHORIZED when the sign-in expired, was tampered with, was cancelled or does
// not verify, EUNAVAILABLE when the provider cannot be reached or fails, and an internal
// error (no code) when the provider rejects our client credentials.
func (c *Client) Finish(ctx context.Context, query url.Values, cookie *http.Cookie) (Identity, error) {
	if cookie == nil || cookie.Value == "" {
		return Identity{}, unauthorized(msgExpired, errors.New("no sign-in cookie"))
	}
	st, err := c.cookies.open(cookie.Value)
	if err != nil {
		return Identity{}, unauthorized(msgUnverified, fmt.Errorf("open sign-in cookie: %w", err))
	}
	if !c.now().Before(time.Unix(st.Expires, 0)) {
		return Identity{}, unauthorized(msgExpired, errors.New("sign-in cookie expired"))
	}
	if subtle.ConstantTimeCompare([]byte(query.Get("state")), []byte(st.State)) != 1 {
		return Identity{}, unauthorized(msgUnverified, errors.New("state does not match the sign-in cookie"))
	}
	if e := query.Get("error"); e != "" {
		if e == "access_denied" {
			return Identity{}, unauthorized(msgCancelled, errors.New("provider: access denied"))
		}
		return Identity{}, unauthorized(msgUnverified, fmt.Errorf("provider returned error %.64q", e))
	}
	code := query.Get("code")
	if code == "" {
		return Identity{}, unauthorized(msgUnverified, errors.New("callback without a code"))
	}

	rawIDToken, err := c.exchange(ctx, code, st.Verifier)
	if err != nil {
		return Identity{}, err
	}
	id, err := c.verifyIDToken(ctx, rawIDToken, st.Nonce)
	if err != nil {
		return Identity{}, err
	}
	return id, nil
}

// exchange trades the code for tokens and returns the raw ID token.
func (c *Client) exchange(ctx context.Context, code, verifier string) (string, error) {
	ctx = context.WithValue(ctx, oauth2.HTTPClient, c.cfg.HTTPClient)
	tok, err := c.oauth.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		// RetrieveError's text quotes the provider's body, which may echo the code: keep
		// only the status and the RFC 6749 error code.
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			status := 0
			if re.Response != nil {
				status = re.Response.StatusCode
			}
			cause := fmt.Errorf("exchange code: provider answered %d %.64q", status, re.ErrorCode)
			switch {
			case re.ErrorCode == "invalid_client" || re.ErrorCode == "unauthorized_client":
				// Our client id or secret is wrong: an operator's problem, so internal
				// (logged), not the user's.
				return "", cause
			case status >= 400 && status < 500:
				// invalid_grant and friends: a reused, expired or forged code, or a wrong verifier.
				return "", unauthorized(msgUnverified, cause)
			default:
				return "", unavailable(cause)
			}
		}
		return "", unavailable(fmt.Errorf("exchange code: %w", err))
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return "", unauthorized(msgUnverified, errors.New("token response has no id_token"))
	}
	return raw, nil
}

func unauthorized(msg string, cause error) error {
	return &domain.Error{Code: domain.EUNAUTHORIZED, Message: msg, Err: cause}
}

func unavailable(cause error) error {
	return &domain.Error{Code: domain.EUNAVAILABLE, Message: msgUnavailable, Err: cause}
}

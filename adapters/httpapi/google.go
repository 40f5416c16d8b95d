package httpapi

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"

	"github.com/vigilhq/vigil/adapters/google"
	"github.com/vigilhq/vigil/domain/account"
)

// GoogleSignIn runs the OpenID Connect flow with the provider; *google.Client satisfies it.
type GoogleSignIn interface {
	// Start returns the provider URL to redirect to and the state cookie to set.
	Start() (redirectURL string, cookie *http.Cookie, err error)
	// Finish checks the callback against the cookie and returns the verified identity;
	// EUNAUTHORIZED when it does not verify, EUNAVAILABLE when the provider fails.
	Finish(ctx context.Context, query url.Values, cookie *http.Cookie) (google.Identity, error)
	// ClearCookie returns the cookie that deletes the state cookie.
	ClearCookie() *http.Cookie
}

// GoogleAccounts signs in with a verified Google identity; *account.Service satisfies it.
type GoogleAccounts interface {
	LoginWithGoogle(ctx context.Context, id account.GoogleIdentity, cl account.Client) (*account.Auth, error)
}

// registerGoogle serves GET /api/auth/google/login and /google/callback on the /api/auth
// group when Config.Google and Config.GoogleAccounts are set.
func (s *Server) registerGoogle(auth *echo.Group) {
	if s.cfg.Google == nil || s.cfg.GoogleAccounts == nil {
		return
	}
	auth.GET("/google/login", s.googleLogin)
	auth.GET("/google/callback", s.googleCallback)
}

// googleLogin redirects the browser to the provider with a fresh state cookie.
func (s *Server) googleLogin(c echo.Context) error {
	to, cookie, err := s.cfg.Google.Start()
	if err != nil {
		return err
	}
	noStore(c)
	c.SetCookie(cookie)
	return c.Redirect(http.StatusFound, to)
}

// googleCallback finishes the sign-in and answers with the token pair, like login. The
// state cookie is cleared whatever happens, so a sign-in cannot be finished twice.
func (s *Server) googleCallback(c echo.Context) error {
	noStore(c)
	c.SetCookie(s.cfg.Google.ClearCookie())
	cookie, err := c.Cookie(google.CookieName)
	if err != nil && !errors.Is(err, http.ErrNoCookie) {
		return err
	}
	id, err := s.cfg.Google.Finish(c.Request().Context(), c.QueryParams(), cookie)
	if err != nil {
		return err
	}
	a, err := s.cfg.GoogleAccounts.LoginWithGoogle(c.Request().Context(), account.GoogleIdentity{
		Issuer: id.Issuer, Subject: id.Subject, Email: id.Email, EmailVerified: id.EmailVerified, Name: id.Name,
	}, clientOf(c))
	if err != nil {
		return err
	}
	return s.tokenResponse(c, http.StatusOK, a)
}

package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/account"
)

// APIKeyPrefix starts every API key; a bearer credential with it goes to Config.APIKeys
// instead of the JWT verifier.
const APIKeyPrefix = "vgl_"

// Caller is the authenticated principal of a request.
type Caller struct {
	UserID    string
	Role      account.Role
	SessionID string        // refresh family of the access token; "" for API keys
	APIKeyID  string        // the API key used; "" for access tokens
	Scope     account.Scope // what the API key may do; "" for access tokens
}

// IsAdmin reports whether the caller is an administrator.
func (c Caller) IsAdmin() bool { return c.Role == account.RoleAdmin }

// AccessTokens verifies access tokens and publishes the keys that sign them;
// *tokens.KeySet satisfies it.
type AccessTokens interface {
	// Verify returns the claims of a valid access token; any error means the token is not
	// acceptable (it is not shown to the client).
	Verify(token string) (account.AccessClaims, error)
	// JWKS returns the public verification keys as a JSON Web Key Set document.
	JWKS() ([]byte, error)
}

// APIKeyResolver resolves an API key ("vgl_…", presented as a bearer credential) to its
// caller. It is the hook for the API keys feature; with Config.APIKeys nil every API key is
// rejected.
type APIKeyResolver interface {
	// ResolveAPIKey returns the caller owning key. Returns EUNAUTHORIZED for unknown,
	// revoked and expired keys.
	ResolveAPIKey(ctx context.Context, key string) (Caller, error)
}

// callerKey is the echo.Context key of the Caller.
const callerKey = "vigil.caller"

// CallerFrom returns the caller the authenticated middleware resolved; ok is false on
// routes without it.
func CallerFrom(c echo.Context) (Caller, bool) {
	caller, ok := c.Get(callerKey).(Caller)
	return caller, ok
}

// mustCaller returns the caller of a route behind authenticated.
func mustCaller(c echo.Context) (Caller, error) {
	caller, ok := CallerFrom(c)
	if !ok {
		return Caller{}, errors.New("route is missing the authenticated middleware")
	}
	return caller, nil
}

// authenticated is the middleware every endpoint acting for a user sits behind. It
// resolves the caller from "Authorization: Bearer <access JWT>" or "Bearer vgl_…" (an API
// key, through Config.APIKeys) and stores it for CallerFrom. Without valid credentials it
// answers 401 problem+json with a WWW-Authenticate: Bearer challenge (RFC 6750).
func (s *Server) authenticated(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		header := c.Request().Header.Get(echo.HeaderAuthorization)
		if header == "" {
			return unauthorized(c, "", "Authentication is required: send Authorization: Bearer <token>.")
		}
		scheme, cred, ok := strings.Cut(header, " ")
		cred = strings.TrimSpace(cred)
		if !ok || !strings.EqualFold(scheme, "Bearer") || cred == "" {
			return unauthorized(c, "invalid_request", "Use Authorization: Bearer <token>.")
		}
		var caller Caller
		if strings.HasPrefix(cred, APIKeyPrefix) {
			if s.cfg.APIKeys == nil {
				return unauthorized(c, "invalid_token", "The API key is not valid.")
			}
			resolved, err := s.cfg.APIKeys.ResolveAPIKey(c.Request().Context(), cred)
			if err != nil {
				if domain.ErrorCode(err) == domain.EUNAUTHORIZED {
					return unauthorized(c, "invalid_token", "The API key is not valid.")
				}
				return err
			}
			caller = resolved
		} else {
			if s.cfg.AccessTokens == nil {
				return unauthorized(c, "invalid_token", "The access token is not valid.")
			}
			claims, err := s.cfg.AccessTokens.Verify(cred)
			if err != nil {
				return unauthorized(c, "invalid_token", "The access token is not valid or has expired.")
			}
			caller = Caller{UserID: claims.UserID, Role: claims.Role, SessionID: claims.SessionID}
		}
		if caller.APIKeyID != "" {
			monitors := strings.HasPrefix(c.Path(), "/api/monitors")
			if !caller.Scope.Permits(!isSafeMethod(c.Request().Method), monitors) {
				return domain.Errorf(domain.EFORBIDDEN, "This API key's scope (%s) does not allow this request.", caller.Scope)
			}
		}
		c.Set(callerKey, caller)
		// Use cases that audit find the client in the request's context.
		c.SetRequest(c.Request().WithContext(account.WithClient(c.Request().Context(), clientOf(c))))
		if s.apiLimit != nil { // rate limits
			return s.apiLimit(next)(c)
		}
		return next(c)
	}
}

// adminOnly lets only administrators through; it sits behind authenticated.
func (s *Server) adminOnly(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		caller, ok := CallerFrom(c)
		if !ok {
			return unauthorized(c, "", "Authentication is required: send Authorization: Bearer <token>.")
		}
		if !caller.IsAdmin() {
			return domain.Errorf(domain.EFORBIDDEN, "This needs an administrator.")
		}
		return next(c)
	}
}

// unauthorized sets the RFC 6750 challenge and returns the 401 error.
func unauthorized(c echo.Context, errCode, msg string) error {
	challenge := `Bearer realm="vigil"`
	if errCode != "" {
		challenge += `, error="` + errCode + `"`
	}
	c.Response().Header().Set(echo.HeaderWWWAuthenticate, challenge)
	return domain.Errorf(domain.EUNAUTHORIZED, "%s", msg)
}

// noStore marks a response as never to be cached (it carries tokens or personal data).
func noStore(c echo.Context) {
	h := c.Response().Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
}

// isSafeMethod tells the methods that change nothing (RFC 9110 §9.2.1).
func isSafeMethod(method string) bool {
	return method == http.MethodGet || method == http.MethodHead || method == http.MethodOptions
}

package httpapi

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/account"
)

// APIKeyManager is what the /api/me/api-keys handlers need; *account.APIKeyService
// satisfies it. Every method is scoped to the user: another user's key is ENOTFOUND.
type APIKeyManager interface {
	CreateAPIKey(ctx context.Context, userID, name string, scope account.Scope, expiresAt *time.Time, cl account.Client) (*account.NewAPIKey, error)
	ListAPIKeys(ctx context.Context, userID string) ([]account.APIKey, error)
	RevokeAPIKey(ctx context.Context, userID, id string, cl account.Client) error
}

// APIKeyVerifier checks a presented API key; *account.APIKeyService satisfies it.
type APIKeyVerifier interface {
	// ResolveAPIKey returns who key authenticates; EUNAUTHORIZED when it does not.
	ResolveAPIKey(ctx context.Context, key string) (account.APIKeyPrincipal, error)
}

// NewAPIKeyResolver adapts v to Config.APIKeys, the hook of the authenticated middleware.
func NewAPIKeyResolver(v APIKeyVerifier) APIKeyResolver { return apiKeyResolver{v: v} }

type apiKeyResolver struct{ v APIKeyVerifier }

// ResolveAPIKey implements APIKeyResolver.
func (r apiKeyResolver) ResolveAPIKey(ctx context.Context, key string) (Caller, error) {
	p, err := r.v.ResolveAPIKey(ctx, key)
	if err != nil {
		return Caller{}, err
	}
	return Caller{UserID: p.UserID, Role: p.Role, APIKeyID: p.KeyID, Scope: p.Scope}, nil
}

// registerAPIKeyRoutes serves /api/me/api-keys.
func (s *Server) registerAPIKeyRoutes(e *echo.Echo) {
	g := e.Group("/api/me/api-keys", s.authenticated, sessionOnly)
	g.POST("", s.createAPIKey)
	g.GET("", s.listAPIKeys)
	g.DELETE("/:id", s.revokeAPIKey)
}

// sessionOnly refuses callers authenticated by an API key: a leaked key must not be able
// to mint more keys, or revoke the owner's others, and so outlive its own revocation.
func sessionOnly(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		caller, err := mustCaller(c)
		if err != nil {
			return err
		}
		if caller.APIKeyID != "" {
			return domain.Errorf(domain.EFORBIDDEN, "API keys cannot manage API keys; sign in to do that.")
		}
		return next(c)
	}
}

// APIKeyJSON is an API key as lists show it: never the key nor its hash.
type APIKeyJSON struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Scope      string     `json:"scope"`  // read, monitors or full
	Prefix     string     `json:"prefix"` // the 8 characters after "vgl_", to recognise the key
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	ExpiresAt  *time.Time `json:"expires_at"`
}

// NewAPIKeyJSON is the answer to creating a key: the only time Key is shown.
type NewAPIKeyJSON struct {
	APIKeyJSON
	Key string `json:"key"`
}

// APIKeyListJSON is GET /api/me/api-keys.
type APIKeyListJSON struct {
	Items []APIKeyJSON `json:"items"`
}

func apiKeyJSON(k account.APIKey) APIKeyJSON {
	return APIKeyJSON{ID: k.ID, Name: k.Name, Scope: string(k.Scope), Prefix: k.Prefix, CreatedAt: k.CreatedAt, LastUsedAt: k.LastUsedAt,
		ExpiresAt: k.ExpiresAt}
}

type createAPIKeyRequest struct {
	Name      string  `json:"name"`
	Scope     string  `json:"scope"`      // read, monitors or full; absent: full
	ExpiresAt *string `json:"expires_at"` // RFC 3339; null or absent: never expires
}

func (s *Server) createAPIKey(c echo.Context) error {
	caller, err := mustCaller(c)
	if err != nil {
		return err
	}
	var req createAPIKeyRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	var expiresAt *time.Time
	if req.ExpiresAt != nil {
		t, err := time.Parse(time.RFC3339, strings.TrimSpace(*req.ExpiresAt))
		if err != nil {
			return &domain.Error{Code: domain.EINVALID, Message: "Some fields are invalid.",
				Fields: map[string]string{"expires_at": "must be an RFC 3339 time such as 2027-01-01T00:00:00Z"}}
		}
		expiresAt = &t
	}
	k, err := s.cfg.APIKeyManager.CreateAPIKey(c.Request().Context(), caller.UserID, req.Name, account.Scope(req.Scope), expiresAt, clientOf(c))
	if err != nil {
		return err
	}
	noStore(c)
	return c.JSON(http.StatusCreated, NewAPIKeyJSON{APIKeyJSON: apiKeyJSON(k.APIKey), Key: k.Key})
}

func (s *Server) listAPIKeys(c echo.Context) error {
	caller, err := mustCaller(c)
	if err != nil {
		return err
	}
	keys, err := s.cfg.APIKeyManager.ListAPIKeys(c.Request().Context(), caller.UserID)
	if err != nil {
		return err
	}
	out := APIKeyListJSON{Items: make([]APIKeyJSON, 0, len(keys))}
	for _, k := range keys {
		out.Items = append(out.Items, apiKeyJSON(k))
	}
	noStore(c)
	return c.JSON(http.StatusOK, out)
}

func (s *Server) revokeAPIKey(c echo.Context) error {
	caller, err := mustCaller(c)
	if err != nil {
		return err
	}
	if err := s.cfg.APIKeyManager.RevokeAPIKey(c.Request().Context(), caller.UserID, c.Param("id"), clientOf(c)); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

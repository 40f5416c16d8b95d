package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/vigilhq/vigil/domain/account"
)

// Admin is what the /api/admin handlers need; *account.AdminService satisfies it. Every
// method checks again that the actor is an administrator (EFORBIDDEN otherwise).
type Admin interface {
	ListAllowlist(ctx context.Context, actorID string) ([]account.AllowlistEntry, error)
	AddToAllowlist(ctx context.Context, actorID, pattern string, cl account.Client) (*account.AllowlistEntry, error)
	RemoveFromAllowlist(ctx context.Context, actorID, id string, cl account.Client) error
	ListAllAudit(ctx context.Context, actorID string, f account.AuditFilter) (account.AuditPage, error)
}

// registerAdminRoutes serves /api/admin/*, for administrators only.
func (s *Server) registerAdminRoutes(e *echo.Echo) {
	g := e.Group("/api/admin", s.authenticated, s.adminOnly)
	g.GET("/allowlist", s.listAllowlist)
	g.POST("/allowlist", s.addToAllowlist)
	g.DELETE("/allowlist/:id", s.removeFromAllowlist)
	g.GET("/audit", s.listAllAudit)
}

// AllowlistEntryJSON is one beta allowlist entry.
type AllowlistEntryJSON struct {
	ID        string    `json:"id"`
	Pattern   string    `json:"pattern"`
	Kind      string    `json:"kind"`     // "email" or "domain"
	AddedBy   *string   `json:"added_by"` // user id; null when unknown
	CreatedAt time.Time `json:"created_at"`
}

// AllowlistJSON is GET /api/admin/allowlist.
type AllowlistJSON struct {
	Items []AllowlistEntryJSON `json:"items"`
}

func allowlistEntryJSON(e account.AllowlistEntry) AllowlistEntryJSON {
	out := AllowlistEntryJSON{ID: e.ID, Pattern: e.Pattern, Kind: e.Kind, CreatedAt: e.CreatedAt}
	if e.AddedBy != "" {
		out.AddedBy = &e.AddedBy
	}
	return out
}

func (s *Server) listAllowlist(c echo.Context) error {
	caller, err := mustCaller(c)
	if err != nil {
		return err
	}
	entries, err := s.cfg.Admin.ListAllowlist(c.Request().Context(), caller.UserID)
	if err != nil {
		return err
	}
	out := AllowlistJSON{Items: make([]AllowlistEntryJSON, 0, len(entries))}
	for _, e := range entries {
		out.Items = append(out.Items, allowlistEntryJSON(e))
	}
	noStore(c)
	return c.JSON(http.StatusOK, out)
}

type allowlistRequest struct {
	Pattern string `json:"pattern"`
}

func (s *Server) addToAllowlist(c echo.Context) error {
	caller, err := mustCaller(c)
	if err != nil {
		return err
	}
	var req allowlistRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	e, err := s.cfg.Admin.AddToAllowlist(c.Request().Context(), caller.UserID, req.Pattern, clientOf(c))
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, "/api/admin/allowlist/"+e.ID)
	return c.JSON(http.StatusCreated, allowlistEntryJSON(*e))
}

func (s *Server) removeFromAllowlist(c echo.Context) error {
	caller, err := mustCaller(c)
	if err != nil {
		return err
	}
	if err := s.cfg.Admin.RemoveFromAllowlist(c.Request().Context(), caller.UserID, c.Param("id"), clientOf(c)); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// AdminAuditEventJSON is an audit event with the user who acted (null when nobody known
// acted, or the account was deleted since).
type AdminAuditEventJSON struct {
	AuditEventJSON
	ActorID *string `json:"actor_id"`
}

// AdminAuditListJSON is GET /api/admin/audit; NextCursor is null on the last page.
type AdminAuditListJSON struct {
	Items      []AdminAuditEventJSON `json:"items"`
	NextCursor *string               `json:"next_cursor"`
}

func (s *Server) listAllAudit(c echo.Context) error {
	caller, err := mustCaller(c)
	if err != nil {
		return err
	}
	limit, err := auditLimit(c)
	if err != nil {
		return err
	}
	f := account.AuditFilter{Action: c.QueryParam("action"), Cursor: c.QueryParam("cursor"), Limit: limit}
	page, err := s.cfg.Admin.ListAllAudit(c.Request().Context(), caller.UserID, f)
	if err != nil {
		return err
	}
	out := AdminAuditListJSON{Items: make([]AdminAuditEventJSON, 0, len(page.Events))}
	for _, e := range page.Events {
		item := AdminAuditEventJSON{AuditEventJSON: auditEventJSON(e)}
		if e.ActorID != "" {
			actor := e.ActorID
			item.ActorID = &actor
		}
		out.Items = append(out.Items, item)
	}
	if page.NextCursor != "" {
		out.NextCursor = &page.NextCursor
	}
	noStore(c)
	return c.JSON(http.StatusOK, out)
}

package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/account"
)

func (s *Server) getMe(c echo.Context) error {
	caller, err := mustCaller(c)
	if err != nil {
		return err
	}
	u, err := s.cfg.Accounts.GetMe(c.Request().Context(), caller.UserID)
	if err != nil {
		return err
	}
	noStore(c)
	return c.JSON(http.StatusOK, userJSON(u))
}

type patchMeRequest struct {
	Name                 *string `json:"name"`
	Timezone             *string `json:"timezone"`
	DigestHour           *int    `json:"digest_hour"`
	NotificationsEnabled *bool   `json:"notifications_enabled"`
	CurrentPassword      *string `json:"current_password"`
	NewPassword          *string `json:"new_password"`
}

func (s *Server) patchMe(c echo.Context) error {
	caller, err := mustCaller(c)
	if err != nil {
		return err
	}
	var req patchMeRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if caller.APIKeyID != "" && (req.NewPassword != nil || req.CurrentPassword != nil) {
		return domain.Errorf(domain.EFORBIDDEN, "API keys cannot change the password; sign in to do that.")
	}
	u, err := s.cfg.Accounts.UpdateMe(c.Request().Context(), caller.UserID, caller.SessionID, account.ProfileUpdate{
		Name: req.Name, Timezone: req.Timezone, DigestHour: req.DigestHour, NotificationsEnabled: req.NotificationsEnabled,
		CurrentPassword: req.CurrentPassword, NewPassword: req.NewPassword}, clientOf(c))
	if err != nil {
		return err
	}
	noStore(c)
	return c.JSON(http.StatusOK, userJSON(u))
}

type deleteMeRequest struct {
	CurrentPassword string `json:"current_password"`
}

// deleteMe deletes the account of a signed-in owner who confirms it: never with an API key,
// whatever its scope (see sessionOnly).
func (s *Server) deleteMe(c echo.Context) error {
	caller, err := mustCaller(c)
	if err != nil {
		return err
	}
	if caller.APIKeyID != "" {
		return domain.Errorf(domain.EFORBIDDEN, "API keys cannot delete the account; sign in to do that.")
	}
	var req deleteMeRequest
	if c.Request().ContentLength != 0 || c.Request().Header.Get(echo.HeaderContentType) != "" {
		if err := decodeJSON(c, &req); err != nil {
			return err
		}
	}
	if err := s.cfg.Accounts.DeleteMe(c.Request().Context(), caller.UserID, caller.SessionID, req.CurrentPassword, clientOf(c)); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// AuditEventJSON is one audit event as the API shows it.
type AuditEventJSON struct {
	ID         string         `json:"id"`
	Action     string         `json:"action"`
	Outcome    string         `json:"outcome"`
	TargetType string         `json:"target_type,omitempty"`
	TargetID   string         `json:"target_id,omitempty"`
	IP         string         `json:"ip,omitempty"`
	UserAgent  string         `json:"user_agent,omitempty"`
	Metadata   map[string]any `json:"metadata"`
	CreatedAt  time.Time      `json:"created_at"`
}

// AuditListJSON is a page of audit events; NextCursor is null on the last page.
type AuditListJSON struct {
	Items      []AuditEventJSON `json:"items"`
	NextCursor *string          `json:"next_cursor"`
}

func (s *Server) listMyAudit(c echo.Context) error {
	caller, err := mustCaller(c)
	if err != nil {
		return err
	}
	limit, err := auditLimit(c)
	if err != nil {
		return err
	}
	page, err := s.cfg.Accounts.ListAudit(c.Request().Context(), caller.UserID, limit, c.QueryParam("cursor"))
	if err != nil {
		return err
	}
	out := AuditListJSON{Items: make([]AuditEventJSON, 0, len(page.Events))}
	for _, e := range page.Events {
		out.Items = append(out.Items, auditEventJSON(e))
	}
	if page.NextCursor != "" {
		out.NextCursor = &page.NextCursor
	}
	noStore(c)
	return c.JSON(http.StatusOK, out)
}

// auditLimit reads the limit query parameter of an audit listing: 0 for the default, -1
// for an explicit 0 (invalid, not the default).
func auditLimit(c echo.Context) (int, error) {
	raw := c.QueryParam("limit")
	if raw == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil {
		return 0, &domain.Error{Code: domain.EINVALID, Message: "Some fields are invalid.",
			Fields: map[string]string{"limit": "must be a whole number"}}
	}
	if n == 0 {
		return -1, nil
	}
	return n, nil
}

func auditEventJSON(e account.AuditEvent) AuditEventJSON {
	meta := e.Metadata
	if meta == nil {
		meta = map[string]any{}
	}
	return AuditEventJSON{ID: e.ID, Action: e.Action, Outcome: e.Outcome, TargetType: e.TargetType,
		TargetID: e.TargetID, IP: e.IP, UserAgent: e.UserAgent, Metadata: meta, CreatedAt: e.CreatedAt}
}

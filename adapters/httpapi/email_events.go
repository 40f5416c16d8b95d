package httpapi

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/app"
)

// EmailEventSource reads and authenticates an email provider's event requests;
// sendgrid's Verifier and Parse make one.
type EmailEventSource interface {
	// Read checks the request's signature and returns its events: EUNAUTHORIZED for a
	// request not signed by the provider, EINVALID for a body that is not its events.
	Read(header http.Header, body []byte, now time.Time) ([]app.EmailEvent, error)
}

// EmailEventHandler applies provider events; *app.EmailEvents satisfies it.
type EmailEventHandler interface {
	Handle(ctx context.Context, events []app.EmailEvent) (int, error)
}

// Suppressions is what /api/admin/suppressions needs; *app.SuppressionService satisfies it.
type Suppressions interface {
	List(ctx context.Context, actorID, q, after string, limit int) ([]app.Suppression, error)
	Remove(ctx context.Context, actorID, email string) error
}

// EmailEventsBodyLimit bounds one event request.
const EmailEventsBodyLimit = 1 << 20

func (s *Server) registerEmailEventRoutes(e *echo.Echo) {
	e.POST("/api/webhooks/email-events", s.emailEvents)
}

func (s *Server) registerSuppressionRoutes(e *echo.Echo) {
	g := e.Group("/api/admin/suppressions", s.authenticated, s.adminOnly)
	g.GET("", s.listSuppressions)
	g.DELETE("/:email", s.removeSuppression)
}

// emailEvents receives the provider's delivery, bounce and complaint events. It is not
// behind authentication: the provider's signature is what authenticates it.
func (s *Server) emailEvents(c echo.Context) error {
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), c.Request().Body, EmailEventsBodyLimit))
	if err != nil {
		return echo.NewHTTPError(http.StatusRequestEntityTooLarge, "The request body is larger than 1 MiB.")
	}
	events, err := s.cfg.EmailEventSource.Read(c.Request().Header, body, s.cfg.Now())
	if domain.ErrorCode(err) == domain.EUNAUTHORIZED {
		s.log(c).Warn().Str("ip", c.RealIP()).Msg("email event request with a bad signature refused")
	}
	if err != nil {
		return err
	}
	n, err := s.cfg.EmailEvents.Handle(c.Request().Context(), events)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]int{"received": len(events), "applied": n})
}

// SuppressionJSON is one suppressed address.
type SuppressionJSON struct {
	Email     string    `json:"email"`
	Reason    string    `json:"reason"`
	Detail    string    `json:"detail"`
	CreatedAt time.Time `json:"created_at"`
}

// SuppressionListJSON is a page of suppressions by address; next_after is the after of
// the next page, null on the last.
type SuppressionListJSON struct {
	Suppressions []SuppressionJSON `json:"suppressions"`
	NextAfter    *string           `json:"next_after"`
}

func (s *Server) listSuppressions(c echo.Context) error {
	caller, err := mustCaller(c)
	if err != nil {
		return err
	}
	limit, ok := pageSize(c.QueryParam("limit"))
	if !ok {
		return &domain.Error{Code: domain.EINVALID, Message: "The query has invalid parameters.",
			Fields: map[string]string{"limit": "must be a whole number from 1 to " + strconv.Itoa(PageSizeMax)}}
	}
	list, err := s.cfg.Suppressions.List(c.Request().Context(), caller.UserID, c.QueryParam("q"), c.QueryParam("after"), limit+1)
	if err != nil {
		return err
	}
	out := SuppressionListJSON{Suppressions: []SuppressionJSON{}}
	for i, sp := range list {
		if i == limit {
			next := list[limit-1].Email
			out.NextAfter = &next
			break
		}
		out.Suppressions = append(out.Suppressions, SuppressionJSON(sp))
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) removeSuppression(c echo.Context) error {
	caller, err := mustCaller(c)
	if err != nil {
		return err
	}
	if err := s.cfg.Suppressions.Remove(c.Request().Context(), caller.UserID, c.Param("email")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

package httpapi

import (
	"context"
	"net/http"
	"slices"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/app"
)

// Notifications is what the /api/notifications handlers need; *app.NotificationService
// satisfies it. Another user's notification is ENOTFOUND.
type Notifications interface {
	List(ctx context.Context, q app.NotificationQuery) ([]app.NotificationRecord, *app.NotificationCursor, error)
	Get(ctx context.Context, userID, id string) (app.NotificationRecord, error)
	Resend(ctx context.Context, userID, id string) (app.NotificationRecord, error)
}

func (s *Server) registerNotificationRoutes(e *echo.Echo) {
	g := e.Group("/api/notifications", s.authenticated)
	g.GET("", s.listNotifications)
	g.GET("/:id", s.getNotification)
	g.POST("/:id/resend", s.resendNotification)
}

// NotificationJSON is one delivery of a notification.
type NotificationJSON struct {
	ID            string        `json:"id"`
	MonitorID     *string       `json:"monitor_id"` // null for a daily digest
	TriggerID     *string       `json:"trigger_id"`
	ActionID      *string       `json:"action_id"`
	EvaluationID  *string       `json:"evaluation_id"`
	Kind          string        `json:"kind"`
	Channel       string        `json:"channel"`
	Recipient     string        `json:"recipient"`
	From          string        `json:"from"`
	To            string        `json:"to"`
	Status        string        `json:"status"`
	Attempts      int           `json:"attempts"`
	LastError     *string       `json:"last_error"`
	SentAt        *time.Time    `json:"sent_at"`
	NextAttemptAt *time.Time    `json:"next_attempt_at"`
	CreatedAt     time.Time     `json:"created_at"`
	UpdatedAt     time.Time     `json:"updated_at"`
	History       []AttemptJSON `json:"history,omitempty"`
}

// AttemptJSON is one delivery attempt.
type AttemptJSON struct {
	Attempt    int       `json:"attempt"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	Outcome    string    `json:"outcome"`
	Code       *int      `json:"code"`
	Detail     string    `json:"detail"`
}

// NotificationListJSON is a page of notifications.
type NotificationListJSON struct {
	Notifications []NotificationJSON `json:"notifications"`
	NextCursor    *string            `json:"next_cursor"`
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func notificationJSON(n app.NotificationRecord) NotificationJSON {
	out := NotificationJSON{ID: n.ID, MonitorID: optional(n.MonitorID), TriggerID: optional(n.TriggerID), ActionID: optional(n.ActionID),
		EvaluationID: optional(n.EvaluationID), Kind: n.Kind, Channel: n.Channel, Recipient: n.Recipient,
		From: string(n.From), To: string(n.To), Status: n.Status, Attempts: n.Attempts, LastError: optional(n.LastError),
		SentAt: n.SentAt, NextAttemptAt: n.NextAttemptAt, CreatedAt: n.CreatedAt, UpdatedAt: n.UpdatedAt}
	for _, a := range n.History {
		j := AttemptJSON{Attempt: a.Number, StartedAt: a.StartedAt, FinishedAt: a.FinishedAt, Outcome: string(a.Result), Detail: a.Detail}
		if a.Code != 0 {
			code := a.Code
			j.Code = &code
		}
		out.History = append(out.History, j)
	}
	return out
}

func (s *Server) listNotifications(c echo.Context) error {
	caller, err := mustCaller(c)
	if err != nil {
		return err
	}
	fields := map[string]string{}
	page := readTimePage(c, fields, "listing")
	q := app.NotificationQuery{UserID: caller.UserID, MonitorID: c.QueryParam("monitor_id"), Status: c.QueryParam("status"),
		Channel: c.QueryParam("channel"), From: page.From, To: page.To, Limit: page.Limit}
	if page.Before != nil {
		q.Before = &app.NotificationCursor{CreatedAt: page.Before.At, ID: page.Before.ID}
	}
	if q.Status != "" && !slices.Contains(app.NotificationStatuses, q.Status) {
		fields["status"] = "must be one of pending, sending, sent, delivered, bounced, complained, failed, suppressed, digest_pending, digested"
	}
	if q.Channel != "" && q.Channel != app.ChannelEmail && q.Channel != app.ChannelWebhook {
		fields["channel"] = "must be email or webhook"
	}
	if len(fields) > 0 {
		return &domain.Error{Code: domain.EINVALID, Message: "The query has invalid parameters.", Fields: fields}
	}
	list, next, err := s.cfg.Notifications.List(c.Request().Context(), q)
	if err != nil {
		return err
	}
	out := NotificationListJSON{Notifications: make([]NotificationJSON, 0, len(list))}
	for _, n := range list {
		out.Notifications = append(out.Notifications, notificationJSON(n))
	}
	if next != nil {
		cur := encodeCursor(timeCursor{At: next.CreatedAt, ID: next.ID})
		out.NextCursor = &cur
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) getNotification(c echo.Context) error {
	caller, err := mustCaller(c)
	if err != nil {
		return err
	}
	n, err := s.cfg.Notifications.Get(c.Request().Context(), caller.UserID, c.Param("id"))
	if err != nil {
		return err
	}
	out := notificationJSON(n)
	if out.History == nil {
		out.History = []AttemptJSON{}
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) resendNotification(c echo.Context) error {
	caller, err := mustCaller(c)
	if err != nil {
		return err
	}
	n, err := s.cfg.Notifications.Resend(c.Request().Context(), caller.UserID, c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, notificationJSON(n))
}

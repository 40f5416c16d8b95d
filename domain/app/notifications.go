package app

import (
	"context"
	"time"

	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/monitor"
)

// NotificationRecord is one notification as its owner sees it.
type NotificationRecord struct {
	ID            string
	MonitorID     string
	TriggerID     string // "" once the trigger was deleted
	ActionID      string // "" once the action was deleted
	EvaluationID  string
	Kind          string
	Channel       string
	Recipient     string
	From, To      monitor.State
	Status        string
	Attempts      int
	LastError     string
	SentAt        *time.Time
	NextAttemptAt *time.Time
	CreatedAt     time.Time
	UpdatedAt     time.Time
	History       []AttemptView // filled by GetNotification only
}

// AttemptView is one stored delivery attempt.
type AttemptView struct {
	Number     int
	StartedAt  time.Time
	FinishedAt time.Time
	Result     Result
	Code       int
	Detail     string
}

// NotificationQuery selects a page of one user's notifications, newest first.
type NotificationQuery struct {
	UserID    string
	MonitorID string
	Status    string
	Channel   string
	From, To  *time.Time // created_at range, To exclusive
	Limit     int
	Before    *NotificationCursor
}

// NotificationCursor is the last notification of the previous page.
type NotificationCursor struct {
	CreatedAt time.Time
	ID        string
}

// Notification statuses a user can filter on.
var NotificationStatuses = []string{"pending", "sending", "sent", "delivered", "bounced", "complained", "failed",
	"suppressed", "digest_pending", "digested"}

// NotificationRepository reads and resends users' notifications. Every method is scoped to
// the user: another user's notification is ENOTFOUND.
type NotificationRepository interface {
	// ListNotifications returns a page and the cursor of the next one, nil on the last.
	ListNotifications(ctx context.Context, q NotificationQuery) ([]NotificationRecord, *NotificationCursor, error)
	// GetNotification returns one notification with every attempt, oldest first.
	GetNotification(ctx context.Context, userID, id string) (NotificationRecord, error)
	// ResendNotification makes the notification owed again and requests it through the
	// outbox, if its status allows (see Resendable); ECONFLICT otherwise.
	ResendNotification(ctx context.Context, userID, id string, now time.Time) (NotificationRecord, error)
}

// Resendable reports whether a notification in status may be sent again by its owner:
// one that was sent, failed, bounced or held back; not one still owed or in a digest.
func Resendable(status string) bool {
	switch status {
	case "sent", "delivered", "failed", "bounced", "suppressed":
		return true
	}
	return false
}

// NotificationService is the delivery status API's use cases.
type NotificationService struct {
	repo NotificationRepository
	now  func() time.Time
}

// NewNotificationService returns the delivery status use cases.
func NewNotificationService(repo NotificationRepository, now func() time.Time) *NotificationService {
	return &NotificationService{repo: repo, now: now}
}

// List returns a page of the user's notifications.
func (s *NotificationService) List(ctx context.Context, q NotificationQuery) ([]NotificationRecord, *NotificationCursor, error) {
	return s.repo.ListNotifications(ctx, q)
}

// Get returns one of the user's notifications with its attempts.
func (s *NotificationService) Get(ctx context.Context, userID, id string) (NotificationRecord, error) {
	return s.repo.GetNotification(ctx, userID, id)
}

// Resend delivers one of the user's notifications again, at once.
func (s *NotificationService) Resend(ctx context.Context, userID, id string) (NotificationRecord, error) {
	n, err := s.repo.ResendNotification(ctx, userID, id, s.now().UTC())
	if domain.ErrorCode(err) == domain.ECONFLICT {
		return n, &domain.Error{Code: domain.ECONFLICT, Err: err,
			Message: "Only a notification that was sent, failed, bounced or held back can be resent; this one is still owed or waits for a digest."}
	}
	return n, err
}

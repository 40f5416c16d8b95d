package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/monitor"
)

// Kinds of notification.
const (
	KindStateChanged   = "state_changed"   // a trigger fired on a state change
	KindMonitorFailing = "monitor_failing" // the owner is told a monitor was put in error
)

// Delivery is everything one notification email needs.
type Delivery struct {
	NotificationID string
	Kind           string // KindStateChanged or KindMonitorFailing
	UserID         string
	Recipient      string
	RecipientName  string
	Timezone       string
	MonitorID      string
	MonitorName    string
	Prompt         string
	From, To       monitor.State
	Explanation    string
	Facts          []monitor.Fact
	ChangedAt      time.Time
	Attempt        int
	Failures       int    // monitor_failing: consecutive failed checks
	LastError      string // monitor_failing: the last failure
}

// Claim outcomes.
var (
	// ErrDelivered says the notification needs nothing more: sent, failed for good or suppressed.
	ErrDelivered = errors.New("notification already handled")
	// ErrInFlight says another mailer is sending the notification right now.
	ErrInFlight = errors.New("notification is being sent")
)

// NotificationStore tracks deliveries.
type NotificationStore interface {
	// ClaimNotification marks a pending notification as sending and returns it. It returns
	// ErrDelivered when there is nothing to do, ErrInFlight when another mailer holds it
	// (a claim older than lease is taken over: that mailer died), ENOTFOUND when it is gone,
	// and marks it suppressed (returning ErrDelivered) when its recipient is suppressed or
	// has turned notifications off.
	ClaimNotification(ctx context.Context, id string, now time.Time, lease time.Duration) (Delivery, error)
	// MarkSent records a successful send.
	MarkSent(ctx context.Context, id string, now time.Time) error
	// MarkFailed records a failed send: permanent ones become failed, others pending again.
	MarkFailed(ctx context.Context, id string, reason string, permanent bool) error
}

// NotificationSender delivers one notification (renders and sends the email).
// It returns EINVALID for a permanent rejection and EUNAVAILABLE for a transient one.
type NotificationSender interface {
	SendNotification(ctx context.Context, d Delivery) error
}

// Mailer is the DeliverNotification use case. It records the result before the message is
// acknowledged and never sends a notification that is already sent.
type Mailer struct {
	store  NotificationStore
	sender NotificationSender
	now    func() time.Time
	lease  time.Duration
}

// MailerLeaseDefault is how long a claim protects a notification being sent.
const MailerLeaseDefault = 2 * time.Minute

// NewMailer returns a Mailer.
func NewMailer(store NotificationStore, sender NotificationSender, now func() time.Time, lease time.Duration) *Mailer {
	if lease <= 0 {
		lease = MailerLeaseDefault
	}
	return &Mailer{store: store, sender: sender, now: now, lease: lease}
}

// Deliver sends one notification. It returns nil when the notification is sent or needs
// nothing more, an EINVALID error when the send failed for good (recorded as failed), and
// other errors when it should be retried later.
func (m *Mailer) Deliver(ctx context.Context, notificationID string) error {
	d, err := m.store.ClaimNotification(ctx, notificationID, m.now().UTC(), m.lease)
	switch {
	case errors.Is(err, ErrDelivered), errors.Is(err, domain.ErrNotFound):
		return nil
	case errors.Is(err, ErrInFlight):
		return &domain.Error{Code: domain.EUNAVAILABLE, Message: "The notification is being sent by another mailer.", Err: err}
	case err != nil:
		return fmt.Errorf("claim notification %s: %w", notificationID, err)
	}
	sendErr := m.sender.SendNotification(ctx, d)
	if sendErr == nil {
		if err := m.store.MarkSent(ctx, notificationID, m.now().UTC()); err != nil {
			return fmt.Errorf("record notification %s as sent: %w", notificationID, err)
		}
		return nil
	}
	permanent := domain.ErrorCode(sendErr) == domain.EINVALID
	if err := m.store.MarkFailed(ctx, notificationID, domain.ErrorMessage(sendErr), permanent); err != nil {
		return fmt.Errorf("record failure of notification %s: %w (send: %v)", notificationID, err, sendErr)
	}
	return fmt.Errorf("send notification %s: %w", notificationID, sendErr)
}

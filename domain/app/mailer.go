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
	KindTest           = "test"            // a sample sent by POST /api/actions/:id/test, never stored
	// KindWebhookDisabled tells the owner a webhook answered 410 Gone and was turned off.
	KindWebhookDisabled = "webhook_disabled"
)

// Delivery is everything one notification needs to be delivered.
type Delivery struct {
	NotificationID string
	Kind           string // KindStateChanged or KindMonitorFailing
	Channel        string // ChannelEmail or ChannelWebhook
	UserID         string
	Recipient      string // an email address, or the webhook's URL
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
	ActionID       string // "" when the action was deleted meanwhile
	ActionName     string
	ActionURL      string       // a webhook action's URL
	Secret         string       // webhook: the signing secret, in clear
	DigestDay      string       // digest: the recipient's local day
	Digest         []DigestItem // digest: the changes it reports
	// History is the recent values of the monitor's first numeric fact, HistoryKey, in
	// HistoryUnit, oldest first: the email's small chart.
	History     []HistoryPoint
	HistoryKey  string
	HistoryUnit string
}

// HistoryPoint is one stored value of a fact.
type HistoryPoint struct {
	At    time.Time
	Value float64
}

// DigestItem is one change a digest reports.
type DigestItem struct {
	MonitorID   string
	MonitorName string
	From, To    monitor.State
	At          time.Time
	Facts       []monitor.Fact
}

// Claim outcomes.
var (
	// ErrDelivered says the notification needs nothing more: sent, failed for good or suppressed.
	ErrDelivered = errors.New("notification already handled")
	// ErrInFlight says another mailer is sending the notification right now.
	ErrInFlight = errors.New("notification is being sent")
)

// AttemptRecord is one attempt, as RecordAttempt stores it.
type AttemptRecord struct {
	NotificationID string
	Number         int // 1 for the first attempt
	Channel        string
	Recipient      string
	ActionID       string
	StartedAt      time.Time
	FinishedAt     time.Time
	Attempt        Attempt
	Decision       Decision
}

// NotificationStore tracks deliveries.
type NotificationStore interface {
	// ClaimNotification marks a pending notification as sending and returns it. It returns
	// ErrDelivered when there is nothing to do, ErrInFlight when another mailer holds it
	// (a claim older than lease is taken over: that mailer died), ENOTFOUND when it is gone,
	// and marks it suppressed (returning ErrDelivered) when its recipient is suppressed or
	// has turned notifications off.
	ClaimNotification(ctx context.Context, id string, now time.Time, lease time.Duration) (Delivery, error)
	// RecordAttempt stores one attempt and applies its decision in one transaction: the
	// notification's status, last error and next attempt, the suppression of a refused
	// address and the disabling of a webhook that is gone.
	RecordAttempt(ctx context.Context, r AttemptRecord) error
	// RequestDue requests again, through the outbox, up to limit notifications whose next
	// attempt is due at now (pending ones, and sending ones whose claim is older than
	// lease), and returns how many. A request lost on the way, or a retry scheduled
	// for tomorrow, is not forgotten: the database, not the message, holds what is owed.
	RequestDue(ctx context.Context, now time.Time, lease time.Duration, limit int) (int, error)
}

// NotificationSender delivers one notification on its channel and reports the attempt;
// it never returns an error a retry would not fix without also saying so in the Attempt.
type NotificationSender interface {
	Send(ctx context.Context, d Delivery) Attempt
}

// Mailer is the DeliverNotification use case. It records every attempt before the message
// is acknowledged, never sends a notification that is already sent, and leaves retries to
// the schedule in the database (RequestDue), so a notification stays owed until it is
// delivered or has failed for good.
type Mailer struct {
	store    NotificationStore
	senders  map[string]NotificationSender
	now      func() time.Time
	lease    time.Duration
	schedule []time.Duration
}

// MailerLeaseDefault is how long a claim protects a notification being sent.
const MailerLeaseDefault = 2 * time.Minute

// MailerConfig tunes a Mailer.
type MailerConfig struct {
	Lease    time.Duration   // MailerLeaseDefault when 0
	Schedule []time.Duration // RetryScheduleDefault when empty
}

// NewMailer returns a Mailer delivering each channel through its sender.
func NewMailer(store NotificationStore, senders map[string]NotificationSender, now func() time.Time, cfg MailerConfig) *Mailer {
	if cfg.Lease <= 0 {
		cfg.Lease = MailerLeaseDefault
	}
	if len(cfg.Schedule) == 0 {
		cfg.Schedule = RetryScheduleDefault
	}
	return &Mailer{store: store, senders: senders, now: now, lease: cfg.Lease, schedule: cfg.Schedule}
}

// Report is what one Deliver did.
type Report struct {
	Channel  string
	Attempt  Attempt
	Decision Decision
}

// Deliver makes one attempt at a notification. It returns what the attempt did, nil when
// there was nothing to do (sent already, failed for good, suppressed, gone), and an error
// only when the outcome could not be recorded or another mailer holds the notification;
// such a request should be redelivered.
func (m *Mailer) Deliver(ctx context.Context, notificationID string) (*Report, error) {
	started := m.now().UTC()
	d, err := m.store.ClaimNotification(ctx, notificationID, started, m.lease)
	switch {
	case errors.Is(err, ErrDelivered), errors.Is(err, domain.ErrNotFound):
		return nil, nil
	case errors.Is(err, ErrInFlight):
		return nil, &domain.Error{Code: domain.EUNAVAILABLE, Message: "The notification is being sent by another mailer.", Err: err}
	case err != nil:
		return nil, fmt.Errorf("claim notification %s: %w", notificationID, err)
	}
	var attempt Attempt
	if sender, ok := m.senders[d.Channel]; ok {
		attempt = sender.Send(ctx, d)
	} else {
		attempt = Attempt{Result: ResultFailed, Detail: fmt.Sprintf("Vigil cannot deliver on the %q channel.", d.Channel)}
	}
	finished := m.now().UTC()
	decision := Decide(d.Channel, d.Attempt, attempt, finished, m.schedule)
	rec := AttemptRecord{NotificationID: notificationID, Number: d.Attempt, Channel: d.Channel, Recipient: d.Recipient,
		ActionID: d.ActionID, StartedAt: started, FinishedAt: finished, Attempt: attempt, Decision: decision}
	if err := m.store.RecordAttempt(ctx, rec); err != nil {
		return nil, fmt.Errorf("record attempt %d of notification %s: %w (attempt: %s %s)", d.Attempt, notificationID, err, attempt.Result, attempt.Detail)
	}
	return &Report{Channel: d.Channel, Attempt: attempt, Decision: decision}, nil
}

// RequestDue requests the notifications whose next attempt is due; the mailer role calls
// it on a timer.
func (m *Mailer) RequestDue(ctx context.Context, limit int) (int, error) {
	n, err := m.store.RequestDue(ctx, m.now().UTC(), m.lease, limit)
	if err != nil {
		return 0, fmt.Errorf("request due notifications: %w", err)
	}
	return n, nil
}

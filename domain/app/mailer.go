package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/monitor"
)

// Kinds of notification.
const (
	KindStateChanged   = "state_changed"   // a trigger fired on a state change
	KindMonitorFailing = "monitor_failing" // the owner is told a monitor was put in error
	// KindExtractionBroken tells the owner a fact found before is no longer found on the
	// changed source, with its last good evidence, the page now and any repair.
	KindExtractionBroken = "extraction_broken"
	KindTest             = "test" // a sample sent by POST /api/actions/:id/test, never stored
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
	// Miss and Repair are, for extraction_broken, the fact no longer found with its last
	// good evidence and the page now, and the repair tried (nil when none was).
	Miss       *monitor.Miss
	Repair     *monitor.Repair
	Misses     int    // extraction_broken: evaluations in a row that missed the fact
	ActionID   string // "" when the action was deleted meanwhile
	ActionName string
	ActionURL  string       // a webhook action's URL
	Secret     string       // webhook: the signing secret, in clear
	DigestDay  string       // digest: the recipient's local day
	Digest     []DigestItem // digest: the changes it reports
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

// ClaimState is what the store knows of a notification a mailer is about to claim.
type ClaimState struct {
	Status        string
	UpdatedAt     time.Time // when its status last changed; for a sending one, when it was claimed
	Channel       string
	Recipient     string
	OwnerEmail    string
	ActionEnabled *bool // nil: the action was deleted
	// Allowed says the recipient is the account's own address or one its owner confirmed.
	Allowed bool
	// Suppressed says the address is on the suppression list (a bounce or a complaint).
	Suppressed      bool
	NotificationsOn bool
	UnsubscribedAt  *time.Time
}

// HoldBack is why a notification is suppressed: Code, short and fixed, for metrics;
// Reason, the sentence its owner reads.
type HoldBack struct{ Code, Reason string }

// The suppressions a matcher or a mailer decides.
var (
	SuppressedUnconfirmed  = HoldBack{"unconfirmed", UnconfirmedRecipient}
	SuppressedActionOff    = HoldBack{"action_off", "The webhook action was turned off or deleted before delivery."}
	SuppressedUnsubscribed = HoldBack{"unsubscribed",
		"The address is unsubscribed, on the suppression list, or notifications are off."}
)

// DecideClaim decides what a mailer does with a notification: claim it (nil error and no
// HoldBack), suppress it for the reason given, or leave it: ErrDelivered when it needs
// nothing more, ErrInFlight while another mailer's claim is younger than lease (an older
// claim is taken over: that mailer died).
func DecideClaim(s ClaimState, now time.Time, lease time.Duration) (HoldBack, error) {
	switch {
	case s.Status == StatusSending && now.Sub(s.UpdatedAt) < lease:
		return HoldBack{}, ErrInFlight
	case s.Status != StatusPending && s.Status != StatusSending:
		return HoldBack{}, ErrDelivered
	case s.Channel == ChannelWebhook && (s.ActionEnabled == nil || !*s.ActionEnabled):
		return SuppressedActionOff, nil
	case s.Channel == ChannelEmail && !s.Allowed:
		return SuppressedUnconfirmed, nil
	case s.Channel == ChannelEmail && (s.Suppressed || !s.NotificationsOn ||
		(s.UnsubscribedAt != nil && strings.EqualFold(s.Recipient, s.OwnerEmail))):
		return SuppressedUnsubscribed, nil
	}
	return HoldBack{}, nil
}

// Claim is the outcome of claiming one notification of a batch: Err is nil and Delivery
// filled when it is this mailer's to send; ErrDelivered (nothing to do, or suppressed
// now), ErrInFlight or ENOTFOUND otherwise.
type Claim struct {
	NotificationID string
	Delivery       Delivery
	Err            error
	// Suppressed is set when this claim suppressed the notification, with Channel.
	Suppressed *HoldBack
	Channel    string
}

// NotificationStore tracks deliveries.
type NotificationStore interface {
	// ClaimNotifications decides, with DecideClaim, on each notification of ids in one
	// transaction: it marks those to send as sending (one attempt more, due again once the
	// lease is over, should this mailer die) and returns them with all a delivery needs,
	// and marks those to suppress as suppressed with the reason. It returns one Claim per
	// id, in order.
	ClaimNotifications(ctx context.Context, ids []string, now time.Time, lease time.Duration) ([]Claim, error)
	// RecordAttempts stores attempts and applies their decisions in one transaction: each
	// notification's status, last error and next attempt, the suppression of a refused
	// address and the disabling of a webhook that is gone.
	RecordAttempts(ctx context.Context, rs []AttemptRecord) error
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
	sending  chan struct{} // one token per delivery under way
}

// MailerLeaseDefault is how long a claim protects a notification being sent.
const MailerLeaseDefault = 2 * time.Minute

// MailerSendersDefault is how many deliveries one Mailer makes at once.
const MailerSendersDefault = 16

// MailerConfig tunes a Mailer.
type MailerConfig struct {
	Lease    time.Duration   // MailerLeaseDefault when 0
	Schedule []time.Duration // RetryScheduleDefault when empty
	// Senders bounds the deliveries under way at once, over every batch (default
	// MailerSendersDefault). Each waits mostly on a relay or an endpoint.
	Senders int
}

// NewMailer returns a Mailer delivering each channel through its sender.
func NewMailer(store NotificationStore, senders map[string]NotificationSender, now func() time.Time, cfg MailerConfig) *Mailer {
	if cfg.Lease <= 0 {
		cfg.Lease = MailerLeaseDefault
	}
	if len(cfg.Schedule) == 0 {
		cfg.Schedule = RetryScheduleDefault
	}
	if cfg.Senders <= 0 {
		cfg.Senders = MailerSendersDefault
	}
	return &Mailer{store: store, senders: senders, now: now, lease: cfg.Lease, schedule: cfg.Schedule,
		sending: make(chan struct{}, cfg.Senders)}
}

// Report is what one delivery of a batch did: an attempt, or, when Suppressed is set, the
// suppression its claim decided (no attempt).
type Report struct {
	NotificationID string
	Channel        string
	Suppressed     *HoldBack
	Attempt        Attempt
	Decision       Decision
	// ChangedAt is when the state change it tells of happened (zero for a digest);
	// FinishedAt when this attempt ended: their difference is the delivery latency.
	ChangedAt, FinishedAt time.Time
}

// Deliver makes one attempt at a notification; see DeliverBatch.
func (m *Mailer) Deliver(ctx context.Context, notificationID string) (*Report, error) {
	rs, err := m.DeliverBatch(ctx, []string{notificationID})
	if err != nil || len(rs) == 0 {
		return nil, err
	}
	return &rs[0], nil
}

// DeliverBatch makes one attempt at each notification of ids: it claims them in one
// transaction, sends them at once (at most MailerConfig.Senders under way in the Mailer),
// and records every attempt in one transaction. It reports the suppressions its claim
// decided, then the attempts made. Nothing is reported for a notification that needs
// nothing (sent already, failed for good, suppressed before, gone) or that another mailer
// is sending: that one is due again in the
// database when the other's lease ends, and RequestDue asks for it then, so a request for
// it waits out the lease in one step instead of spending redeliveries. The error is for the
// batch: the claim or the recording failed, and the requests should be redelivered.
func (m *Mailer) DeliverBatch(ctx context.Context, ids []string) ([]Report, error) {
	started := m.now().UTC()
	claims, err := m.store.ClaimNotifications(ctx, ids, started, m.lease)
	if err != nil {
		return nil, fmt.Errorf("claim %d notifications: %w", len(ids), err)
	}
	var toSend []Delivery
	var out []Report
	for _, c := range claims {
		switch {
		case c.Err == nil:
			toSend = append(toSend, c.Delivery)
		case c.Suppressed != nil:
			out = append(out, Report{NotificationID: c.NotificationID, Channel: c.Channel, Suppressed: c.Suppressed})
		case errors.Is(c.Err, ErrDelivered), errors.Is(c.Err, ErrInFlight), errors.Is(c.Err, domain.ErrNotFound):
		default:
			return nil, fmt.Errorf("claim notification %s: %w", c.NotificationID, c.Err)
		}
	}
	if len(toSend) == 0 {
		return out, nil
	}
	recs := make([]AttemptRecord, len(toSend))
	var wg sync.WaitGroup
	sent := 0
	for i, d := range toSend {
		if !m.acquire(ctx) {
			break // the rest stay claimed and unsent: due again when the lease ends
		}
		sent++
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-m.sending }()
			recs[i] = m.record(d, started, m.send(ctx, d))
		}()
	}
	wg.Wait()
	recs = recs[:sent]
	if err := m.store.RecordAttempts(ctx, recs); err != nil {
		// Sent but not recorded: record them one by one, so one bad record does not make
		// the others look unsent (they would be sent again once their lease ends).
		var failed []error
		for _, r := range recs {
			if err := m.store.RecordAttempts(ctx, []AttemptRecord{r}); err != nil {
				failed = append(failed, fmt.Errorf("record attempt %d of notification %s: %w (attempt: %s %s)",
					r.Number, r.NotificationID, err, r.Attempt.Result, r.Attempt.Detail))
			}
		}
		if len(failed) > 0 {
			return nil, errors.Join(failed...)
		}
	}
	for i, r := range recs {
		out = append(out, Report{NotificationID: r.NotificationID, Channel: r.Channel, Attempt: r.Attempt, Decision: r.Decision,
			ChangedAt: toSend[i].ChangedAt, FinishedAt: r.FinishedAt})
	}
	return out, nil
}

// acquire waits for a free sender; false when ctx ended first.
func (m *Mailer) acquire(ctx context.Context) bool {
	select {
	case m.sending <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

// send delivers d on its channel.
func (m *Mailer) send(ctx context.Context, d Delivery) Attempt {
	sender, ok := m.senders[d.Channel]
	if !ok {
		return Attempt{Result: ResultFailed, Detail: fmt.Sprintf("Vigil cannot deliver on the %q channel.", d.Channel)}
	}
	return sender.Send(ctx, d)
}

// record decides what an attempt at d means for the notification.
func (m *Mailer) record(d Delivery, started time.Time, a Attempt) AttemptRecord {
	finished := m.now().UTC()
	return AttemptRecord{NotificationID: d.NotificationID, Number: d.Attempt, Channel: d.Channel, Recipient: d.Recipient,
		ActionID: d.ActionID, StartedAt: started, FinishedAt: finished, Attempt: a,
		Decision: Decide(d.Channel, d.Attempt, a, finished, m.schedule)}
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

package app

import (
	"fmt"
	"time"

	"github.com/vigilhq/vigil/domain/event"
)

// Channels a notification is delivered on.
const (
	ChannelEmail   = event.ChannelEmail
	ChannelWebhook = event.ChannelWebhook
)

// Result is how one delivery attempt ended.
type Result string

// Results.
const (
	ResultDelivered Result = "delivered" // the server accepted it (SMTP 250, HTTP 2xx)
	ResultRetry     Result = "retry"     // a transient failure: try again later
	ResultFailed    Result = "failed"    // a permanent failure: never try again
	ResultGone      Result = "gone"      // the webhook endpoint is gone for good (HTTP 410)
)

// Attempt is what one delivery attempt reports.
type Attempt struct {
	Result Result
	Code   int    // the SMTP reply code or HTTP status; 0 when no answer came
	Detail string // the server's answer or what went wrong, safe to show the user
}

// HTTPResult classifies a webhook's HTTP status: 2xx is delivered; 408, 429 and 5xx are
// retried; 410 is gone; any other status (4xx, and 1xx/3xx, which Vigil does not follow)
// is a permanent failure.
func HTTPResult(status int) Result {
	switch {
	case status >= 200 && status < 300:
		return ResultDelivered
	case status == 408 || status == 429 || status >= 500:
		return ResultRetry
	case status == 410:
		return ResultGone
	}
	return ResultFailed
}

// RetryScheduleDefault is how long to wait after each failed attempt before the next:
// eleven attempts over more than a day, so a relay or endpoint that is down overnight
// still gets the notification.
var RetryScheduleDefault = []time.Duration{
	time.Minute, 2 * time.Minute, 5 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 4 * time.Hour, 8 * time.Hour, 12 * time.Hour,
}

// Notification statuses a delivery attempt leads to.
const (
	StatusPending = "pending"
	StatusSending = "sending" // claimed by a mailer
	StatusSent    = "sent"
	StatusFailed  = "failed"
)

// Decision is what one attempt does to its notification.
type Decision struct {
	Status        string     // StatusSent, StatusPending (retry at NextAttemptAt) or StatusFailed
	NextAttemptAt *time.Time // when Status is StatusPending
	Error         string     // the last error, "" when sent
	// SuppressRecipient puts an email address on the suppression list: its mail server
	// refused it permanently.
	SuppressRecipient bool
	// DisableAction turns the webhook action off: its endpoint said it is gone.
	DisableAction bool
	// GaveUp says the schedule ran out: the notification failed after transient errors.
	GaveUp bool
}

// Decide returns what attempt number n (1 for the first) of a notification on channel does,
// at now, with schedule (RetryScheduleDefault when empty) deciding when to retry.
func Decide(channel string, n int, a Attempt, now time.Time, schedule []time.Duration) Decision {
	if len(schedule) == 0 {
		schedule = RetryScheduleDefault
	}
	switch a.Result {
	case ResultDelivered:
		return Decision{Status: StatusSent}
	case ResultRetry:
		if n <= len(schedule) {
			next := now.Add(schedule[n-1])
			return Decision{Status: StatusPending, NextAttemptAt: &next, Error: a.Detail}
		}
		return Decision{Status: StatusFailed, GaveUp: true,
			Error: fmt.Sprintf("Gave up after %d attempts over %s; the last said: %s", n, scheduleSpan(schedule), a.Detail)}
	case ResultGone:
		return Decision{Status: StatusFailed, DisableAction: channel == ChannelWebhook, Error: a.Detail}
	}
	return Decision{Status: StatusFailed, Error: a.Detail,
		SuppressRecipient: channel == ChannelEmail && a.Code >= 500 && a.Code < 600}
}

func scheduleSpan(schedule []time.Duration) time.Duration {
	var total time.Duration
	for _, d := range schedule {
		total += d
	}
	return total.Round(time.Minute)
}

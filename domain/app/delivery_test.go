package app_test

import (
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/domain/app"
)

func TestDecide(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	schedule := []time.Duration{time.Minute, time.Hour}
	retry := app.Attempt{Result: app.ResultRetry, Code: 451, Detail: "deferred"}

	d := app.Decide(app.ChannelEmail, 1, retry, now, schedule)
	if d.Status != app.StatusPending || d.NextAttemptAt == nil || !d.NextAttemptAt.Equal(now.Add(time.Minute)) {
		t.Fatalf("first retry: %+v", d)
	}
	d = app.Decide(app.ChannelEmail, 2, retry, now, schedule)
	if d.Status != app.StatusPending || !d.NextAttemptAt.Equal(now.Add(time.Hour)) {
		t.Fatalf("second retry: %+v", d)
	}
	d = app.Decide(app.ChannelEmail, 3, retry, now, schedule)
	if d.Status != app.StatusFailed || !d.GaveUp || d.NextAttemptAt != nil || !strings.Contains(d.Error, "Gave up after 3 attempts over 1h1m0s") {
		t.Fatalf("schedule spent: %+v", d)
	}

	if d := app.Decide(app.ChannelEmail, 1, app.Attempt{Result: app.ResultDelivered}, now, schedule); d.Status != app.StatusSent || d.Error != "" {
		t.Fatalf("delivered: %+v", d)
	}
	if d := app.Decide(app.ChannelEmail, 1, app.Attempt{Result: app.ResultFailed, Code: 550}, now, schedule); d.Status != app.StatusFailed || !d.SuppressRecipient {
		t.Fatalf("550 must fail and suppress the address: %+v", d)
	}
	if d := app.Decide(app.ChannelEmail, 1, app.Attempt{Result: app.ResultFailed}, now, schedule); d.SuppressRecipient {
		t.Fatalf("a message the relay could not take is no reason to suppress the address: %+v", d)
	}
	if d := app.Decide(app.ChannelWebhook, 1, app.Attempt{Result: app.ResultFailed, Code: 500}, now, schedule); d.SuppressRecipient {
		t.Fatalf("webhooks have no address to suppress: %+v", d)
	}
	if d := app.Decide(app.ChannelWebhook, 1, app.Attempt{Result: app.ResultGone, Code: 410}, now, schedule); d.Status != app.StatusFailed || !d.DisableAction {
		t.Fatalf("410 must fail and disable the action: %+v", d)
	}
}

func TestRetryScheduleLastsADay(t *testing.T) {
	t.Parallel()
	var total time.Duration
	for _, d := range app.RetryScheduleDefault {
		total += d
	}
	if total < 24*time.Hour {
		t.Fatalf("the default schedule retries for %s, want at least a day", total)
	}
}

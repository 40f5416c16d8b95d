package smtp

import (
	"context"
	"fmt"

	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/app"
	"github.com/vigilhq/vigil/domain/monitor"
	"github.com/vigilhq/vigil/emailtpl"
)

// Links builds the links of notification emails, each signed for one purpose;
// *tokens.PageLinks satisfies it.
type Links interface {
	Monitor(userID, monitorID string) string
	Pause(userID, monitorID string) string
	Settings(userID string) string
	Unsubscribe(userID, email string) string
}

// Notifier renders notification emails and sends them; it satisfies app.NotificationSender.
type Notifier struct {
	renderer *emailtpl.Renderer
	sender   *Sender
	links    Links
}

var _ app.NotificationSender = (*Notifier)(nil)

// ListID names Vigil's notification emails as one list (RFC 2919), so clients can filter them.
const ListID = "Vigil notifications <notifications.vigil>"

// NewNotifier returns a Notifier whose emails link through links (to PUBLIC_BASE_URL or
// PUBLIC_APP_URL, never a request's Host).
func NewNotifier(renderer *emailtpl.Renderer, sender *Sender, links Links) *Notifier {
	return &Notifier{renderer: renderer, sender: sender, links: links}
}

// Send implements app.NotificationSender: a 250 is delivered, an SMTP 5xx or a message
// the relay cannot take is a permanent failure, anything else (4xx, refused or broken
// connections, timeouts) is retried.
func (n *Notifier) Send(ctx context.Context, d app.Delivery) app.Attempt {
	err := n.SendNotification(ctx, d)
	if err == nil {
		return app.Attempt{Result: app.ResultDelivered, Code: 250, Detail: "Accepted by the mail server."}
	}
	code, reply := Reply(err)
	a := app.Attempt{Result: app.ResultRetry, Code: code, Detail: domain.ErrorMessage(err)}
	if domain.ErrorCode(err) == domain.EINVALID {
		a.Result = app.ResultFailed
	}
	if reply != "" {
		a.Detail += " The server said: " + reply
	}
	return a
}

// SendNotification renders and sends the email of d. Every email carries List-Unsubscribe
// and List-Unsubscribe-Post (RFC 8058 one-click), List-Id, Auto-Submitted and a Message-ID
// derived from the notification, so a re-send after a crash is recognisable as the same
// message. It returns EINVALID for a permanent rejection and EUNAVAILABLE for a transient one.
func (n *Notifier) SendNotification(ctx context.Context, d app.Delivery) error {
	unsubscribe := n.links.Unsubscribe(d.UserID, d.Recipient)
	email, err := n.render(d, unsubscribe)
	if err != nil {
		return fmt.Errorf("render notification %s: %w", d.NotificationID, err)
	}
	return n.sender.Send(ctx, Message{
		To: d.Recipient, Subject: email.Subject, HTML: email.HTML, Text: email.Text,
		MessageID: "<" + d.NotificationID + "@vigil>",
		Headers: map[string]string{
			"List-Unsubscribe":      "<" + unsubscribe + ">",
			"List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
			"List-Id":               ListID,
			"Auto-Submitted":        "auto-generated",
		},
	})
}

// render renders the email of the delivery's kind.
func (n *Notifier) render(d app.Delivery, unsubscribe string) (emailtpl.Email, error) {
	switch d.Kind {
	case app.KindDigest:
		return n.renderer.Digest(n.digest(d, unsubscribe))
	case app.KindWebhookDisabled:
		return n.renderer.WebhookDisabled(emailtpl.WebhookDisabled{RecipientName: d.RecipientName, ActionName: d.ActionName,
			URL: d.ActionURL, Answer: d.LastError, At: d.ChangedAt, Timezone: d.Timezone,
			SettingsURL: n.links.Settings(d.UserID), UnsubscribeURL: unsubscribe})
	}
	monitorURL := n.links.Monitor(d.UserID, d.MonitorID)
	if d.Kind == app.KindMonitorFailing {
		return n.renderer.MonitorFailing(emailtpl.MonitorFailing{
			RecipientName: d.RecipientName, MonitorName: d.MonitorName, Prompt: d.Prompt, Failures: d.Failures,
			LastError: d.LastError, FailedAt: d.ChangedAt, Timezone: d.Timezone, MonitorURL: monitorURL, UnsubscribeURL: unsubscribe,
		})
	}
	if d.Kind == app.KindExtractionBroken {
		return n.renderer.ExtractionBroken(brokenEmail(d, monitorURL, unsubscribe))
	}
	facts := factLines(d.Facts)
	history := make([]emailtpl.ChartPoint, 0, len(d.History))
	for _, p := range d.History {
		history = append(history, emailtpl.ChartPoint{At: p.At, Value: p.Value})
	}
	label := d.HistoryKey
	if d.HistoryUnit != "" {
		label += " (" + d.HistoryUnit + ")"
	}
	return n.renderer.StateChanged(emailtpl.StateChanged{
		RecipientName: d.RecipientName, MonitorName: d.MonitorName, Prompt: d.Prompt,
		From: string(d.From), To: string(d.To), Explanation: d.Explanation, Facts: facts,
		ChangedAt: d.ChangedAt, Timezone: d.Timezone, MonitorURL: monitorURL, UnsubscribeURL: unsubscribe,
		PauseURL: n.links.Pause(d.UserID, d.MonitorID), SettingsURL: n.links.Settings(d.UserID),
		History: history, HistoryLabel: label,
	})
}

// digest groups a digest's changes by monitor, in the order they came.
func (n *Notifier) digest(d app.Delivery, unsubscribe string) emailtpl.Digest {
	out := emailtpl.Digest{RecipientName: d.RecipientName, Day: d.DigestDay, Timezone: d.Timezone,
		SettingsURL: n.links.Settings(d.UserID), UnsubscribeURL: unsubscribe}
	index := map[string]int{}
	for _, it := range d.Digest {
		i, ok := index[it.MonitorID]
		if !ok {
			i = len(out.Monitors)
			index[it.MonitorID] = i
			out.Monitors = append(out.Monitors, emailtpl.DigestMonitor{Name: it.MonitorName,
				MonitorURL: n.links.Monitor(d.UserID, it.MonitorID)})
		}
		out.Monitors[i].Changes = append(out.Monitors[i].Changes, emailtpl.DigestChange{From: string(it.From), To: string(it.To),
			At: it.At, Facts: factLines(it.Facts)})
	}
	return out
}

func factLines(facts []monitor.Fact) []emailtpl.FactLine {
	out := make([]emailtpl.FactLine, 0, len(facts))
	for _, f := range facts {
		out = append(out, emailtpl.FactLine{Key: f.Key, Value: f.ValueText(), Unit: f.Unit})
	}
	return out
}

// brokenEmail is the email data of an extraction_broken delivery: the miss, and the
// repair when one was verified (a suggestion) or rejected (its reason).
func brokenEmail(d app.Delivery, monitorURL, unsubscribe string) emailtpl.ExtractionBroken {
	e := emailtpl.ExtractionBroken{RecipientName: d.RecipientName, MonitorName: d.MonitorName, Misses: max(d.Misses, 1),
		At: d.ChangedAt, Timezone: d.Timezone, MonitorURL: monitorURL, UnsubscribeURL: unsubscribe}
	if m := d.Miss; m != nil {
		e.Fact, e.Selector, e.Snippet = m.Fact, m.Selector, m.Snippet
		e.LastGood, e.LastEvidence = monitor.FactValue(m.LastGood), m.LastGood.Evidence
	}
	if r := d.Repair; r != nil {
		if r.Verified && !r.Applied {
			e.Suggested = r.Selector
		} else if !r.Verified {
			e.Rejected = r.Reason
		}
	}
	return e
}

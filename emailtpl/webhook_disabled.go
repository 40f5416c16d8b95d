package emailtpl

import (
	"strings"
	"time"

	"github.com/vigilhq/vigil/domain"
)

// WebhookDisabled is the data for the email telling a user that Vigil turned a webhook
// action off because its endpoint answered 410 Gone.
type WebhookDisabled struct {
	RecipientName string
	ActionName    string
	URL           string
	Answer        string // what the endpoint said
	At            time.Time
	Timezone      string
	// SettingsURL is where notifications are managed; UnsubscribeURL the one-click link.
	SettingsURL    string
	UnsubscribeURL string
}

type webhookDisabledView struct {
	Layout     layout
	Greeting   string
	ActionName string
	URL        string
	Answer     string
	At         string
}

// WebhookDisabled renders the email sent when a webhook action is turned off. It returns a
// *domain.Error with code EINVALID if d is incomplete.
func (r *Renderer) WebhookDisabled(d WebhookDisabled) (Email, error) {
	fields := map[string]string{}
	if strings.TrimSpace(d.ActionName) == "" {
		fields["action_name"] = "is required"
	}
	if d.At.IsZero() {
		fields["at"] = "is required"
	}
	for name, u := range map[string]string{"settings_url": d.SettingsURL, "unsubscribe_url": d.UnsubscribeURL} {
		if !absoluteHTTPURL(u) {
			fields[name] = "must be an absolute http(s) URL"
		}
	}
	if len(fields) > 0 {
		return Email{}, &domain.Error{Code: domain.EINVALID, Message: "Invalid webhook-disabled email data.", Fields: fields}
	}
	subject := truncate(oneLine(d.ActionName), subjectNameMaxRunes) + ": webhook turned off"
	v := webhookDisabledView{Greeting: greeting(d.RecipientName), ActionName: d.ActionName, URL: d.URL,
		Answer: strings.TrimSpace(d.Answer), At: formatTime(d.At, d.Timezone),
		Layout: layout{Title: subject, Preheader: "Its endpoint answered 410 Gone, so Vigil stopped calling it.",
			ButtonLabel: "Manage notifications", ButtonURL: d.SettingsURL, UnsubscribeURL: d.UnsubscribeURL,
			FooterNote: "You receive this email because you own the webhook action \u201c" + d.ActionName + "\u201d."}}
	html, text, err := r.render("webhook_disabled", v)
	if err != nil {
		return Email{}, err
	}
	return Email{Subject: subject, HTML: html, Text: text}, nil
}

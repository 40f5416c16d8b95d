package emailtpl

import (
	"fmt"
	"strings"
	"time"

	"github.com/vigilhq/vigil/domain"
)

// MonitorFailing is the data for the email telling a user that a monitor's checks keep
// failing, so Vigil stopped running it.
type MonitorFailing struct {
	RecipientName string
	MonitorName   string
	Prompt        string
	Failures      int    // consecutive failed checks
	LastError     string // the last failure, as users may read it
	FailedAt      time.Time
	Timezone      string
	// MonitorURL links to the monitor; UnsubscribeURL is the one-click unsubscribe link.
	MonitorURL     string
	UnsubscribeURL string
}

type monitorFailingView struct {
	Layout      layout
	Greeting    string
	MonitorName string
	Failures    int
	LastError   string
	Prompt      string
	FailedAt    string
	MonitorURL  string
}

// MonitorFailing renders the email sent when a monitor is put in error. It returns a
// *domain.Error with code EINVALID if d is incomplete.
func (r *Renderer) MonitorFailing(d MonitorFailing) (Email, error) {
	fields := map[string]string{}
	if strings.TrimSpace(d.MonitorName) == "" {
		fields["monitor_name"] = "is required"
	}
	if d.Failures < 1 {
		fields["failures"] = "must be at least 1"
	}
	if d.FailedAt.IsZero() {
		fields["failed_at"] = "is required"
	}
	if !absoluteHTTPURL(d.MonitorURL) {
		fields["monitor_url"] = "must be an absolute http(s) URL"
	}
	if !absoluteHTTPURL(d.UnsubscribeURL) {
		fields["unsubscribe_url"] = "must be an absolute http(s) URL"
	}
	if len(fields) > 0 {
		return Email{}, &domain.Error{Code: domain.EINVALID, Message: "Invalid monitor-failing email data.", Fields: fields}
	}
	summary := fmt.Sprintf("The last %d checks failed, so Vigil paused this monitor.", d.Failures)
	v := monitorFailingView{
		Greeting: greeting(d.RecipientName), MonitorName: d.MonitorName, Failures: d.Failures,
		LastError: strings.TrimSpace(d.LastError), Prompt: strings.TrimSpace(d.Prompt),
		FailedAt: formatTime(d.FailedAt, d.Timezone), MonitorURL: d.MonitorURL,
		Layout: layout{
			Title: d.MonitorName + ": checks are failing", Preheader: summary,
			ButtonLabel: "Fix the monitor", ButtonURL: d.MonitorURL, UnsubscribeURL: d.UnsubscribeURL,
			FooterNote: "You receive this email because you own the monitor \u201c" + d.MonitorName + "\u201d.",
		},
	}
	html, text, err := r.render("monitor_failing", v)
	if err != nil {
		return Email{}, err
	}
	return Email{Subject: truncate(oneLine(d.MonitorName), subjectNameMaxRunes) + ": checks are failing", HTML: html, Text: text}, nil
}

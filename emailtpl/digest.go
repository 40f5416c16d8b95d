package emailtpl

import (
	"fmt"
	"strings"
	"time"

	"github.com/vigilhq/vigil/domain"
)

// DigestSubject is the subject of the daily digest; the day is added.
const DigestSubject = "Your Vigil digest"

// DigestChange is one state change in a digest.
type DigestChange struct {
	From, To string // StateUnknown, StateActive or StateInactive
	At       time.Time
	Facts    []FactLine
}

// DigestMonitor is one monitor's changes since the last digest, oldest first.
type DigestMonitor struct {
	Name       string
	MonitorURL string
	Changes    []DigestChange
}

// Digest is the data for the daily digest email.
type Digest struct {
	RecipientName  string
	Day            string // the recipient's local day, 2026-12-01
	Timezone       string
	Monitors       []DigestMonitor
	SettingsURL    string // where digest hour and time zone are changed
	UnsubscribeURL string
}

type digestView struct {
	Layout   layout
	Greeting string
	Day      string
	Count    string
	Monitors []digestMonitorView
}

type digestMonitorView struct {
	Name       string
	MonitorURL string
	Changes    []digestChangeView
}

type digestChangeView struct {
	FromLabel, ToLabel string
	FromBadge, ToBadge any
	At                 string
	Facts              []factView
}

// Digest renders the daily digest: every change since the last one, grouped by monitor. It
// returns a *domain.Error with code EINVALID if d is incomplete or has nothing to report
// (an empty day sends nothing).
func (r *Renderer) Digest(d Digest) (Email, error) {
	fields := map[string]string{}
	if len(d.Monitors) == 0 {
		fields["monitors"] = "must list at least one monitor: an empty digest is not sent"
	}
	if _, err := time.Parse(time.DateOnly, d.Day); err != nil {
		fields["day"] = "must be a date such as 2026-12-01"
	}
	if !absoluteHTTPURL(d.SettingsURL) {
		fields["settings_url"] = "must be an absolute http(s) URL"
	}
	if !absoluteHTTPURL(d.UnsubscribeURL) {
		fields["unsubscribe_url"] = "must be an absolute http(s) URL"
	}
	changes := 0
	for i, m := range d.Monitors {
		if !absoluteHTTPURL(m.MonitorURL) {
			fields[fmt.Sprintf("monitors[%d].monitor_url", i)] = "must be an absolute http(s) URL"
		}
		changes += len(m.Changes)
	}
	if len(fields) > 0 {
		return Email{}, &domain.Error{Code: domain.EINVALID, Message: "Invalid digest email data.", Fields: fields}
	}
	day, _ := time.Parse(time.DateOnly, d.Day)
	dayLabel := day.Format("Monday 2 January 2006")
	count := fmt.Sprintf("%d changes on %d monitors", changes, len(d.Monitors))
	switch {
	case changes == 1:
		count = "1 change"
	case len(d.Monitors) == 1:
		count = fmt.Sprintf("%d changes on 1 monitor", changes)
	}
	v := digestView{Greeting: greeting(d.RecipientName), Day: dayLabel, Count: count}
	for _, m := range d.Monitors {
		mv := digestMonitorView{Name: oneLine(m.Name), MonitorURL: m.MonitorURL}
		for _, c := range m.Changes {
			from, to := styleFor(c.From), styleFor(c.To)
			mv.Changes = append(mv.Changes, digestChangeView{FromLabel: from.label, ToLabel: to.label, FromBadge: from.badge,
				ToBadge: to.badge, At: formatTime(c.At, d.Timezone), Facts: factViews(c.Facts)})
		}
		v.Monitors = append(v.Monitors, mv)
	}
	v.Layout = layout{Title: DigestSubject + " for " + dayLabel, Preheader: count + " since your last digest.",
		ButtonLabel: "Digest settings", ButtonURL: d.SettingsURL, UnsubscribeURL: d.UnsubscribeURL,
		FooterNote: "You receive this digest because some of your triggers collect changes into a daily email."}
	html, text, err := r.render("digest", v)
	if err != nil {
		return Email{}, err
	}
	return Email{Subject: DigestSubject + " for " + strings.TrimSpace(day.Format("Mon 2 Jan")) + ": " + count, HTML: html, Text: text}, nil
}

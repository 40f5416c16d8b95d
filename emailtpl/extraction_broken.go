package emailtpl

import (
	"fmt"
	"strings"
	"time"

	"github.com/vigilhq/vigil/domain"
)

// ExtractionBroken is the data for the email telling a user that a value Vigil used to
// find on a monitor's source is no longer found, most often because the page's markup
// changed.
type ExtractionBroken struct {
	RecipientName string
	MonitorName   string
	Fact          string // the fact no longer found
	Selector      string // its selector that finds nothing, when it has one
	Misses        int    // evaluations in a row that missed it
	LastGood      string // the last good value, e.g. "120 USD"
	LastEvidence  string // the passage it was read from
	Snippet       string // the start of the page's text now
	// Suggested is a selector an AI provider proposed and Vigil verified (it reads the
	// last good value on the page now); Rejected says why a suggestion was not kept.
	Suggested string
	Rejected  string
	At        time.Time
	Timezone  string
	// MonitorURL links to the monitor; UnsubscribeURL is the one-click unsubscribe link.
	MonitorURL     string
	UnsubscribeURL string
}

type extractionBrokenView struct {
	Layout       layout
	Greeting     string
	MonitorName  string
	Fact         string
	Selector     string
	Misses       int
	LastGood     string
	LastEvidence string
	Snippet      string
	Suggested    string
	Rejected     string
	At           string
	MonitorURL   string
}

// ExtractionBroken renders the email sent when a fact found before is no longer found.
// It returns a *domain.Error with code EINVALID if d is incomplete.
func (r *Renderer) ExtractionBroken(d ExtractionBroken) (Email, error) {
	fields := map[string]string{}
	if strings.TrimSpace(d.MonitorName) == "" {
		fields["monitor_name"] = "is required"
	}
	if strings.TrimSpace(d.Fact) == "" {
		fields["fact"] = "is required"
	}
	if d.Misses < 1 {
		fields["misses"] = "must be at least 1"
	}
	if d.At.IsZero() {
		fields["at"] = "is required"
	}
	if !absoluteHTTPURL(d.MonitorURL) {
		fields["monitor_url"] = "must be an absolute http(s) URL"
	}
	if !absoluteHTTPURL(d.UnsubscribeURL) {
		fields["unsubscribe_url"] = "must be an absolute http(s) URL"
	}
	if len(fields) > 0 {
		return Email{}, &domain.Error{Code: domain.EINVALID, Message: "Invalid extraction-broken email data.", Fields: fields}
	}
	summary := fmt.Sprintf("The %s was not found in the last %d checks: the page changed.", d.Fact, d.Misses)
	v := extractionBrokenView{
		Greeting: greeting(d.RecipientName), MonitorName: d.MonitorName, Fact: d.Fact, Selector: strings.TrimSpace(d.Selector),
		Misses: d.Misses, LastGood: strings.TrimSpace(d.LastGood), LastEvidence: strings.TrimSpace(d.LastEvidence),
		Snippet: strings.TrimSpace(d.Snippet), Suggested: strings.TrimSpace(d.Suggested), Rejected: strings.TrimSpace(d.Rejected),
		At: formatTime(d.At, d.Timezone), MonitorURL: d.MonitorURL,
		Layout: layout{
			Title: d.MonitorName + ": the " + d.Fact + " is no longer found", Preheader: summary,
			ButtonLabel: "Fix the monitor", ButtonURL: d.MonitorURL, UnsubscribeURL: d.UnsubscribeURL,
			FooterNote: "You receive this email because you own the monitor \u201c" + d.MonitorName + "\u201d.",
		},
	}
	html, text, err := r.render("extraction_broken", v)
	if err != nil {
		return Email{}, err
	}
	subject := truncate(oneLine(d.MonitorName), subjectNameMaxRunes) + ": the " + truncate(oneLine(d.Fact), subjectNameMaxRunes) + " is no longer found"
	return Email{Subject: subject, HTML: html, Text: text}, nil
}

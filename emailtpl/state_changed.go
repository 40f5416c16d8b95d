package emailtpl

import (
	htmltemplate "html/template"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vigilhq/vigil/domain"
)

// Monitor states as they appear in StateChanged.From and StateChanged.To.
const (
	StateUnknown  = "unknown"
	StateActive   = "active"
	StateInactive = "inactive"
)

// subjectNameMaxRunes bounds the monitor name in a subject line so the outcome stays visible
// in inbox lists; the full name is in the body.
const subjectNameMaxRunes = 80

// FactLine is one fact the evaluation relied on, such as "price" = "479" "EUR".
type FactLine struct {
	Key   string
	Value string
	Unit  string
}

// StateChanged is the data for the email sent when a monitor's condition changes state.
type StateChanged struct {
	RecipientName string
	MonitorName   string
	// Prompt is the monitor's question or condition as the user wrote it.
	Prompt string
	// From and To are StateUnknown, StateActive or StateInactive.
	From, To string
	// Explanation says why, in one or two sentences (the AI's or the rule's explanation).
	Explanation string
	Facts       []FactLine
	ChangedAt   time.Time
	// Timezone is the recipient's IANA zone; ChangedAt is shown in it, or in UTC if it is
	// empty or unknown.
	Timezone string
	// MonitorURL links to the monitor; UnsubscribeURL is the one-click unsubscribe link.
	// Both must be absolute http(s) URLs. PauseURL (pause the monitor) and SettingsURL
	// (manage notifications) are shown when set.
	MonitorURL     string
	UnsubscribeURL string
	PauseURL       string
	SettingsURL    string
	// History is the recent values of the key fact, oldest first, drawn as a small bar
	// chart when there are at least two.
	History []ChartPoint
	// HistoryLabel names the charted fact, with its unit: "price (USD)".
	HistoryLabel string
}

// ChartPoint is one value of a chart.
type ChartPoint struct {
	At    time.Time
	Value float64
}

// stateChangedView is what the state_changed templates see: every value already worded and
// formatted, so the templates hold layout only.
type stateChangedView struct {
	Layout         layout
	Preheader      string
	Greeting       string
	MonitorName    string
	Headline       string
	Summary        string
	FromLabel      string
	ToLabel        string
	FromBadge      htmltemplate.CSS
	ToBadge        htmltemplate.CSS
	Explanation    string
	Facts          []factView
	Prompt         string
	ChangedAt      string
	MonitorURL     string
	UnsubscribeURL string
	PauseURL       string
	SettingsURL    string
	Chart          *chartView
}

// chartView is a bar chart in table cells: no image, no script, so every client shows it.
type chartView struct {
	Label string
	Min   string
	Max   string
	Bars  []barView
}

type barView struct {
	Height int    // pixels, of chartHeight
	Space  int    // chartHeight - Height
	Title  string // the value and when, for clients that show titles
	Last   bool
}

const chartHeight = 48

// chartOf draws points as bars scaled between their minimum and maximum.
func chartOf(points []ChartPoint, label, tz string) *chartView {
	if len(points) < 2 {
		return nil
	}
	lo, hi := points[0].Value, points[0].Value
	for _, p := range points {
		lo, hi = min(lo, p.Value), max(hi, p.Value)
	}
	c := &chartView{Label: oneLine(label), Min: formatNumber(lo), Max: formatNumber(hi)}
	for i, p := range points {
		h := chartHeight
		if hi > lo {
			h = 6 + int(float64(chartHeight-6)*(p.Value-lo)/(hi-lo))
		}
		c.Bars = append(c.Bars, barView{Height: h, Space: chartHeight - h, Title: formatNumber(p.Value) + " at " + formatTime(p.At, tz),
			Last: i == len(points)-1})
	}
	return c
}

func formatNumber(v float64) string {
	return strconv.FormatFloat(v, 'f', -1, 64)
}

type factView struct {
	Key   string
	Value string
}

// stateStyle is how a state is named and shown.
type stateStyle struct {
	label string
	badge htmltemplate.CSS
}

// styleFor returns the label and badge style for a validated state.
func styleFor(state string) stateStyle {
	const base = "display:inline-block;padding:4px 10px;border-radius:12px;font-size:14px;font-weight:600;line-height:20px;"
	switch state {
	case StateActive:
		return stateStyle{label: "Condition met", badge: base + "background-color:#dcfce7;color:#166534;"}
	case StateInactive:
		return stateStyle{label: "Condition not met", badge: base + "background-color:#e2e8f0;color:#334155;"}
	default:
		return stateStyle{label: "Unknown", badge: base + "background-color:#fef3c7;color:#92400e;"}
	}
}

// StateChanged renders the email telling a subscriber that a monitor changed state.
// It returns a *domain.Error with code EINVALID if d is incomplete.
func (r *Renderer) StateChanged(d StateChanged) (Email, error) {
	if err := validateStateChanged(d); err != nil {
		return Email{}, err
	}

	headline, summary, subjectPhrase := wordingFor(d.From, d.To)
	from, to := styleFor(d.From), styleFor(d.To)
	v := stateChangedView{
		Preheader:      summary,
		Greeting:       greeting(d.RecipientName),
		MonitorName:    d.MonitorName,
		Headline:       headline,
		Summary:        summary,
		FromLabel:      from.label,
		ToLabel:        to.label,
		FromBadge:      from.badge,
		ToBadge:        to.badge,
		Explanation:    strings.TrimSpace(d.Explanation),
		Facts:          factViews(d.Facts),
		Prompt:         strings.TrimSpace(d.Prompt),
		ChangedAt:      formatTime(d.ChangedAt, d.Timezone),
		MonitorURL:     d.MonitorURL,
		UnsubscribeURL: d.UnsubscribeURL,
		PauseURL:       d.PauseURL,
		SettingsURL:    d.SettingsURL,
		Chart:          chartOf(d.History, d.HistoryLabel, d.Timezone),
	}
	if v.Explanation != "" {
		v.Preheader = v.Explanation
	}
	v.Layout = layout{
		Title: d.MonitorName + ": " + headline, Preheader: v.Preheader,
		ButtonLabel: "View monitor", ButtonURL: d.MonitorURL, UnsubscribeURL: d.UnsubscribeURL,
		FooterNote: "You receive this email because you subscribed to changes of \u201c" + d.MonitorName + "\u201d.",
	}

	html, text, err := r.render("state_changed", v)
	if err != nil {
		return Email{}, err
	}
	return Email{
		Subject: truncate(oneLine(d.MonitorName), subjectNameMaxRunes) + ": " + subjectPhrase,
		HTML:    html,
		Text:    text,
	}, nil
}

// wordingFor says in readable words what a change from one state to another means.
func wordingFor(from, to string) (headline, summary, subject string) {
	switch to {
	case StateActive:
		return "Condition met", "The condition you are watching is now met.", "condition met"
	case StateInactive:
		if from == StateActive {
			return "Condition no longer met", "The condition you are watching is no longer met.", "condition no longer met"
		}
		return "Condition not met", "The condition you are watching is not met.", "condition not met"
	default:
		return "Status unknown", "Vigil can currently not tell whether the condition you are watching is met.", "status unknown"
	}
}

func validateStateChanged(d StateChanged) error {
	fields := map[string]string{}
	if strings.TrimSpace(d.MonitorName) == "" {
		fields["monitor_name"] = "is required"
	}
	if !validState(d.From) {
		fields["from"] = "must be unknown, active or inactive"
	}
	if !validState(d.To) {
		fields["to"] = "must be unknown, active or inactive"
	}
	if validState(d.From) && d.From == d.To {
		fields["to"] = "must differ from from"
	}
	if d.ChangedAt.IsZero() {
		fields["changed_at"] = "is required"
	}
	if !absoluteHTTPURL(d.MonitorURL) {
		fields["monitor_url"] = "must be an absolute http(s) URL"
	}
	if !absoluteHTTPURL(d.UnsubscribeURL) {
		fields["unsubscribe_url"] = "must be an absolute http(s) URL"
	}
	for name, u := range map[string]string{"pause_url": d.PauseURL, "settings_url": d.SettingsURL} {
		if u != "" && !absoluteHTTPURL(u) {
			fields[name] = "must be an absolute http(s) URL"
		}
	}
	if len(fields) > 0 {
		return &domain.Error{Code: domain.EINVALID, Message: "Invalid state-changed email data.", Fields: fields}
	}
	return nil
}

func validState(s string) bool {
	return s == StateUnknown || s == StateActive || s == StateInactive
}

func absoluteHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}

func greeting(name string) string {
	if name = oneLine(name); name == "" {
		return "Hello,"
	}
	return "Hi " + name + ","
}

func factViews(facts []FactLine) []factView {
	out := make([]factView, 0, len(facts))
	for _, f := range facts {
		value := strings.TrimSpace(f.Value)
		switch unit := strings.TrimSpace(f.Unit); {
		case unit == "":
		case unit == "%":
			value += unit
		default:
			value += " " + unit
		}
		out = append(out, factView{Key: oneLine(f.Key), Value: value})
	}
	return out
}

// formatTime renders t in the IANA zone tz, falling back to UTC when tz is empty or unknown.
func formatTime(t time.Time, tz string) string {
	loc := time.UTC
	if tz != "" {
		if l, err := time.LoadLocation(tz); err == nil {
			loc = l
		}
	}
	s := t.In(loc).Format("Mon 2 Jan 2006, 15:04 MST")
	if loc != time.UTC && loc.String() != "UTC" {
		s += " (" + loc.String() + ")"
	}
	return s
}

// oneLine collapses all whitespace, newlines included, to single spaces.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func truncate(s string, maxRunes int) string {
	if utf8.RuneCountInString(s) <= maxRunes {
		return s
	}
	runes := []rune(s)
	return strings.TrimSpace(string(runes[:maxRunes-1])) + "…"
}

// Package monitor holds the monitor entity, its classification (Spec), the facts extracted
// for it and the rules that move its state.
package monitor

import (
	"fmt"
	"hash/fnv"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vigilhq/vigil/domain"
)

// State is what the monitor currently reports about the world.
type State string

// States. A monitor is unknown until its first successful evaluation.
const (
	StateUnknown  State = "unknown"
	StateActive   State = "active"
	StateInactive State = "inactive"
)

// Status says whether the scheduler runs the monitor.
type Status string

// Statuses. StatusError is set after too many consecutive failures.
const (
	StatusActive Status = "active"
	StatusPaused Status = "paused"
	StatusError  Status = "error"
)

// Kind is the classification of a prompt.
type Kind string

// Kinds: a condition on present facts, or a change of a fact over time.
const (
	KindCurrentState     Kind = "current_state"
	KindHistoricalChange Kind = "historical_change"
)

// Limits on user input, shared by every entry point.
const (
	PromptMinLen = 3
	PromptMaxLen = 2000
	NameMaxLen   = 200
	MaxInterval  = 30 * 24 * time.Hour
	// ConfirmMax bounds Confirm: more agreeing evaluations in a row than this is a
	// different monitor (a longer interval), not a confirmation.
	ConfirmMax = 10
)

// Monitor is one watched thing of one user.
type Monitor struct {
	ID        string
	UserID    string
	Name      string
	Prompt    string
	Spec      Spec
	SourceURL string
	// SourceFormat says how the source is read (auto when "").
	SourceFormat SourceFormat
	// Render says the source is a page drawn by JavaScript, read in a browser.
	Render bool
	// AutoRepair applies a verified selector repair at once; without it a repair is only
	// proposed to the owner.
	AutoRepair bool
	Interval   time.Duration
	Cron       string // when set, runs follow it in Timezone; Interval is its shortest gap
	Timezone   string
	// Confirm is how many evaluations in a row must agree on a new state before it
	// replaces the current one (1: at once).
	Confirm             int
	Status              Status
	State               State
	StateChangedAt      *time.Time
	NextRunAt           time.Time
	LastEvaluatedAt     *time.Time
	LastEvaluationFor   *time.Time
	ConsecutiveFailures int
	LastError           string
	// ExtractionMisses counts the evaluations in a row that missed a fact found before on a
	// changed source; Repair is the newest selector repair, applied or proposed.
	ExtractionMisses int
	Repair           *Repair
	// ExtractionVersion is the Version at which what is extracted last changed (the spec,
	// the source, the way it is read): a success since then found the facts as they are
	// read now, so not finding one is a miss. Other edits (a name, a schedule, a pause)
	// leave it.
	ExtractionVersion int64
	ClassifiedBy      ClassifiedBy
	Version           int64
	CreatedAt         time.Time
	UpdatedAt         time.Time
}

// ClassifiedBy names the provider and model that produced a Spec.
type ClassifiedBy struct {
	Provider string `json:"provider"`
	Model    string `json:"model"`
}

// Draft is a monitor as a user asks for it, before classification.
type Draft struct {
	UserID    string
	Name      string
	Prompt    string
	SourceURL string
	Interval  time.Duration
	Cron      string // alternative to Interval: a five-field cron expression in Timezone
	Timezone  string
	Confirm   int // 0 means 1
	// SourceFormat says how the source is read; "" is auto.
	SourceFormat SourceFormat
	// Render reads the source in a browser, for pages drawn by JavaScript.
	Render bool
	// AutoRepair applies verified selector repairs instead of proposing them.
	AutoRepair bool
	// Selectors are where the user says the values are, by fact name (SelectorPrimary for
	// the main fact); nil keeps what the monitor has.
	Selectors map[string]string
}

// Validate checks a draft against the limits; minInterval comes from configuration.
// It returns an EINVALID *domain.Error naming every bad field.
func (d Draft) Validate(minInterval time.Duration) error {
	fields := map[string]string{}
	if n := utf8.RuneCountInString(strings.TrimSpace(d.Prompt)); n < PromptMinLen || n > PromptMaxLen {
		fields["prompt"] = fmt.Sprintf("must be %d to %d characters", PromptMinLen, PromptMaxLen)
	}
	if utf8.RuneCountInString(d.Name) > NameMaxLen {
		fields["name"] = fmt.Sprintf("must be at most %d characters", NameMaxLen)
	}
	switch {
	case d.Cron != "" && d.Interval != 0:
		fields["cron"] = "give either an interval or a cron expression, not both"
	case d.Cron != "":
		if _, gap, err := ParseCron(d.Cron); err != nil {
			fields["cron"] = "must be a five-field cron expression such as \"*/15 * * * *\" or @hourly"
		} else if gap < minInterval {
			fields["cron"] = fmt.Sprintf("runs more often than every %s", minInterval)
		}
	case d.Interval < minInterval || d.Interval > MaxInterval:
		fields["interval"] = fmt.Sprintf("must be between %s and 30 days", minInterval)
	}
	if d.SourceURL != "" {
		u, err := url.Parse(d.SourceURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			fields["source_url"] = "must be an http or https URL"
		}
	}
	if !d.SourceFormat.Valid() {
		fields["source_format"] = fmt.Sprintf("must be one of %s", formatList())
	}
	validateSelectors(d.Selectors, fields)
	if d.Timezone != "" {
		if _, err := time.LoadLocation(d.Timezone); err != nil {
			fields["timezone"] = "must be an IANA time zone such as Europe/Paris"
		}
	}
	if d.Confirm < 0 || d.Confirm > ConfirmMax {
		fields["confirm"] = fmt.Sprintf("must be from 1 to %d evaluations in a row", ConfirmMax)
	}
	if d.UserID == "" {
		fields["user_id"] = "is required"
	}
	if len(fields) > 0 {
		return &domain.Error{Code: domain.EINVALID, Message: "The monitor has invalid fields.", Fields: fields}
	}
	return nil
}

// New builds an active monitor from a validated draft and its classification. It is due at
// once, so a new monitor is evaluated straight away.
func New(id string, d Draft, spec Spec, by ClassifiedBy, now time.Time) *Monitor {
	name := strings.TrimSpace(d.Name)
	if name == "" {
		name = spec.Summary
	}
	if name == "" {
		name = d.Prompt
	}
	if utf8.RuneCountInString(name) > NameMaxLen {
		name = string([]rune(name)[:NameMaxLen])
	}
	tz := d.Timezone
	if tz == "" {
		tz = "UTC"
	}
	interval := d.Interval
	if d.Cron != "" {
		if _, gap, err := ParseCron(d.Cron); err == nil {
			interval = gap
		}
	}
	return &Monitor{
		ID: id, UserID: d.UserID, Name: name, Prompt: strings.TrimSpace(d.Prompt), Spec: spec,
		SourceURL: d.SourceURL, SourceFormat: d.SourceFormat.OrAuto(), Render: d.Render, AutoRepair: d.AutoRepair, Interval: interval, Cron: d.Cron, Timezone: tz, Confirm: max(d.Confirm, 1),
		Status: StatusActive, State: StateUnknown, NextRunAt: now, ClassifiedBy: by,
		Version: 1, ExtractionVersion: 1, CreatedAt: now, UpdatedAt: now,
	}
}

func formatList() string {
	names := make([]string, len(SourceFormats))
	for i, f := range SourceFormats {
		names[i] = string(f)
	}
	return strings.Join(names, ", ")
}

// NextRun returns the first run strictly after after. Runs of a monitor sit at a fixed
// phase within its interval, derived from its id, so monitors sharing an interval spread
// over it instead of all firing at the top of the hour; missed slots are skipped.
func NextRun(id string, interval time.Duration, after time.Time) time.Time {
	if interval <= 0 {
		return after
	}
	h := fnv.New64a()
	h.Write([]byte(id))
	phase := time.Duration(h.Sum64() % uint64(interval)) // #nosec G115 -- below interval, itself a positive time.Duration
	t := after.Truncate(interval).Add(phase)
	for !t.After(after) {
		t = t.Add(interval)
	}
	return t
}

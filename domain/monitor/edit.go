package monitor

import (
	"strings"
	"time"

	"github.com/vigilhq/vigil/domain"
)

// Changes are the fields a user edits; nil leaves a field as it is.
type Changes struct {
	Name      *string
	Prompt    *string
	SourceURL *string
	Interval  *time.Duration
	Cron      *string
	Timezone  *string
	Status    *Status
	Confirm   *int
	// SourceFormat changes how the source is read.
	SourceFormat *SourceFormat
	// Render changes whether the source is read in a browser.
	Render *bool
	// AutoRepair changes whether verified selector repairs are applied.
	AutoRepair *bool
	// Selectors replace the selectors the user gave; an empty map removes them.
	Selectors *map[string]string
}

// Draft returns the monitor's settings with the changes applied, for validation and, when
// the prompt or source changed, classification.
func (m *Monitor) Draft(c Changes) Draft {
	d := Draft{UserID: m.UserID, Name: m.Name, Prompt: m.Prompt, SourceURL: m.SourceURL, Interval: m.Interval, Cron: m.Cron,
		Timezone: m.Timezone, Confirm: m.Confirm, SourceFormat: m.SourceFormat, Render: m.Render,
		AutoRepair: m.AutoRepair}
	if m.Cron != "" {
		d.Interval = 0 // derived from the cron expression
	}
	if c.Name != nil {
		d.Name = *c.Name
	}
	if c.Prompt != nil {
		d.Prompt = *c.Prompt
	}
	if c.SourceURL != nil {
		d.SourceURL = *c.SourceURL
	}
	if c.Cron != nil {
		d.Cron = *c.Cron
		if d.Cron != "" && c.Interval == nil {
			d.Interval = 0
		}
	}
	if c.Interval != nil {
		d.Interval = *c.Interval
		if c.Cron == nil {
			d.Cron = "" // an interval replaces a cron schedule
		}
	}
	if c.Timezone != nil {
		d.Timezone = *c.Timezone
	}
	if c.SourceFormat != nil {
		d.SourceFormat = *c.SourceFormat
	}
	if c.Render != nil {
		d.Render = *c.Render
	}
	if c.AutoRepair != nil {
		d.AutoRepair = *c.AutoRepair
	}
	if c.Selectors != nil {
		d.Selectors = *c.Selectors
		if d.Selectors == nil {
			d.Selectors = map[string]string{}
		}
	}
	if c.Confirm != nil {
		d.Confirm = *c.Confirm
		if d.Confirm == 0 {
			d.Confirm = -1 // an explicit 0 is invalid, not the default
		}
	}
	return d
}

// NeedsClassification reports whether the changes alter what is watched, so the prompt must
// be classified again.
func (m *Monitor) NeedsClassification(c Changes) bool {
	return (c.Prompt != nil && strings.TrimSpace(*c.Prompt) != m.Prompt) || (c.SourceURL != nil && *c.SourceURL != m.SourceURL)
}

// Edited says which columns the pipeline also writes an edit changed, so the store writes
// those only when the edit decided to, and never writes back what it read: the recorder
// and the scheduler may have moved the state, the schedule or the failures meanwhile.
type Edited struct {
	ResetState    bool // a new classification: the state is unknown again (State, StateChangedAt)
	SetStatus     bool // the user paused or resumed (Status)
	ClearFailures bool // a resume forgets the failures (ConsecutiveFailures, LastError)
	RunNow        bool // a changed schedule or a resume runs at once (NextRunAt)
	// ClearRepair: what is extracted changed (new selectors, a new classification, another
	// way of reading the source), which settles a broken extraction (ExtractionMisses,
	// Repair) and moves ExtractionVersion.
	ClearRepair bool
}

// Edit applies validated changes; spec and by are the new classification when
// NeedsClassification said so, else nil. What is watched changing resets the state to
// unknown; a changed schedule, a changed way of reading the source or a resumed monitor
// runs at once. A new classification keeps the selectors the user gave for the facts it
// still has. Users may set the status to active or paused only. It reports which
// pipeline-owned fields it changed.
func (m *Monitor) Edit(d Draft, c Changes, spec *Spec, by ClassifiedBy, now time.Time) (Edited, error) {
	var e Edited
	if c.Status != nil && *c.Status != StatusActive && *c.Status != StatusPaused {
		return e, &domain.Error{Code: domain.EINVALID, Message: "The monitor has invalid fields.",
			Fields: map[string]string{"status": "must be active or paused"}}
	}
	fresh := New(m.ID, d, m.Spec, m.ClassifiedBy, now) // normalised name, interval and zone
	reading := fresh.SourceFormat != m.SourceFormat.OrAuto() || fresh.Render != m.Render
	runNow := fresh.Interval != m.Interval || fresh.Cron != m.Cron || fresh.Timezone != m.Timezone || reading
	e.ClearRepair = reading
	m.Name, m.Prompt, m.SourceURL, m.SourceFormat, m.Render = fresh.Name, fresh.Prompt, fresh.SourceURL, fresh.SourceFormat, fresh.Render
	m.AutoRepair = fresh.AutoRepair
	m.Interval, m.Cron, m.Timezone, m.Confirm = fresh.Interval, fresh.Cron, fresh.Timezone, fresh.Confirm
	if spec != nil {
		kept := spec.KeepUserSelectors(m.Spec)
		spec = &kept
	}
	if c.Selectors != nil {
		base := m.Spec
		if spec != nil {
			base = *spec
		}
		withSelectors, err := base.WithSelectors(d.Selectors)
		if err != nil {
			return e, err
		}
		if spec != nil {
			spec = &withSelectors
		} else {
			m.Spec = withSelectors
		}
		runNow = true
		e.ClearRepair = true
	}
	if spec != nil {
		if c.Name == nil && m.Name == m.Spec.Summary && spec.Summary != "" {
			m.Name = spec.Summary // a name taken from the old summary follows the new one
		}
		m.Spec, m.ClassifiedBy = *spec, by
		m.State, m.StateChangedAt = StateUnknown, &now
		e.ResetState, e.ClearRepair = true, true
		runNow = true
	}
	if c.Status != nil && *c.Status != m.Status {
		if *c.Status == StatusActive {
			m.ConsecutiveFailures, m.LastError = 0, ""
			e.ClearFailures = true
			runNow = true
		}
		m.Status = *c.Status
		e.SetStatus = true
	}
	if runNow {
		m.NextRunAt = now
		e.RunNow = true
	}
	m.Version++
	if e.ClearRepair {
		m.ExtractionMisses, m.Repair, m.ExtractionVersion = 0, nil, m.Version
	}
	m.UpdatedAt = now
	return e, nil
}

package app

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/vigilhq/vigil/domain/ai"
	"github.com/vigilhq/vigil/domain/monitor"
	"github.com/vigilhq/vigil/domain/trigger"
)

// Classifier turns a prompt into a Spec; ai.Provider satisfies it.
type Classifier interface {
	Classify(ctx context.Context, prompt string, hints ai.Hints) (monitor.Spec, ai.Usage, error)
}

// MonitorStore persists monitors.
type MonitorStore interface {
	// CreateMonitor inserts m, the triggers of plan and, in the same transaction, the
	// MonitorCreated event. Returns EINVALID when the owner does not exist, ENOTFOUND when
	// a trigger names an action that is not the owner's, ECONFLICT for two triggers with
	// the same action and condition.
	CreateMonitor(ctx context.Context, m *monitor.Monitor, plan TriggerPlan) error
	// FindMonitorByID returns the monitor or ENOTFOUND.
	FindMonitorByID(ctx context.Context, id string) (*monitor.Monitor, error)
}

// TriggerPlan is the triggers a new monitor starts with.
type TriggerPlan struct {
	// Default adds trigger.DefaultSpec to the owner's default email action, when the
	// owner still has one.
	Default bool
	Specs   []trigger.Spec
}

// Monitors is the CreateMonitor use case (the HTTP API for monitors builds on it).
type Monitors struct {
	store       MonitorStore
	classifier  Classifier
	now         func() time.Time
	minInterval time.Duration
}

// NewMonitors returns the monitor use cases.
func NewMonitors(store MonitorStore, classifier Classifier, now func() time.Time, minInterval time.Duration) *Monitors {
	return &Monitors{store: store, classifier: classifier, now: now, minInterval: minInterval}
}

// Create validates the draft, classifies its prompt and stores the monitor, due at once,
// with no triggers. A prompt that cannot be monitored is an EINVALID error saying what was
// not understood.
func (s *Monitors) Create(ctx context.Context, d monitor.Draft) (*monitor.Monitor, error) {
	return s.create(ctx, d, false, TriggerPlan{})
}

// create is Create with the triggers of plan; suggested says the interval is a default
// that the classification's suggested interval may replace.
func (s *Monitors) create(ctx context.Context, d monitor.Draft, suggested bool, plan TriggerPlan) (*monitor.Monitor, error) {
	if err := d.Validate(s.minInterval); err != nil {
		return nil, err
	}
	spec, usage, err := s.classifier.Classify(ai.WithUser(ctx, d.UserID), d.Prompt, ai.Hints{SourceURL: d.SourceURL})
	if err != nil {
		return nil, fmt.Errorf("classify prompt: %w", err)
	}
	if spec.NeedsSource && d.SourceURL == "" {
		return nil, needsSource()
	}
	if len(d.Selectors) > 0 {
		if spec, err = spec.WithSelectors(d.Selectors); err != nil {
			return nil, err
		}
	}
	if suggested && d.Cron == "" {
		if iv, err := time.ParseDuration(spec.SuggestedInterval); err == nil && iv > 0 {
			d.Interval = min(max(iv, s.minInterval), monitor.MaxInterval)
		}
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, fmt.Errorf("new monitor id: %w", err)
	}
	m := monitor.New(id.String(), d, spec, monitor.ClassifiedBy{Provider: usage.Provider, Model: usage.Model}, s.now().UTC())
	if err := s.store.CreateMonitor(ctx, m, plan); err != nil {
		return nil, fmt.Errorf("store monitor: %w", err)
	}
	return m, nil
}

// Package event defines Vigil's domain events: past-tense facts that one role publishes and
// others consume. Only add fields; a breaking change is a new .v2 type.
package event

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/vigilhq/vigil/domain/monitor"
)

// Event is implemented by every domain event.
type Event interface {
	// EventID is unique per event and stable across retries: it becomes the
	// CloudEvents id and the JetStream de-duplication id.
	EventID() string
	// EventType is the versioned CloudEvents type, e.g. vigil.monitor.created.v1.
	EventType() string
	// AggregateID is the id of the entity the event is about (the CloudEvents subject).
	AggregateID() string
	// OccurredAt is when the event happened.
	OccurredAt() time.Time
}

// Event types.
const (
	TypeMonitorCreated        = "vigil.monitor.created.v1"
	TypeMonitorUpdated        = "vigil.monitor.updated.v1"
	TypeMonitorDeleted        = "vigil.monitor.deleted.v1"
	TypeEvaluationDue         = "vigil.evaluation.due.v1"
	TypeEvaluationCompleted   = "vigil.evaluation.completed.v1"
	TypeStateChanged          = "vigil.state.changed.v1"
	TypeNotificationRequested = "vigil.notification.requested.v1"
)

// MonitorChange is the payload of MonitorCreated, MonitorUpdated and MonitorDeleted.
type MonitorChange struct {
	ID        string    `json:"id"`
	MonitorID string    `json:"monitor_id"`
	UserID    string    `json:"user_id"`
	Version   int64     `json:"version"`
	At        time.Time `json:"occurred_at"`
}

// MonitorCreated says a monitor was created; the scheduler evaluates it at once.
type MonitorCreated struct{ MonitorChange }

// MonitorUpdated says a monitor's settings changed.
type MonitorUpdated struct{ MonitorChange }

// MonitorDeleted says a monitor and its data were deleted.
type MonitorDeleted struct{ MonitorChange }

func (e MonitorChange) EventID() string       { return e.ID }
func (e MonitorChange) AggregateID() string   { return e.MonitorID }
func (e MonitorChange) OccurredAt() time.Time { return e.At }

// EventType implements Event.
func (MonitorCreated) EventType() string { return TypeMonitorCreated }

// EventType implements Event.
func (MonitorUpdated) EventType() string { return TypeMonitorUpdated }

// EventType implements Event.
func (MonitorDeleted) EventType() string { return TypeMonitorDeleted }

// EvaluationDue asks for one evaluation of a monitor in the given slot.
type EvaluationDue struct {
	MonitorID    string    `json:"monitor_id"`
	ScheduledFor time.Time `json:"scheduled_for"`
	At           time.Time `json:"occurred_at"`
	// Monitor is what the evaluator needs of the monitor, as it was when the slot was
	// claimed, so an evaluation reads nothing from Postgres. Events of older schedulers
	// lack it; the evaluator then loads the monitor.
	Monitor *DueMonitor `json:"monitor,omitempty"`
}

// DueMonitor is the part of a monitor an evaluation works from. Spec and Previous are
// passed through as stored, undecoded: the scheduler claims tens of thousands of slots a
// second and has no use for them; Decode reads them.
type DueMonitor struct {
	UserID    string          `json:"user_id"`
	Version   int64           `json:"version"`
	Kind      monitor.Kind    `json:"kind"`
	Spec      json.RawMessage `json:"spec"` // a monitor.Spec
	SourceURL string          `json:"source_url,omitempty"`
	// SourceFormat says how the source is read; absent is auto.
	SourceFormat monitor.SourceFormat `json:"source_format,omitempty"`
	// Render says the source is read in a browser.
	Render bool `json:"render,omitempty"`
	// AutoRepair applies verified selector repairs.
	AutoRepair bool `json:"auto_repair,omitempty"`
	// ExtractionVersion is the version at which what is extracted last changed.
	ExtractionVersion int64 `json:"extraction_version,omitempty"`
	// Previous is the monitor's newest successful evaluation (a PreviousEvaluation), for
	// reusing its facts when the source has not changed; absent when there is none.
	Previous json.RawMessage `json:"previous,omitempty"`
}

// Decode returns the monitor's spec, with Kind (the authoritative column), and its previous
// success, nil when there is none.
func (d DueMonitor) Decode() (monitor.Spec, *PreviousEvaluation, error) {
	var spec monitor.Spec
	if err := json.Unmarshal(d.Spec, &spec); err != nil {
		return spec, nil, fmt.Errorf("decode spec: %w", err)
	}
	if d.Kind != "" {
		spec.Kind = d.Kind
	}
	if len(d.Previous) == 0 || string(d.Previous) == "null" {
		return spec, nil, nil
	}
	var p PreviousEvaluation
	if err := json.Unmarshal(d.Previous, &p); err != nil {
		return spec, nil, fmt.Errorf("decode previous evaluation: %w", err)
	}
	return spec, &p, nil
}

// PreviousEvaluation is what an evaluation reuses of the one before when the source is
// byte-for-byte unchanged and the monitor was not edited since.
type PreviousEvaluation struct {
	MonitorVersion int64          `json:"monitor_version"`
	SourceHash     string         `json:"source_hash"`
	State          monitor.State  `json:"state"`
	Explanation    string         `json:"explanation"`
	Provider       string         `json:"provider,omitempty"`
	Model          string         `json:"model,omitempty"`
	Facts          []monitor.Fact `json:"facts"`
}

// EvaluationDueID is the deterministic id of the evaluation of monitorID in slot, so two
// schedulers, or one restarted, never schedule the same slot twice.
func EvaluationDueID(monitorID string, slot time.Time) string {
	return monitorID + ":" + slot.UTC().Format(time.RFC3339Nano)
}

func (e EvaluationDue) EventID() string       { return EvaluationDueID(e.MonitorID, e.ScheduledFor) }
func (e EvaluationDue) EventType() string     { return TypeEvaluationDue }
func (e EvaluationDue) AggregateID() string   { return e.MonitorID }
func (e EvaluationDue) OccurredAt() time.Time { return e.At }

// Usage is what one evaluation cost.
type Usage struct {
	Provider     string  `json:"provider"`
	Model        string  `json:"model"`
	InputTokens  int     `json:"input_tokens"`
	OutputTokens int     `json:"output_tokens"`
	Cost         float64 `json:"cost"`
	LatencyMS    int64   `json:"latency_ms"`
	// FetchMS is how long the source took to fetch (or render).
	FetchMS int64 `json:"fetch_ms,omitempty"`
}

// EvaluationCompleted carries what one evaluation found.
type EvaluationCompleted struct {
	MonitorID    string                   `json:"monitor_id"`
	Kind         monitor.Kind             `json:"kind"` // historical_change: the recorder judges the state from stored facts
	ScheduledFor time.Time                `json:"scheduled_for"`
	StartedAt    time.Time                `json:"started_at"`
	FinishedAt   time.Time                `json:"finished_at"`
	Status       monitor.EvaluationStatus `json:"status"`
	State        monitor.State            `json:"state"`
	Confidence   float64                  `json:"confidence"`
	Explanation  string                   `json:"explanation"`
	Facts        []monitor.Fact           `json:"facts"`
	Usage        Usage                    `json:"usage"`
	Error        string                   `json:"error,omitempty"`
	Attempt      int                      `json:"attempt"`
	SourceHash   string                   `json:"source_hash,omitempty"`
	// MonitorVersion is the monitor's version the evaluation ran with; FactsReused says the
	// source was unchanged since the previous evaluation, so its facts were reused with no
	// AI call.
	MonitorVersion int64 `json:"monitor_version,omitempty"`
	FactsReused    bool  `json:"facts_reused,omitempty"`
	// Miss says a failed evaluation did not find a fact found before, on a changed source.
	Miss *monitor.Miss `json:"miss,omitempty"`
	// Repair is the selector suggested for the missing fact and what checking it showed;
	// when it was applied, the evaluation succeeded with it and RepairedSpec is the
	// monitor's spec with the new selector.
	Repair       *monitor.Repair `json:"repair,omitempty"`
	RepairedSpec *monitor.Spec   `json:"repaired_spec,omitempty"`
}

func (e EvaluationCompleted) EventID() string {
	return "completed:" + EvaluationDueID(e.MonitorID, e.ScheduledFor)
}
func (e EvaluationCompleted) EventType() string     { return TypeEvaluationCompleted }
func (e EvaluationCompleted) AggregateID() string   { return e.MonitorID }
func (e EvaluationCompleted) OccurredAt() time.Time { return e.FinishedAt }

// StateChanged says a monitor's state flipped in an evaluation.
type StateChanged struct {
	MonitorID    string        `json:"monitor_id"`
	UserID       string        `json:"user_id"`
	EvaluationID string        `json:"evaluation_id"`
	From         monitor.State `json:"from"`
	To           monitor.State `json:"to"`
	ScheduledFor time.Time     `json:"scheduled_for"`
	At           time.Time     `json:"occurred_at"`
}

func (e StateChanged) EventID() string       { return "state:" + e.EvaluationID }
func (e StateChanged) EventType() string     { return TypeStateChanged }
func (e StateChanged) AggregateID() string   { return e.MonitorID }
func (e StateChanged) OccurredAt() time.Time { return e.At }

// Notification channels. A NotificationRequested names its channel so that each channel's
// requests wait in a queue of their own: a burst of emails does not hold webhooks back.
const (
	ChannelEmail   = "email"
	ChannelWebhook = "webhook"
)

// NotificationRequested asks the mailer to deliver one notification.
type NotificationRequested struct {
	NotificationID string    `json:"notification_id"`
	UserID         string    `json:"user_id"`
	MonitorID      string    `json:"monitor_id"`
	At             time.Time `json:"occurred_at"`
	// Channel is the notification's channel; empty (requests written before channels had
	// queues of their own) is email's queue, whose consumer delivers any channel.
	Channel string `json:"channel,omitempty"`
	// Retry is the attempt a re-request is for (0 for the first request) and RequestedAt
	// (Unix nanoseconds) tells re-requests apart, so de-duplication keeps each of them.
	Retry       int   `json:"retry,omitempty"`
	RequestedAt int64 `json:"requested_at,omitempty"`
}

// EventID is "notification:<id>" for the first request and adds the attempt and the time
// of each re-request.
func (e NotificationRequested) EventID() string {
	if e.Retry == 0 {
		return "notification:" + e.NotificationID
	}
	return fmt.Sprintf("notification:%s:%d:%d", e.NotificationID, e.Retry, e.RequestedAt)
}
func (e NotificationRequested) EventType() string     { return TypeNotificationRequested }
func (e NotificationRequested) AggregateID() string   { return e.NotificationID }
func (e NotificationRequested) OccurredAt() time.Time { return e.At }

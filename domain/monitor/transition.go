package monitor

import "time"

// EvaluationStatus is the outcome of one evaluation run.
type EvaluationStatus string

// Evaluation outcomes. An abstaining evaluation succeeded technically but was not sure
// enough to report a state; it never changes the monitor's state.
const (
	EvaluationSucceeded EvaluationStatus = "succeeded"
	EvaluationFailed    EvaluationStatus = "failed"
	EvaluationAbstained EvaluationStatus = "abstained"
)

// Snapshot is the part of a monitor the state machine reads, locked while it decides.
type Snapshot struct {
	State               State
	Status              Status
	LastEvaluationFor   *time.Time
	ConsecutiveFailures int
	LastError           string
}

// Result is what one evaluation found.
type Result struct {
	ScheduledFor time.Time
	Status       EvaluationStatus
	State        State
	Error        string
}

// Outcome is what applying a Result does to a monitor.
type Outcome struct {
	Stale               bool // older than the newest applied evaluation: history only
	Changed             bool
	From, To            State
	Status              Status
	ConsecutiveFailures int
	LastError           string
}

// Apply decides how a monitor changes when result arrives. Evaluations are ordered by
// their slot, not by arrival: one older than the newest applied is stale and changes
// nothing. A failed or abstaining evaluation never changes the state; maxFailures
// failures in a row put an active monitor into StatusError.
func Apply(s Snapshot, r Result, maxFailures int) Outcome {
	o := Outcome{From: s.State, To: s.State, Status: s.Status, ConsecutiveFailures: s.ConsecutiveFailures, LastError: s.LastError}
	if s.LastEvaluationFor != nil && !r.ScheduledFor.After(*s.LastEvaluationFor) {
		o.Stale = true
		return o
	}
	switch r.Status {
	case EvaluationFailed:
		o.ConsecutiveFailures++
		o.LastError = r.Error
		if o.ConsecutiveFailures >= maxFailures && s.Status == StatusActive {
			o.Status = StatusError
		}
	case EvaluationAbstained:
		o.ConsecutiveFailures = 0
		o.LastError = ""
	case EvaluationSucceeded:
		o.ConsecutiveFailures = 0
		o.LastError = ""
		if r.State != StateUnknown && r.State != s.State {
			o.To = r.State
			o.Changed = true
		}
	}
	return o
}

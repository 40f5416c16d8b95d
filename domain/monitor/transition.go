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
	Confirm             int   // evaluations in a row that must agree on a new state (0 or 1: at once)
	PendingState        State // the new state the latest evaluations agree on, "" when none
	PendingCount        int   // how many in a row
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
	PendingState        State // carried to the next evaluation: see Snapshot
	PendingCount        int
}

// Apply decides how a monitor changes when result arrives. Evaluations are ordered by
// their slot, not by arrival: one older than the newest applied is stale and changes
// nothing. A failed or abstaining evaluation never changes the state; maxFailures
// failures in a row put an active monitor into StatusError. With Confirm N, a new state
// replaces the current one only when N successful evaluations in a row report it; failed
// and abstaining evaluations neither count towards that nor break it.
func Apply(s Snapshot, r Result, maxFailures int) Outcome {
	o := Outcome{From: s.State, To: s.State, Status: s.Status, ConsecutiveFailures: s.ConsecutiveFailures, LastError: s.LastError,
		PendingState: s.PendingState, PendingCount: s.PendingCount}
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
		switch {
		case r.State == StateUnknown:
		case r.State == s.State:
			o.PendingState, o.PendingCount = "", 0 // the current state holds: any streak ends
		default:
			if s.PendingState == r.State {
				o.PendingCount++
			} else {
				o.PendingState, o.PendingCount = r.State, 1
			}
			if o.PendingCount >= max(s.Confirm, 1) {
				o.To, o.Changed = r.State, true
				o.PendingState, o.PendingCount = "", 0
			}
		}
	}
	return o
}

package app

import (
	"context"
	"fmt"

	"github.com/vigilhq/vigil/domain/event"
	"github.com/vigilhq/vigil/domain/monitor"
)

// Recording is what storing one evaluation did.
type Recording struct {
	EvaluationID string
	Duplicate    bool // the slot was already recorded: nothing changed
	Outcome      monitor.Outcome
}

// EvaluationStore stores evaluations.
type EvaluationStore interface {
	// RecordEvaluation, in one transaction: locks the monitor, stores the evaluation (once
	// per monitor and slot) and its facts, applies monitor.Apply to the monitor, and when
	// the state flips appends StateChanged to the outbox. Returns ENOTFOUND when the
	// monitor no longer exists.
	RecordEvaluation(ctx context.Context, ev event.EvaluationCompleted, maxFailures int) (Recording, error)
}

// Recorder is the RecordEvaluation use case.
type Recorder struct {
	store       EvaluationStore
	maxFailures int
}

// NewRecorder returns a Recorder; maxFailures consecutive failures put a monitor in error.
func NewRecorder(store EvaluationStore, maxFailures int) *Recorder {
	return &Recorder{store: store, maxFailures: max(maxFailures, 1)}
}

// Record stores one completed evaluation; redelivery is harmless.
func (r *Recorder) Record(ctx context.Context, ev event.EvaluationCompleted) (Recording, error) {
	rec, err := r.store.RecordEvaluation(ctx, ev, r.maxFailures)
	if err != nil {
		return rec, fmt.Errorf("record evaluation of %s at %s: %w", ev.MonitorID, ev.ScheduledFor, err)
	}
	return rec, nil
}

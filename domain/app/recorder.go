package app

import (
	"context"
	"fmt"
	"time"

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

// HistoryStore reads stored facts.
type HistoryStore interface {
	// FactHistory returns the observations of one fact of a monitor before before: every
	// one at or after since (InWindow), the newest at or before since (AtStart) and the
	// newest overall (Previous).
	FactHistory(ctx context.Context, monitorID, key string, since, before time.Time) (monitor.History, error)
}

// Recorder is the RecordEvaluation use case. For historical_change monitors it judges the
// state itself, comparing the extracted value with stored facts.
type Recorder struct {
	store       EvaluationStore
	monitors    MonitorFinder
	history     HistoryStore
	maxFailures int
}

// NewRecorder returns a Recorder; maxFailures consecutive failures put a monitor in error.
func NewRecorder(store EvaluationStore, monitors MonitorFinder, history HistoryStore, maxFailures int) *Recorder {
	return &Recorder{store: store, monitors: monitors, history: history, maxFailures: max(maxFailures, 1)}
}

// Record stores one completed evaluation; redelivery is harmless.
func (r *Recorder) Record(ctx context.Context, ev event.EvaluationCompleted) (Recording, error) {
	if ev.Kind == monitor.KindHistoricalChange && ev.Status == monitor.EvaluationSucceeded {
		if err := r.judgeHistory(ctx, &ev); err != nil {
			return Recording{}, err
		}
	}
	rec, err := r.store.RecordEvaluation(ctx, ev, r.maxFailures)
	if err != nil {
		return rec, fmt.Errorf("record evaluation of %s at %s: %w", ev.MonitorID, ev.ScheduledFor, err)
	}
	return rec, nil
}

// judgeHistory sets the state of a historical_change evaluation from stored facts.
func (r *Recorder) judgeHistory(ctx context.Context, ev *event.EvaluationCompleted) error {
	m, err := r.monitors.FindMonitorByID(ctx, ev.MonitorID)
	if err != nil {
		return fmt.Errorf("load monitor %s: %w", ev.MonitorID, err)
	}
	rule := m.Spec.Change
	verdict := monitor.Verdict{State: monitor.StateUnknown, Explanation: "The monitor has no change rule."}
	if rule != nil {
		verdict.Explanation = fmt.Sprintf("No %s was extracted.", rule.Fact)
		for _, f := range ev.Facts {
			if f.Key != rule.Fact {
				continue
			}
			window, err := rule.WindowOf()
			if err != nil {
				verdict.Explanation = "The change rule is invalid: " + err.Error()
				break
			}
			at := f.ObservedAt
			if at.IsZero() {
				at = ev.FinishedAt
			}
			h, err := r.history.FactHistory(ctx, m.ID, f.Key, at.Add(-window), at)
			if err != nil {
				return fmt.Errorf("load history of %s: %w", f.Key, err)
			}
			verdict = monitor.CompareHistory(*rule, monitor.Point{At: at, Number: f.Number, Text: f.Text}, h)
			break
		}
	}
	ev.State, ev.Confidence, ev.Explanation = verdict.State, verdict.Confidence, verdict.Explanation
	if verdict.State == monitor.StateUnknown {
		ev.Status = monitor.EvaluationAbstained
	}
	return nil
}

package app

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/google/uuid"

	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/event"
	"github.com/vigilhq/vigil/domain/monitor"
)

// Recording is what storing one evaluation did.
type Recording struct {
	EvaluationID string
	Duplicate    bool // the slot was already recorded: nothing changed
	Missing      bool // the monitor no longer exists: nothing was stored
	Outcome      monitor.Outcome
}

// MonitorRecord is a monitor as the recorder decides on it.
type MonitorRecord struct {
	UserID  string
	Version int64 // the monitor's current version: edits bump it
	// ExtractionMisses counts the evaluations in a row that missed a fact found before.
	ExtractionMisses int
	monitor.Snapshot
}

// SlotKey names one evaluation slot of a monitor.
type SlotKey struct {
	MonitorID    string
	ScheduledFor int64 // Unix nanoseconds: times from JSON and from Postgres compare equal
}

// SlotOf returns the slot key of an evaluation.
func SlotOf(monitorID string, scheduledFor time.Time) SlotKey {
	return SlotKey{MonitorID: monitorID, ScheduledFor: scheduledFor.UnixNano()}
}

// RecordState is what the recorder decides on, loaded in the transaction that persists
// the plan, with the monitors locked.
type RecordState struct {
	Monitors map[string]MonitorRecord // by id; a deleted monitor is missing
	Recorded map[SlotKey]bool         // slots already stored
}

// NewEvaluation is an evaluation to store.
type NewEvaluation struct {
	ID       string
	Event    event.EvaluationCompleted
	Previous *monitor.State // the state before it; nil for a stale one
	Changed  bool
}

// MonitorChange is how one evaluation moved its monitor; the last one of a monitor in a
// batch is the monitor's new row.
type MonitorChange struct {
	MonitorID      string
	Outcome        monitor.Outcome
	EvaluatedAt    time.Time
	EvaluationFor  time.Time
	StateChangedAt *time.Time // when the batch changed the state last; nil when it did not
	// LastSuccess is the newest successful evaluation with facts and a source hash, which
	// the next evaluation may reuse; nil leaves the stored one.
	LastSuccess *event.PreviousEvaluation
	// ExtractionMisses is the monitor's new count of misses in a row.
	ExtractionMisses int
	// Repair is the newest selector repair, to show on the monitor; nil leaves the stored
	// one. RepairedSpec, when a repair was applied, is the monitor's new spec: the store
	// writes it and bumps the version, so evaluations made with the old selector are
	// history only.
	Repair       *monitor.Repair
	RepairedSpec *monitor.Spec
}

// RecordLimits are the recorder's thresholds; zero fields take the defaults.
type RecordLimits struct {
	MaxFailures int // consecutive failures that put a monitor in error (1 when 0)
	// MaxMisses is how many evaluations in a row may miss a fact found before, on a
	// changed source, before the owner is told (monitor.ExtractionMissesDefault).
	MaxMisses int
}

func (l RecordLimits) orDefaults() RecordLimits {
	l.MaxFailures = max(l.MaxFailures, 1)
	if l.MaxMisses <= 0 {
		l.MaxMisses = monitor.ExtractionMissesDefault
	}
	return l
}

// BrokenNotice asks the store to tell a monitor's owner that a fact is no longer found:
// the evaluation's miss and repair say which, with its last good evidence.
type BrokenNotice struct {
	MonitorID, UserID, EvaluationID string
	State                           monitor.State
	At                              time.Time
}

// FailingNotice asks the store to tell a monitor's owner it was put in error.
type FailingNotice struct {
	MonitorID, UserID, EvaluationID string
	State                           monitor.State
	At                              time.Time
}

// RecordPlan is what the recorder decided for a batch.
type RecordPlan struct {
	Evaluations  []NewEvaluation
	Monitors     []MonitorChange // one per monitor: its final state
	StateChanges []event.StateChanged
	Failing      []FailingNotice
	Broken       []BrokenNotice
	Recordings   []Recording // one per evaluation of the batch, in its order
}

// EvaluationStore stores evaluations.
type EvaluationStore interface {
	// RecordEvaluations, in one transaction: locks the batch's monitors and loads their
	// RecordState, calls decide, and persists the plan: the evaluations (once per monitor
	// and slot) and their facts, the monitors' new state, a notification for each failing
	// and broken notice, and StateChanged and NotificationRequested in the outbox.
	RecordEvaluations(ctx context.Context, evs []event.EvaluationCompleted, decide func(RecordState) (RecordPlan, error)) (RecordPlan, error)
}

// PlanRecording decides, with monitor.Apply, what each evaluation of a batch does to its
// monitor. A monitor's evaluations are applied in slot order, each on the state the one
// before left; an evaluation whose slot is recorded already is a duplicate, one for a
// monitor that is gone is missing, and one made with an older version of the monitor than
// the current is history only.
//
// Misses count apart from failures: a miss (a fact found before, not found on a changed
// source) adds one, a success resets them, and reaching limits.MaxMisses tells the owner,
// once per run of misses. An applied repair bumps the version the rest of the batch
// compares with.
func PlanRecording(evs []event.EvaluationCompleted, st RecordState, limits RecordLimits, newID func() (string, error)) (RecordPlan, error) {
	limits = limits.orDefaults()
	plan := RecordPlan{Recordings: make([]Recording, len(evs))}
	order := make([]int, len(evs))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return evs[order[a]].ScheduledFor.Before(evs[order[b]].ScheduledFor) })
	monitors := map[string]MonitorRecord{}
	seen := map[SlotKey]bool{}
	last := map[string]int{} // monitor id -> index in plan.Monitors
	for _, i := range order {
		ev := evs[i]
		m, ok := monitors[ev.MonitorID]
		if !ok {
			if m, ok = st.Monitors[ev.MonitorID]; !ok {
				plan.Recordings[i] = Recording{Missing: true}
				continue
			}
		}
		key := SlotOf(ev.MonitorID, ev.ScheduledFor)
		if st.Recorded[key] || seen[key] {
			plan.Recordings[i] = Recording{Duplicate: true,
				Outcome: monitor.Outcome{Stale: true, From: m.State, To: m.State, Status: m.Status}}
			continue
		}
		seen[key] = true
		out := monitor.Apply(m.Snapshot, monitor.Result{ScheduledFor: ev.ScheduledFor, Status: ev.Status, State: ev.State, Error: ev.Error}, limits.MaxFailures)
		if ev.MonitorVersion > 0 && ev.MonitorVersion < m.Version {
			// Judged with the monitor as it was before an edit (the prompt, the source, the
			// schedule): kept as history, but it must not move the state the edit reset.
			out = monitor.Outcome{Stale: true, From: m.State, To: m.State, Status: m.Status,
				ConsecutiveFailures: m.ConsecutiveFailures, LastError: m.LastError, PendingState: m.PendingState, PendingCount: m.PendingCount}
		}
		id, err := newID()
		if err != nil {
			return RecordPlan{}, fmt.Errorf("new evaluation id: %w", err)
		}
		ne := NewEvaluation{ID: id, Event: ev, Changed: out.Changed}
		if !out.Stale {
			prev := m.State
			ne.Previous = &prev
		}
		plan.Evaluations = append(plan.Evaluations, ne)
		plan.Recordings[i] = Recording{EvaluationID: id, Outcome: out}
		if out.Stale {
			continue
		}
		if out.Status == monitor.StatusError && m.Status != monitor.StatusError {
			plan.Failing = append(plan.Failing, FailingNotice{MonitorID: ev.MonitorID, UserID: m.UserID, EvaluationID: id,
				State: m.State, At: ev.FinishedAt})
		}
		if out.Changed {
			plan.StateChanges = append(plan.StateChanges, event.StateChanged{MonitorID: ev.MonitorID, UserID: m.UserID,
				EvaluationID: id, From: out.From, To: out.To, ScheduledFor: ev.ScheduledFor, At: ev.FinishedAt})
		}
		switch {
		case ev.Miss != nil:
			m.ExtractionMisses++
			if m.ExtractionMisses == limits.MaxMisses {
				plan.Broken = append(plan.Broken, BrokenNotice{MonitorID: ev.MonitorID, UserID: m.UserID, EvaluationID: id,
					State: m.State, At: ev.FinishedAt})
			}
		case ev.Status == monitor.EvaluationSucceeded:
			m.ExtractionMisses = 0
		}
		var repairedSpec *monitor.Spec
		if ev.RepairedSpec != nil && ev.Repair != nil && ev.Repair.Applied {
			repairedSpec = ev.RepairedSpec
			m.Version++
		}
		slot := ev.ScheduledFor
		m.State, m.Status, m.ConsecutiveFailures, m.LastError = out.To, out.Status, out.ConsecutiveFailures, out.LastError
		m.PendingState, m.PendingCount, m.LastEvaluationFor = out.PendingState, out.PendingCount, &slot
		monitors[ev.MonitorID] = m
		change := MonitorChange{MonitorID: ev.MonitorID, Outcome: out, EvaluatedAt: ev.FinishedAt, EvaluationFor: ev.ScheduledFor,
			ExtractionMisses: m.ExtractionMisses, Repair: ev.Repair, RepairedSpec: repairedSpec}
		if out.Changed {
			at := ev.FinishedAt
			change.StateChangedAt = &at
		}
		if ev.Status == monitor.EvaluationSucceeded && ev.SourceHash != "" && len(ev.Facts) > 0 {
			change.LastSuccess = &event.PreviousEvaluation{MonitorVersion: max(ev.MonitorVersion, 1), SourceHash: ev.SourceHash,
				State: ev.State, Explanation: ev.Explanation, Provider: ev.Usage.Provider, Model: ev.Usage.Model, Facts: ev.Facts}
		}
		if j, ok := last[ev.MonitorID]; ok {
			if change.StateChangedAt == nil {
				change.StateChangedAt = plan.Monitors[j].StateChangedAt
			}
			if change.LastSuccess == nil {
				change.LastSuccess = plan.Monitors[j].LastSuccess
			}
			if change.Repair == nil {
				change.Repair = plan.Monitors[j].Repair
			}
			if change.RepairedSpec == nil {
				change.RepairedSpec = plan.Monitors[j].RepairedSpec
			}
			plan.Monitors[j] = change
		} else {
			last[ev.MonitorID] = len(plan.Monitors)
			plan.Monitors = append(plan.Monitors, change)
		}
	}
	return plan, nil
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
	store    EvaluationStore
	monitors MonitorFinder
	history  HistoryStore
	limits   RecordLimits
}

// NewRecorder returns a Recorder with its limits.
func NewRecorder(store EvaluationStore, monitors MonitorFinder, history HistoryStore, limits RecordLimits) *Recorder {
	return &Recorder{store: store, monitors: monitors, history: history, limits: limits.orDefaults()}
}

// Record stores one completed evaluation; redelivery is harmless. It returns ENOTFOUND
// when the monitor no longer exists.
func (r *Recorder) Record(ctx context.Context, ev event.EvaluationCompleted) (Recording, error) {
	recs, err := r.RecordBatch(ctx, []event.EvaluationCompleted{ev})
	if err != nil {
		return Recording{}, err
	}
	if recs[0].Missing {
		return recs[0], &domain.Error{Code: domain.ENOTFOUND, Message: "The monitor no longer exists."}
	}
	return recs[0], nil
}

// RecordBatch stores a batch of completed evaluations in one transaction and returns what
// each did, in order; redelivery is harmless, and evaluations of deleted monitors are
// reported missing.
func (r *Recorder) RecordBatch(ctx context.Context, evs []event.EvaluationCompleted) ([]Recording, error) {
	for i := range evs {
		if evs[i].Kind == monitor.KindHistoricalChange && evs[i].Status == monitor.EvaluationSucceeded {
			if err := r.judgeHistory(ctx, &evs[i]); err != nil && !errors.Is(err, domain.ErrNotFound) {
				return nil, err
			}
		}
	}
	plan, err := r.store.RecordEvaluations(ctx, evs, func(st RecordState) (RecordPlan, error) {
		return PlanRecording(evs, st, r.limits, newEvaluationID)
	})
	if err != nil {
		return nil, fmt.Errorf("record %d evaluations: %w", len(evs), err)
	}
	return plan.Recordings, nil
}

// newEvaluationID makes time-ordered evaluation ids.
func newEvaluationID() (string, error) {
	id, err := uuid.NewV7()
	return id.String(), err
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

package app

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/ai"
	"github.com/vigilhq/vigil/domain/monitor"
	"github.com/vigilhq/vigil/domain/trigger"
)

// BacktestQuery proposes a change to a monitor, to replay over its stored facts: a new
// prompt (classified by the rules), a new condition, or a new change rule; nothing is the
// monitor as it is. Confirm overrides the monitor's.
type BacktestQuery struct {
	UserID, MonitorID string
	Prompt            *string
	Condition         *string
	Change            *monitor.ChangeRule
	Confirm           *int
	From, To          *time.Time
}

// TriggerReplay is what one of the monitor's triggers would have sent.
type TriggerReplay struct {
	Trigger      trigger.Trigger
	WouldFire    []time.Time
	ActuallySent int
}

// Backtest is what the proposed monitor would have done over the range, beside what the
// monitor did.
type Backtest struct {
	From, To     time.Time
	Spec         monitor.Spec
	Confirm      int
	Evaluations  int // stored evaluations replayed
	Flips        []monitor.Flip
	Timeline     []monitor.StateSegment
	Triggers     []TriggerReplay
	ActualFlips  int
	ActualAlerts int
	WouldAlert   int
}

// Summary says it in one line: "Would have alerted 3 times (2 state changes) in the last 30 days; it actually alerted once."
func (b Backtest) Summary() string {
	days := int(b.To.Sub(b.From).Round(24*time.Hour) / (24 * time.Hour))
	span := fmt.Sprintf("in the last %d days", days)
	if days <= 1 {
		span = "in the last day"
	}
	if b.Evaluations == 0 {
		return "No stored facts to replay " + span + "."
	}
	return fmt.Sprintf("Would have alerted %s (%s) %s; it actually alerted %s.", times(b.WouldAlert),
		plural(len(b.Flips), "state change"), span, times(b.ActualAlerts))
}

func times(n int) string {
	switch n {
	case 0:
		return "0 times"
	case 1:
		return "once"
	}
	return fmt.Sprintf("%d times", n)
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// BacktestStore reads what a backtest replays.
type BacktestStore interface {
	// FactPoints returns the facts of keys observed in [from, to), grouped by evaluation, in
	// time order, at most limit points.
	FactPoints(ctx context.Context, monitorID string, keys []string, from, to time.Time, limit int) ([]monitor.BacktestPoint, error)
	// Transitions is StatsStore's: the state before from and the transitions in [from, to).
	Transitions(ctx context.Context, monitorID string, from, to time.Time, limit int) (monitor.State, []monitor.Transition, error)
	// SentByTrigger counts the monitor's notifications created in [from, to) by trigger.
	SentByTrigger(ctx context.Context, monitorID string, from, to time.Time) (map[string]int, error)
}

// MonitorTriggers lists a user's monitor's triggers.
type MonitorTriggers interface {
	List(ctx context.Context, userID, monitorID string) ([]trigger.Trigger, error)
}

// Judge judges a current_state condition on facts without a model (the rules).
type Judge interface {
	Evaluate(ctx context.Context, spec monitor.Spec, facts []monitor.Fact, doc ai.Document) (monitor.Verdict, ai.Usage, error)
}

// BacktestService replays stored facts through proposed conditions and rules, with the
// state machine and trigger rules the pipeline uses and no AI call.
type BacktestService struct {
	monitors   OwnedMonitors
	store      BacktestStore
	triggers   MonitorTriggers
	classifier Classifier // the rules: a backtest costs nothing
	judge      Judge
	now        func() time.Time
}

// NewBacktestService returns a BacktestService.
func NewBacktestService(monitors OwnedMonitors, store BacktestStore, triggers MonitorTriggers, classifier Classifier, judge Judge, now func() time.Time) *BacktestService {
	return &BacktestService{monitors: monitors, store: store, triggers: triggers, classifier: classifier, judge: judge, now: now}
}

// Limits of a backtest.
const (
	BacktestRangeDefault = 30 * 24 * time.Hour
	BacktestMaxPoints    = 100_000
)

// Run backtests the query. A proposal that cannot be replayed (a prompt not understood, a
// condition or rule that does not parse, a fact the monitor never stored) is an EINVALID
// error naming the field.
func (s *BacktestService) Run(ctx context.Context, q BacktestQuery) (Backtest, error) {
	m, err := s.monitors.GetMonitor(ctx, q.UserID, q.MonitorID)
	if err != nil {
		return Backtest{}, err
	}
	b := Backtest{To: s.now().UTC(), Confirm: max(m.Confirm, 1)}
	if q.To != nil {
		b.To = q.To.UTC()
	}
	b.From = b.To.Add(-BacktestRangeDefault)
	if q.From != nil {
		b.From = q.From.UTC()
	}
	if !b.From.Before(b.To) {
		return b, invalidQuery("from", "must be before to")
	}
	if q.Confirm != nil {
		if *q.Confirm < 1 || *q.Confirm > monitor.ConfirmMax {
			return b, invalidQuery("confirm", fmt.Sprintf("must be from 1 to %d evaluations in a row", monitor.ConfirmMax))
		}
		b.Confirm = *q.Confirm
	}
	if b.Spec, err = s.proposal(ctx, m, q); err != nil {
		return b, err
	}
	keys := make([]string, len(b.Spec.Facts))
	for i, f := range b.Spec.Facts {
		keys[i] = f.Name
	}
	lookback := time.Duration(0)
	if b.Spec.Change != nil {
		lookback, _ = b.Spec.Change.WindowOf()
		lookback = max(lookback, 0)
	}
	points, err := s.store.FactPoints(ctx, m.ID, keys, b.From.Add(-lookback-24*time.Hour), b.To, BacktestMaxPoints+1)
	if err != nil {
		return b, fmt.Errorf("facts of %s: %w", m.ID, err)
	}
	if len(points) > BacktestMaxPoints {
		return b, invalidQuery("from", fmt.Sprintf("replays more than %d evaluations; use a shorter range", BacktestMaxPoints))
	}
	var judged []monitor.BacktestPoint
	var states []monitor.State
	if b.Spec.Kind == monitor.KindHistoricalChange {
		judged, states = monitor.JudgeChanges(*b.Spec.Change, points, b.From)
	} else {
		for _, p := range points {
			if p.At.Before(b.From) {
				continue
			}
			v, _, err := s.judge.Evaluate(ctx, b.Spec, p.Facts, ai.Document{})
			if err != nil {
				return b, invalidQuery("condition", domain.ErrorMessage(err))
			}
			judged, states = append(judged, p), append(states, v.State)
		}
	}
	b.Evaluations = len(judged)
	replay := monitor.ReplayStates(judged, states, b.Confirm, monitor.StateUnknown)
	b.Flips = replay.Flips
	transitions := make([]monitor.Transition, len(b.Flips))
	for i, f := range b.Flips {
		transitions[i] = monitor.Transition(f)
	}
	b.Timeline = monitor.Timeline(monitor.StateUnknown, transitions, b.From, b.To)
	return b, s.compare(ctx, q.UserID, m.ID, &b)
}

// compare fills in what the triggers would have sent and what actually happened.
func (s *BacktestService) compare(ctx context.Context, userID, monitorID string, b *Backtest) error {
	_, actual, err := s.store.Transitions(ctx, monitorID, b.From, b.To, BacktestMaxPoints)
	if err != nil {
		return fmt.Errorf("transitions of %s: %w", monitorID, err)
	}
	b.ActualFlips = len(actual)
	sent, err := s.store.SentByTrigger(ctx, monitorID, b.From, b.To)
	if err != nil {
		return fmt.Errorf("notifications of %s: %w", monitorID, err)
	}
	triggers, err := s.triggers.List(ctx, userID, monitorID)
	if err != nil {
		return fmt.Errorf("triggers of %s: %w", monitorID, err)
	}
	for _, t := range triggers {
		tr := TriggerReplay{Trigger: t, WouldFire: trigger.Simulate(t, b.Flips), ActuallySent: sent[t.ID]}
		b.WouldAlert += len(tr.WouldFire)
		b.ActualAlerts += tr.ActuallySent
		b.Triggers = append(b.Triggers, tr)
	}
	return nil
}

// proposal is the spec the backtest replays, checked against the facts the monitor stores.
func (s *BacktestService) proposal(ctx context.Context, m *monitor.Monitor, q BacktestQuery) (monitor.Spec, error) {
	given := 0
	for _, set := range []bool{q.Prompt != nil, q.Condition != nil, q.Change != nil} {
		if set {
			given++
		}
	}
	if given > 1 {
		return monitor.Spec{}, invalidQuery("prompt", "give one of prompt, condition or change")
	}
	spec := m.Spec
	field := "prompt"
	switch {
	case q.Prompt != nil:
		classified, _, err := s.classifier.Classify(ctx, strings.TrimSpace(*q.Prompt), ai.Hints{SourceURL: m.SourceURL})
		if err != nil {
			if domain.ErrorCode(err) == domain.EINVALID {
				return spec, invalidQuery("prompt", domain.ErrorMessage(err))
			}
			return spec, fmt.Errorf("classify the proposal: %w", err)
		}
		spec = classified
	case q.Condition != nil:
		field = "condition"
		spec.Kind, spec.Condition, spec.Change = monitor.KindCurrentState, strings.TrimSpace(*q.Condition), nil
	case q.Change != nil:
		field = "change"
		rule := *q.Change
		spec.Kind, spec.Condition, spec.Change = monitor.KindHistoricalChange, "", &rule
	}
	if err := spec.Validate(); err != nil {
		return spec, invalidQuery(field, domain.ErrorMessage(err)+" "+fieldsOf(err))
	}
	for _, f := range spec.Facts {
		if _, ok := m.Spec.Fact(f.Name); !ok {
			return spec, invalidQuery(field, fmt.Sprintf("needs the fact %q, which this monitor does not store; it stores: %s", f.Name, factNames(m.Spec)))
		}
	}
	return spec, nil
}

func factNames(spec monitor.Spec) string {
	names := make([]string, len(spec.Facts))
	for i, f := range spec.Facts {
		names[i] = f.Name
	}
	return strings.Join(names, ", ")
}

// fieldsOf lists an EINVALID error's fields, "name: problem; ...".
func fieldsOf(err error) string {
	var parts []string
	if de, ok := err.(*domain.Error); ok {
		for k, v := range de.Fields {
			parts = append(parts, k+": "+v)
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, "; ")
}

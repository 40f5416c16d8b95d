package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/ai"
	"github.com/vigilhq/vigil/domain/event"
	"github.com/vigilhq/vigil/domain/monitor"
)

// MonitorFinder loads monitors.
type MonitorFinder interface {
	// FindMonitorByID returns the monitor or ENOTFOUND.
	FindMonitorByID(ctx context.Context, id string) (*monitor.Monitor, error)
}

// Fetcher fetches a monitor's source. It returns EUNAVAILABLE for problems worth
// retrying (timeouts, 5xx) and EINVALID for ones that are not (404, too large, forbidden address).
type Fetcher interface {
	Fetch(ctx context.Context, url string) (ai.Document, error)
}

// Previous is the newest successful evaluation of a monitor.
type Previous struct {
	MonitorVersion int64
	SourceHash     string
	State          monitor.State
	Explanation    string
	Provider       string
	Model          string
	Facts          []monitor.Fact
}

// PreviousStore finds the newest successful evaluation.
type PreviousStore interface {
	// LastSucceeded returns the newest succeeded evaluation of the monitor with its facts,
	// or ENOTFOUND when there is none.
	LastSucceeded(ctx context.Context, m *monitor.Monitor) (Previous, error)
}

// Evaluator runs one evaluation: fetch the source, extract facts, judge the state, and
// publish EvaluationCompleted. It never writes Postgres; the recorder does.
type Evaluator struct {
	monitors MonitorFinder
	previous PreviousStore
	fetcher  Fetcher
	provider ai.Provider
	pub      Publisher
	now      func() time.Time
	cfg      EvaluatorConfig
}

// EvaluatorConfig tunes an Evaluator; zero values take the defaults.
type EvaluatorConfig struct {
	MaxAttempts   int     // deliveries a transient failure is retried (EvaluatorMaxAttemptsDefault)
	MinConfidence float64 // facts below it are not trusted (monitor.MinConfidenceDefault)
	// Renderer fetches the sources of monitors that ask for rendering, in a browser; nil
	// when this Vigil has none.
	Renderer Fetcher
	// Exact reads facts at their selectors with no model (the rules provider): it checks a
	// selector an AI provider suggests for a fact that went missing. Without it no repair
	// is tried, since none could be verified.
	Exact ai.Provider
}

// ErrNoRenderer is the failure of a monitor that asks for rendering where no browser is
// configured: EINVALID, so it is not retried, naming the operator's setting.
var ErrNoRenderer = &domain.Error{Code: domain.EINVALID,
	Message: "This Vigil cannot render pages: no Chromium is installed (its operator sets VIGIL_CHROMIUM).",
	Fields:  map[string]string{"render": "is not available on this Vigil"}}

// EvaluatorMaxAttemptsDefault is how many deliveries a transient failure is retried before
// the evaluation is recorded as failed.
const EvaluatorMaxAttemptsDefault = 3

// NewEvaluator returns an Evaluator.
func NewEvaluator(monitors MonitorFinder, previous PreviousStore, fetcher Fetcher, provider ai.Provider, pub Publisher, now func() time.Time, cfg EvaluatorConfig) *Evaluator {
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = EvaluatorMaxAttemptsDefault
	}
	if cfg.MinConfidence <= 0 {
		cfg.MinConfidence = monitor.MinConfidenceDefault
	}
	return &Evaluator{monitors: monitors, previous: previous, fetcher: fetcher, provider: provider, pub: pub, now: now, cfg: cfg}
}

// Evaluate handles one EvaluationDue delivered for the attempt-th time. A deleted monitor
// is skipped. A transient failure is returned (to be retried) until the last attempt; then,
// like a permanent failure, it is published as a failed evaluation so the user sees it.
func (e *Evaluator) Evaluate(ctx context.Context, due event.EvaluationDue, attempt int) error {
	m, prev, err := e.monitorOf(ctx, due)
	if errors.Is(err, domain.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("load monitor %s: %w", due.MonitorID, err)
	}
	started := e.now().UTC()
	done := event.EvaluationCompleted{MonitorID: m.ID, Kind: m.Spec.Kind, ScheduledFor: due.ScheduledFor.UTC(), StartedAt: started,
		Attempt: attempt, MonitorVersion: m.Version}
	err = e.run(ai.WithUser(ctx, m.UserID), m, prev, &done)
	if err != nil {
		if domain.ErrorCode(err) != domain.EINVALID && attempt < e.cfg.MaxAttempts {
			return fmt.Errorf("evaluate monitor %s (attempt %d): %w", m.ID, attempt, err)
		}
		done.Status = monitor.EvaluationFailed
		done.State = monitor.StateUnknown
		done.Error = domain.ErrorMessage(err)
		done.Facts = nil
	}
	done.FinishedAt = e.now().UTC()
	done.Usage.LatencyMS = done.FinishedAt.Sub(started).Milliseconds()
	if err := e.pub.Publish(ctx, done); err != nil {
		return fmt.Errorf("publish evaluation of %s: %w", m.ID, err)
	}
	return nil
}

// monitorOf returns the monitor the evaluation works from and where to find the previous
// success it may reuse: the event, when the scheduler carried them (no read), else the stores.
func (e *Evaluator) monitorOf(ctx context.Context, due event.EvaluationDue) (*monitor.Monitor, *previousSource, error) {
	if dm := due.Monitor; dm != nil {
		spec, prev, err := dm.Decode()
		if err != nil {
			return nil, nil, &domain.Error{Code: domain.EINVALID, Message: "The due evaluation carries a monitor that cannot be read.", Err: err}
		}
		m := &monitor.Monitor{ID: due.MonitorID, UserID: dm.UserID, Spec: spec, SourceURL: dm.SourceURL, SourceFormat: dm.SourceFormat,
			Render: dm.Render, AutoRepair: dm.AutoRepair, Version: dm.Version, ExtractionVersion: dm.ExtractionVersion}
		return m, &previousSource{carried: true, prev: prev}, nil
	}
	m, err := e.monitors.FindMonitorByID(ctx, due.MonitorID)
	if err != nil {
		return nil, nil, err
	}
	return m, &previousSource{}, nil
}

// previousSource is where an evaluation finds the success before it: carried in the
// event, or looked up in the PreviousStore.
type previousSource struct {
	carried bool
	prev    *event.PreviousEvaluation
}

func (e *Evaluator) run(ctx context.Context, m *monitor.Monitor, ps *previousSource, done *event.EvaluationCompleted) error {
	if m.SourceURL == "" {
		return &domain.Error{Code: domain.EINVALID, Message: "The monitor has no source to watch."}
	}
	// A document another monitor fetched in this tick is shared; an older one is not, or two
	// evaluators' caches could show one monitor alternating versions of its page.
	fetcher := e.fetcher
	if m.Render {
		if e.cfg.Renderer == nil {
			return ErrNoRenderer
		}
		fetcher = e.cfg.Renderer
	}
	fetchStart := e.now()
	doc, err := fetcher.Fetch(ai.WithFetchedAfter(ctx, done.ScheduledFor), m.SourceURL)
	fetchMS := e.now().Sub(fetchStart).Milliseconds()
	defer func() { done.Usage.FetchMS = fetchMS }() // whatever usage the outcome sets
	if err != nil {
		return fmt.Errorf("fetch source: %w", err)
	}
	done.SourceHash = doc.Hash
	doc.Format = string(m.SourceFormat.OrAuto())
	prev := e.lastSuccess(ctx, m, ps)
	if e.reuse(m, prev, doc, done) {
		return nil
	}
	spec := m.Spec
	facts, u1, err := e.provider.Extract(ctx, spec, doc)
	if err != nil {
		miss := missOf(err, m, prev, doc)
		if miss == nil {
			return fmt.Errorf("extract facts: %w", err)
		}
		done.Miss = miss
		repair, repaired, rfacts, ru := e.repair(ctx, m, *miss, doc)
		done.Repair = repair
		if repaired == nil {
			done.Usage = usageOf(ru)
			return fmt.Errorf("extract facts: %w", err)
		}
		// The verified selector reads the fact again: this evaluation succeeds with it.
		done.Miss, done.RepairedSpec = nil, repaired
		spec, facts, u1 = *repaired, rfacts, addUsage(u1, ru)
	}
	if why := monitor.Untrusted(facts, e.cfg.MinConfidence, string(doc.Body), doc.Text); why != "" {
		// An untrusted value is neither alerted on nor stored as history.
		done.Status, done.State, done.Explanation = monitor.EvaluationAbstained, monitor.StateUnknown, why
		done.Usage = usageOf(u1)
		return nil
	}
	done.Facts = facts
	done.Status = monitor.EvaluationSucceeded
	if m.Spec.Kind == monitor.KindHistoricalChange {
		// The system compares history, never the AI: the recorder judges from stored facts.
		done.State = monitor.StateUnknown
		done.Usage = usageOf(u1)
		done.Explanation = notes(u1)
		return nil
	}
	verdict, u2, err := e.provider.Evaluate(ctx, spec, facts, doc)
	if err != nil {
		return fmt.Errorf("evaluate condition: %w", err)
	}
	done.State = verdict.State
	done.Confidence = verdict.Confidence
	done.Explanation = strings.TrimSpace(verdict.Explanation + " " + notes(u1, u2))
	if verdict.State == monitor.StateUnknown {
		done.Status = monitor.EvaluationAbstained
	}
	done.Usage = event.Usage{
		Provider: u2.Provider, Model: u2.Model,
		InputTokens: u1.InputTokens + u2.InputTokens, OutputTokens: u1.OutputTokens + u2.OutputTokens,
		Cost: u1.Cost + u2.Cost,
	}
	return nil
}

// lastSuccess returns the monitor's newest successful evaluation, or nil when there is
// none or it cannot be read (then nothing is reused, and no miss is told).
func (e *Evaluator) lastSuccess(ctx context.Context, m *monitor.Monitor, ps *previousSource) *Previous {
	switch {
	case ps.carried && ps.prev == nil:
		return nil
	case ps.carried:
		p := ps.prev
		return &Previous{MonitorVersion: p.MonitorVersion, SourceHash: p.SourceHash, State: p.State, Explanation: p.Explanation,
			Provider: p.Provider, Model: p.Model, Facts: p.Facts}
	case e.previous == nil:
		return nil
	}
	prev, err := e.previous.LastSucceeded(ctx, m)
	if err != nil {
		return nil
	}
	return &prev
}

// reuse fills done from the previous evaluation when the source is byte-for-byte unchanged
// and the monitor has not been edited since: no AI call is made and the facts are recorded
// again at the new time, marked as reused.
func (e *Evaluator) reuse(m *monitor.Monitor, prev *Previous, doc ai.Document, done *event.EvaluationCompleted) bool {
	if doc.Hash == "" || prev == nil {
		return false
	}
	if prev.SourceHash != doc.Hash || prev.MonitorVersion != m.Version || len(prev.Facts) == 0 {
		return false
	}
	facts := make([]monitor.Fact, len(prev.Facts))
	for i, f := range prev.Facts {
		f.ObservedAt = doc.FetchedAt
		facts[i] = f
	}
	done.Facts, done.FactsReused = facts, true
	done.Status = monitor.EvaluationSucceeded
	done.Usage = event.Usage{Provider: prev.Provider, Model: prev.Model}
	if m.Spec.Kind == monitor.KindHistoricalChange {
		done.State = monitor.StateUnknown
		return true
	}
	done.State, done.Explanation = prev.State, prev.Explanation
	return true
}

func usageOf(u ai.Usage) event.Usage {
	return event.Usage{Provider: u.Provider, Model: u.Model, InputTokens: u.InputTokens, OutputTokens: u.OutputTokens, Cost: u.Cost}
}

// notes joins the distinct user-facing notes of the calls behind one evaluation.
func notes(us ...ai.Usage) string {
	var out []string
	seen := map[string]bool{}
	for _, u := range us {
		for _, n := range u.Notes {
			if !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	return strings.Join(out, " ")
}

// missOf returns the miss an Extract error is, or nil: a fact that the last success found,
// reading the source as it is read now, is not found, and the source is not what it was
// then. A fact never found, or one lost to an edit of what is extracted (a new selector or
// source), is an ordinary failure; a rename or a pause and resume in between changes nothing.
func missOf(err error, m *monitor.Monitor, prev *Previous, doc ai.Document) *monitor.Miss {
	name := ai.MissingFact(err)
	if name == "" || prev == nil || prev.MonitorVersion < m.ExtractionVersion || prev.SourceHash == "" || prev.SourceHash == doc.Hash {
		return nil
	}
	fs, ok := m.Spec.Fact(name)
	if !ok {
		return nil
	}
	for _, f := range prev.Facts {
		if f.Key == name {
			text := doc.Text
			if text == "" {
				text = string(doc.Body)
			}
			return &monitor.Miss{Fact: name, Selector: fs.Selector, LastGood: f, Snippet: monitor.Snippet(text)}
		}
	}
	return nil
}

// repair asks the provider for a new selector for the missing fact and checks it with
// the exact reader: only a selector that reads the last good value on the current page is
// verified, and only a verified one on a monitor with AutoRepair is applied. It returns
// the repair (nil when none could be asked for) and, when applied, the repaired spec with
// the facts it read; u is what asking cost.
func (e *Evaluator) repair(ctx context.Context, m *monitor.Monitor, miss monitor.Miss, doc ai.Document) (r *monitor.Repair, spec *monitor.Spec, facts []monitor.Fact, u ai.Usage) {
	suggester, ok := e.provider.(ai.SelectorSuggester)
	if !ok || e.cfg.Exact == nil {
		return nil, nil, nil, u
	}
	fs, _ := m.Spec.Fact(miss.Fact)
	sel, u, err := suggester.SuggestSelector(ctx, ai.SelectorRequest{Spec: m.Spec, Fact: fs, LastGood: miss.LastGood}, doc)
	if errors.Is(err, ai.ErrNoSuggester) {
		return nil, nil, nil, u
	}
	r = &monitor.Repair{Fact: miss.Fact, Old: fs.Selector, Selector: strings.TrimSpace(sel), Expected: monitor.FactValue(miss.LastGood),
		Provider: u.Provider, At: e.now().UTC()}
	switch {
	case err != nil:
		r.Reason = "No new selector could be asked for: " + domain.ErrorMessage(err)
		return r, nil, nil, u
	case r.Selector == "":
		r.Reason = "The AI provider did not find the " + miss.Fact + " on the page."
		return r, nil, nil, u
	case r.Selector == fs.Selector:
		r.Reason = "The AI provider suggested the selector that finds nothing."
		return r, nil, nil, u
	}
	repaired, err := m.Spec.WithRepairedSelector(miss.Fact, r.Selector)
	if err != nil {
		r.Reason = domain.ErrorMessage(err)
		return r, nil, nil, u
	}
	one := repaired
	one.Facts = nil
	if f, ok := repaired.Fact(miss.Fact); ok {
		one.Facts = []monitor.FactSpec{f}
	}
	var found *monitor.Fact
	if got, _, err := e.cfg.Exact.Extract(ctx, one, doc); err == nil && len(got) == 1 {
		found = &got[0]
		r.Found = monitor.FactValue(got[0])
	}
	if r.Verified, r.Reason = monitor.VerifyRepair(miss.LastGood, found); !r.Verified {
		return r, nil, nil, u
	}
	if !m.AutoRepair {
		r.Reason = "Proposed, not applied: auto_repair is off. Set the selector to apply it."
		return r, nil, nil, u
	}
	facts, u2, err := e.provider.Extract(ctx, repaired, doc)
	u = addUsage(u, u2)
	if err != nil {
		r.Reason = "With the new selector the facts still could not be read: " + domain.ErrorMessage(err)
		return r, nil, nil, u
	}
	r.Applied = true
	return r, &repaired, facts, u
}

// addUsage sums the cost of two calls behind one evaluation; the later call names the
// provider.
func addUsage(a, b ai.Usage) ai.Usage {
	out := b
	if out.Provider == "" {
		out.Provider, out.Model = a.Provider, a.Model
	}
	out.InputTokens, out.OutputTokens, out.Cost = a.InputTokens+b.InputTokens, a.OutputTokens+b.OutputTokens, a.Cost+b.Cost
	out.Notes = append(append([]string(nil), a.Notes...), b.Notes...)
	return out
}

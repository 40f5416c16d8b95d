package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/ai"
	"github.com/vigilhq/vigil/domain/app"
	"github.com/vigilhq/vigil/domain/event"
	"github.com/vigilhq/vigil/domain/monitor"
)

type fakeMonitors map[string]*monitor.Monitor

func (f fakeMonitors) FindMonitorByID(_ context.Context, id string) (*monitor.Monitor, error) {
	if m, ok := f[id]; ok {
		return m, nil
	}
	return nil, domain.Errorf(domain.ENOTFOUND, "Monitor not found.")
}

type fakePrevious struct{ prev *app.Previous }

func (f fakePrevious) LastSucceeded(context.Context, *monitor.Monitor) (app.Previous, error) {
	if f.prev == nil {
		return app.Previous{}, domain.Errorf(domain.ENOTFOUND, "none")
	}
	return *f.prev, nil
}

type fakeFetcher struct {
	doc ai.Document
	err error
}

func (f fakeFetcher) Fetch(context.Context, string) (ai.Document, error) { return f.doc, f.err }

// fakeProvider extracts a fixed price with the given confidence and judges price < 80.
type fakeProvider struct {
	price      float64
	confidence float64
	extracts   int
	evaluates  int
	formats    []string // the source format of each extraction's document
}

func (p *fakeProvider) Classify(context.Context, string, ai.Hints) (monitor.Spec, ai.Usage, error) {
	return monitor.Spec{}, ai.Usage{}, errors.New("not used")
}

func (p *fakeProvider) Extract(_ context.Context, _ monitor.Spec, doc ai.Document) ([]monitor.Fact, ai.Usage, error) {
	p.extracts++
	p.formats = append(p.formats, doc.Format)
	f := monitor.NumberFact("price", p.price, "USD", doc.FetchedAt)
	f.Confidence, f.Evidence = p.confidence, "price"
	return []monitor.Fact{f}, ai.Usage{Provider: "fake", Model: "m1", InputTokens: 10, Cost: 0.001}, nil
}

func (p *fakeProvider) Evaluate(_ context.Context, _ monitor.Spec, facts []monitor.Fact, _ ai.Document) (monitor.Verdict, ai.Usage, error) {
	p.evaluates++
	state := monitor.StateInactive
	if *facts[0].Number < 80 {
		state = monitor.StateActive
	}
	return monitor.Verdict{State: state, Confidence: 1, Explanation: "judged"}, ai.Usage{Provider: "fake", Model: "m1", OutputTokens: 5, Cost: 0.002,
		Notes: []string{"Claude is unavailable; evaluated with Rules instead."}}, nil
}

// fakePublisher keeps what is published; with err set it refuses everything.
type fakePublisher struct {
	events []event.Event
	err    error
}

func (p *fakePublisher) Publish(ctx context.Context, ev event.Event) error {
	return p.PublishAll(ctx, []event.Event{ev})
}

func (p *fakePublisher) PublishAll(_ context.Context, evs []event.Event) error {
	if p.err != nil {
		return p.err
	}
	p.events = append(p.events, evs...)
	return nil
}

type evalBundle struct {
	monitor  *monitor.Monitor
	provider *fakeProvider
	pub      *fakePublisher
	fetcher  fakeFetcher
	previous fakePrevious
}

func setupEvaluator(t *testing.T) *evalBundle {
	t.Helper()
	m := monitor.New("m1", monitor.Draft{UserID: "u1", Prompt: "price below 80", SourceURL: "https://shop.example/x", Interval: time.Minute},
		monitor.Spec{Kind: monitor.KindCurrentState, Condition: "price < 80", Facts: []monitor.FactSpec{{Name: "price", Type: monitor.FactNumber}}},
		monitor.ClassifiedBy{}, time.Now())
	return &evalBundle{
		monitor:  m,
		provider: &fakeProvider{price: 70, confidence: 0.9},
		pub:      &fakePublisher{},
		fetcher:  fakeFetcher{doc: ai.Document{Body: []byte("our price is 70"), Hash: "h1", FetchedAt: time.Now()}},
	}
}

func (b *evalBundle) run(t *testing.T, attempt int) (event.EvaluationCompleted, error) {
	t.Helper()
	ev := app.NewEvaluator(fakeMonitors{b.monitor.ID: b.monitor}, b.previous, b.fetcher, b.provider, b.pub, time.Now, app.EvaluatorConfig{})
	err := ev.Evaluate(context.Background(), event.EvaluationDue{MonitorID: b.monitor.ID, ScheduledFor: time.Now()}, attempt)
	if len(b.pub.events) == 0 {
		return event.EvaluationCompleted{}, err
	}
	return b.pub.events[len(b.pub.events)-1].(event.EvaluationCompleted), err
}

func TestEvaluatorJudgesCurrentState(t *testing.T) {
	t.Parallel()
	b := setupEvaluator(t)
	done, err := b.run(t, 1)
	if err != nil {
		t.Fatal(err)
	}
	if done.Status != monitor.EvaluationSucceeded || done.State != monitor.StateActive || len(done.Facts) != 1 || done.SourceHash != "h1" {
		t.Fatalf("unexpected evaluation %+v", done)
	}
	if done.Usage.Cost != 0.003 || done.Usage.InputTokens != 10 || done.Usage.OutputTokens != 5 || !strings.Contains(done.Explanation, "Claude is unavailable") {
		t.Fatalf("usage and notes not carried: %+v %q", done.Usage, done.Explanation)
	}
}

func TestEvaluatorFailures(t *testing.T) {
	t.Parallel()
	b := setupEvaluator(t)
	b.fetcher.err = domain.Errorf(domain.EUNAVAILABLE, "The source answered 502 Bad Gateway.")
	if _, err := b.run(t, 1); err == nil || len(b.pub.events) != 0 {
		t.Fatalf("a transient failure must be retried first: err=%v events=%d", err, len(b.pub.events))
	}
	done, err := b.run(t, app.EvaluatorMaxAttemptsDefault)
	if err != nil || done.Status != monitor.EvaluationFailed || !strings.Contains(done.Error, "502") {
		t.Fatalf("last attempt must publish a failed evaluation: %+v %v", done, err)
	}

	b = setupEvaluator(t)
	b.fetcher.err = domain.Errorf(domain.EINVALID, "The source answered 404 Not Found.")
	if done, err := b.run(t, 1); err != nil || done.Status != monitor.EvaluationFailed {
		t.Fatalf("a permanent failure is recorded at once: %+v %v", done, err)
	}

	b = setupEvaluator(t)
	b.monitor.ID = "deleted"
	ev := app.NewEvaluator(fakeMonitors{}, b.previous, b.fetcher, b.provider, b.pub, time.Now, app.EvaluatorConfig{})
	if err := ev.Evaluate(context.Background(), event.EvaluationDue{MonitorID: "deleted"}, 1); err != nil || len(b.pub.events) != 0 {
		t.Fatalf("a deleted monitor is skipped: %v %d", err, len(b.pub.events))
	}
}

func TestEvaluatorAbstainsOnUntrustedFacts(t *testing.T) {
	t.Parallel()
	b := setupEvaluator(t)
	b.provider.confidence = 0.2
	done, err := b.run(t, 1)
	if err != nil || done.Status != monitor.EvaluationAbstained || done.State != monitor.StateUnknown || len(done.Facts) != 0 || b.provider.evaluates != 0 {
		t.Fatalf("low confidence must abstain without facts: %+v %v", done, err)
	}
}

func TestEvaluatorReusesFactsOfUnchangedSource(t *testing.T) {
	t.Parallel()
	b := setupEvaluator(t)
	old := monitor.NumberFact("price", 70, "USD", time.Now().Add(-time.Hour))
	b.previous = fakePrevious{&app.Previous{MonitorVersion: b.monitor.Version, SourceHash: "h1", State: monitor.StateActive,
		Explanation: "judged before", Provider: "fake", Model: "m1", Facts: []monitor.Fact{old}}}
	done, err := b.run(t, 1)
	if err != nil || !done.FactsReused || done.State != monitor.StateActive || b.provider.extracts+b.provider.evaluates != 0 {
		t.Fatalf("unchanged source must reuse facts without AI calls: %+v %v (calls %d)", done, err, b.provider.extracts+b.provider.evaluates)
	}
	if !done.Facts[0].ObservedAt.Equal(b.fetcher.doc.FetchedAt) || done.Usage.Cost != 0 {
		t.Fatalf("reused facts must be observed now at no cost: %+v", done)
	}
	// A changed source, or an edited monitor, calls the AI again.
	b.fetcher.doc.Hash = "h2"
	if done, _ := b.run(t, 1); done.FactsReused || b.provider.extracts != 1 {
		t.Fatalf("changed source reused facts: %+v", done)
	}
	b.fetcher.doc.Hash = "h1"
	b.monitor.Version++
	if done, _ := b.run(t, 1); done.FactsReused || b.provider.extracts != 2 {
		t.Fatalf("edited monitor reused facts: %+v", done)
	}
}

func TestEvaluatorLeavesHistoryToTheRecorder(t *testing.T) {
	t.Parallel()
	b := setupEvaluator(t)
	b.monitor.Spec = monitor.Spec{Kind: monitor.KindHistoricalChange, Facts: []monitor.FactSpec{{Name: "price", Type: monitor.FactNumber}},
		Change: &monitor.ChangeRule{Fact: "price", Measure: "percent", Operator: "increases", Threshold: 5, Window: "24h"}}
	done, err := b.run(t, 1)
	if err != nil || done.Status != monitor.EvaluationSucceeded || done.State != monitor.StateUnknown || done.Kind != monitor.KindHistoricalChange || b.provider.evaluates != 0 {
		t.Fatalf("historical monitors must not ask the AI to compare: %+v %v", done, err)
	}
}

// noMonitors fails the test if the evaluator reads a monitor or a previous evaluation.
type noMonitors struct{ t *testing.T }

func (n noMonitors) FindMonitorByID(context.Context, string) (*monitor.Monitor, error) {
	n.t.Error("the evaluator read the monitor although the event carried it")
	return nil, domain.ErrNotFound
}

func (n noMonitors) LastSucceeded(context.Context, *monitor.Monitor) (app.Previous, error) {
	n.t.Error("the evaluator read the previous evaluation although the event carried it")
	return app.Previous{}, domain.ErrNotFound
}

// TestEvaluatorWorksFromTheEvent: with the monitor and its last success carried in
// EvaluationDue, an evaluation reads nothing, and reuses the carried facts when the source
// is unchanged.
func TestEvaluatorWorksFromTheEvent(t *testing.T) {
	t.Parallel()
	b := setupEvaluator(t)
	none := noMonitors{t}
	ev := app.NewEvaluator(none, none, b.fetcher, b.provider, b.pub, time.Now, app.EvaluatorConfig{})
	spec, err := json.Marshal(b.monitor.Spec)
	require.NoError(t, err)
	dm := &event.DueMonitor{UserID: "u1", Version: 3, Kind: b.monitor.Spec.Kind, Spec: spec, SourceURL: b.monitor.SourceURL,
		SourceFormat: monitor.FormatJSON}
	due := event.EvaluationDue{MonitorID: "m1", ScheduledFor: time.Now(), Monitor: dm}

	require.NoError(t, ev.Evaluate(context.Background(), due, 1))
	done := b.pub.events[0].(event.EvaluationCompleted)
	require.Equal(t, monitor.EvaluationSucceeded, done.Status)
	require.Equal(t, []string{"json"}, b.provider.formats, "the document is read as the monitor says")
	require.Equal(t, int64(3), done.MonitorVersion)
	require.False(t, done.FactsReused, "nothing to reuse yet")
	require.Equal(t, 1, b.provider.extracts)

	old := monitor.NumberFact("price", 70, "USD", time.Now().Add(-time.Hour))
	prev := event.PreviousEvaluation{MonitorVersion: 3, SourceHash: "h1", State: monitor.StateActive, Explanation: "judged before",
		Provider: "fake", Model: "m1", Facts: []monitor.Fact{old}}
	dm.Previous, err = json.Marshal(prev)
	require.NoError(t, err)
	require.NoError(t, ev.Evaluate(context.Background(), due, 1))
	done = b.pub.events[1].(event.EvaluationCompleted)
	require.True(t, done.FactsReused)
	require.Equal(t, monitor.StateActive, done.State)
	require.Equal(t, 1, b.provider.extracts, "no AI call for an unchanged source")

	prev.MonitorVersion = 2 // edited since
	dm.Previous, err = json.Marshal(prev)
	require.NoError(t, err)
	require.NoError(t, ev.Evaluate(context.Background(), due, 1))
	require.False(t, b.pub.events[2].(event.EvaluationCompleted).FactsReused)
	require.Equal(t, 2, b.provider.extracts)
}

// TestEvaluatorRendersWhenAsked: a monitor that asks for rendering is fetched by the
// renderer; where there is none, its evaluation fails for good, naming the setting.
func TestEvaluatorRendersWhenAsked(t *testing.T) {
	t.Parallel()
	b := setupEvaluator(t)
	b.monitor.Render = true
	rendered := fakeFetcher{doc: ai.Document{Body: []byte("drawn by scripts: our price is 70"), Hash: "h2", FetchedAt: time.Now()}}
	broken := fakeFetcher{err: errors.New("the plain fetcher must not be used")}
	ev := app.NewEvaluator(fakeMonitors{b.monitor.ID: b.monitor}, b.previous, broken, b.provider, b.pub, time.Now,
		app.EvaluatorConfig{Renderer: rendered})
	require.NoError(t, ev.Evaluate(context.Background(), event.EvaluationDue{MonitorID: b.monitor.ID, ScheduledFor: time.Now()}, 1))
	done := b.pub.events[0].(event.EvaluationCompleted)
	require.Equal(t, monitor.EvaluationSucceeded, done.Status, done.Error)
	require.Equal(t, "h2", done.SourceHash)

	ev = app.NewEvaluator(fakeMonitors{b.monitor.ID: b.monitor}, b.previous, broken, b.provider, b.pub, time.Now, app.EvaluatorConfig{})
	require.NoError(t, ev.Evaluate(context.Background(), event.EvaluationDue{MonitorID: b.monitor.ID, ScheduledFor: time.Now()}, 1))
	done = b.pub.events[1].(event.EvaluationCompleted)
	require.Equal(t, monitor.EvaluationFailed, done.Status)
	require.Contains(t, done.Error, "VIGIL_CHROMIUM")
}

package app_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/ai"
	"github.com/vigilhq/vigil/domain/app"
	"github.com/vigilhq/vigil/domain/event"
	"github.com/vigilhq/vigil/domain/monitor"
)

// selectorPage is a fake page: the value each selector reads on it. An exact reader and an
// AI provider that suggests a selector both work from it.
type selectorPage map[string]float64

// exactReader reads facts at their selectors on the page, as the rules do.
type exactReader struct{ page selectorPage }

func (r exactReader) Classify(context.Context, string, ai.Hints) (monitor.Spec, ai.Usage, error) {
	return monitor.Spec{}, ai.Usage{}, nil
}

func (r exactReader) Extract(_ context.Context, spec monitor.Spec, doc ai.Document) ([]monitor.Fact, ai.Usage, error) {
	var out []monitor.Fact
	for _, fs := range spec.Facts {
		v, ok := r.page[fs.Selector]
		if !ok {
			return nil, ai.Usage{}, &domain.Error{Code: domain.EINVALID, Message: "Could not find the " + fs.Name + ".",
				Fields: map[string]string{"fact": fs.Name}}
		}
		f := monitor.NumberFact(fs.Name, v, "USD", doc.FetchedAt)
		f.Evidence = fmt.Sprintf("$%g", v)
		out = append(out, f)
	}
	return out, ai.Usage{Provider: "rules"}, nil
}

func (r exactReader) Evaluate(_ context.Context, _ monitor.Spec, facts []monitor.Fact, _ ai.Document) (monitor.Verdict, ai.Usage, error) {
	state := monitor.StateInactive
	if *facts[0].Number < 80 {
		state = monitor.StateActive
	}
	return monitor.Verdict{State: state, Confidence: 1}, ai.Usage{}, nil
}

// suggestingAI reads like the rules and suggests the next selector of its script.
type suggestingAI struct {
	exactReader
	suggestions []string
	asked       []ai.SelectorRequest
}

func (s *suggestingAI) SuggestSelector(_ context.Context, req ai.SelectorRequest, _ ai.Document) (string, ai.Usage, error) {
	s.asked = append(s.asked, req)
	sel := s.suggestions[0]
	s.suggestions = s.suggestions[1:]
	return sel, ai.Usage{Provider: "claude", Model: "m", InputTokens: 100, Cost: 0.01}, nil
}

type repairBundle struct {
	monitor *monitor.Monitor
	ai      *suggestingAI
	prev    *app.Previous
}

// setupRepair: a monitor whose selector .price read 120 on the page hashed h1; the page is
// now h2, where .price is gone and the 120 sits at .price-now (and 99 at .was).
func setupRepair(t *testing.T, autoRepair bool, suggestions ...string) *repairBundle {
	t.Helper()
	m := monitor.New("m1", monitor.Draft{UserID: "u1", Prompt: "price below 80", SourceURL: "https://shop.example/x", Interval: time.Minute,
		AutoRepair: autoRepair},
		monitor.Spec{Kind: monitor.KindCurrentState, Condition: "price < 80",
			Facts: []monitor.FactSpec{{Name: "price", Type: monitor.FactNumber, Selector: ".price", SelectorBy: monitor.SelectorByUser}}},
		monitor.ClassifiedBy{}, time.Now())
	good := monitor.NumberFact("price", 120, "USD", time.Now().Add(-time.Hour))
	good.Evidence, good.Locator = "$120", "span.price"
	return &repairBundle{
		monitor: m,
		ai:      &suggestingAI{exactReader: exactReader{page: selectorPage{".price-now": 120, ".was": 99}}, suggestions: suggestions},
		prev:    &app.Previous{MonitorVersion: m.Version, SourceHash: "h1", State: monitor.StateInactive, Facts: []monitor.Fact{good}},
	}
}

func (b *repairBundle) run(t *testing.T, hash string) (event.EvaluationCompleted, error) {
	t.Helper()
	pub := &fakePublisher{}
	doc := ai.Document{Body: []byte("<p>New look! <b class=price-now>$120</b> <s class=was>$99</s></p>"), Text: "New look! $120 $99",
		Hash: hash, FetchedAt: time.Now()}
	ev := app.NewEvaluator(fakeMonitors{b.monitor.ID: b.monitor}, fakePrevious{prev: b.prev}, fakeFetcher{doc: doc}, b.ai, pub, time.Now,
		app.EvaluatorConfig{Exact: b.ai.exactReader})
	err := ev.Evaluate(context.Background(), event.EvaluationDue{MonitorID: b.monitor.ID, ScheduledFor: time.Now()}, 1)
	require.Len(t, pub.events, 1)
	return pub.events[0].(event.EvaluationCompleted), err
}

func TestMissOnAChangedPageCarriesTheLastGoodEvidenceAndTheSnippet(t *testing.T) {
	t.Parallel()
	b := setupRepair(t, false, "")
	done, err := b.run(t, "h2")
	require.NoError(t, err, "a miss is recorded, not retried")
	require.Equal(t, monitor.EvaluationFailed, done.Status)
	require.NotNil(t, done.Miss)
	require.Equal(t, "price", done.Miss.Fact)
	require.Equal(t, ".price", done.Miss.Selector)
	require.Equal(t, "$120", done.Miss.LastGood.Evidence)
	require.Equal(t, "New look! $120 $99", done.Miss.Snippet)
	require.NotNil(t, done.Repair, "the AI was asked")
	require.Equal(t, `The AI provider did not find the price on the page.`, done.Repair.Reason)
	require.False(t, done.Repair.Applied)
	require.Len(t, b.ai.asked, 1)
	require.Equal(t, ".price", b.ai.asked[0].Fact.Selector)
	require.Equal(t, 120.0, *b.ai.asked[0].LastGood.Number)
	require.InDelta(t, 0.01, done.Usage.Cost, 1e-9, "asking is paid for")

	// On the page the last success saw, a missing fact is an ordinary failure: nothing changed.
	b = setupRepair(t, false)
	done, _ = b.run(t, "h1")
	require.Nil(t, done.Miss)
	require.Empty(t, b.ai.asked)

	// Nor is it a miss once what is extracted was edited since the last success: the new
	// selector is the user's to fix.
	b = setupRepair(t, false)
	b.monitor.Version++
	b.monitor.ExtractionVersion = b.monitor.Version
	done, _ = b.run(t, "h2")
	require.Nil(t, done.Miss)

	// Any other edit since (a rename, a pause and resume) leaves it a miss.
	b = setupRepair(t, false, "")
	b.monitor.Version += 2
	done, _ = b.run(t, "h2")
	require.NotNil(t, done.Miss)
}

func TestVerifiedRepairIsAppliedOnlyWithAutoRepair(t *testing.T) {
	t.Parallel()
	b := setupRepair(t, true, ".price-now")
	done, err := b.run(t, "h2")
	require.NoError(t, err)
	require.Equal(t, monitor.EvaluationSucceeded, done.Status, "the repaired selector read the price")
	require.Nil(t, done.Miss)
	require.Equal(t, 120.0, *done.Facts[0].Number)
	require.Equal(t, monitor.StateInactive, done.State)
	r := done.Repair
	require.NotNil(t, r)
	require.True(t, r.Verified)
	require.True(t, r.Applied)
	require.Equal(t, ".price", r.Old)
	require.Equal(t, ".price-now", r.Selector)
	require.Equal(t, "120 USD", r.Found)
	require.Equal(t, "claude", r.Provider)
	require.NotNil(t, done.RepairedSpec)
	require.Equal(t, ".price-now", done.RepairedSpec.Facts[0].Selector)
	require.Equal(t, monitor.SelectorByRepair, done.RepairedSpec.Facts[0].SelectorBy)

	// Without auto_repair the same verified selector is proposed, and the evaluation stays a miss.
	b = setupRepair(t, false, ".price-now")
	done, _ = b.run(t, "h2")
	require.Equal(t, monitor.EvaluationFailed, done.Status)
	require.NotNil(t, done.Miss)
	require.True(t, done.Repair.Verified)
	require.False(t, done.Repair.Applied)
	require.Contains(t, done.Repair.Reason, "auto_repair is off")
	require.Nil(t, done.RepairedSpec)
}

func TestRepairThatDoesNotReproduceTheLastGoodValueIsNeverApplied(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, selector, reason string }{
		{"another value", ".was", "reads 99 USD, not the last good value 120 USD"},
		{"nothing", ".gone", "finds nothing"},
		{"the broken one again", ".price", "suggested the selector that finds nothing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setupRepair(t, true, tc.selector)
			done, err := b.run(t, "h2")
			require.NoError(t, err)
			require.Equal(t, monitor.EvaluationFailed, done.Status)
			require.NotNil(t, done.Miss)
			require.False(t, done.Repair.Verified)
			require.False(t, done.Repair.Applied)
			require.Contains(t, done.Repair.Reason, tc.reason)
			require.Nil(t, done.RepairedSpec)
			require.Empty(t, done.Facts)
		})
	}
}

// Without a provider that can suggest selectors, or without an exact reader to check one,
// a miss is told but nothing is asked.
func TestNoRepairWithoutASuggesterOrAReader(t *testing.T) {
	t.Parallel()
	b := setupRepair(t, true, ".price-now")
	pub := &fakePublisher{}
	doc := ai.Document{Body: []byte("x"), Hash: "h2", FetchedAt: time.Now()}
	ev := app.NewEvaluator(fakeMonitors{b.monitor.ID: b.monitor}, fakePrevious{prev: b.prev}, fakeFetcher{doc: doc}, b.ai, pub, time.Now,
		app.EvaluatorConfig{})
	require.NoError(t, ev.Evaluate(context.Background(), event.EvaluationDue{MonitorID: b.monitor.ID, ScheduledFor: time.Now()}, 1))
	done := pub.events[0].(event.EvaluationCompleted)
	require.NotNil(t, done.Miss)
	require.Nil(t, done.Repair)
	require.Empty(t, b.ai.asked)
}

func TestPlanRecordingTellsABrokenExtractionOncePerRunOfMisses(t *testing.T) {
	t.Parallel()
	t0 := matchNow
	miss := func(slot time.Time) event.EvaluationCompleted {
		ev := completedAt("m1", slot, monitor.EvaluationFailed, monitor.StateUnknown)
		ev.Miss = &monitor.Miss{Fact: "price"}
		return ev
	}
	st := recordState(map[string]monitor.Snapshot{"m1": {State: monitor.StateActive, Status: monitor.StatusActive}})
	evs := []event.EvaluationCompleted{
		miss(t0.Add(time.Minute)), miss(t0.Add(2 * time.Minute)), miss(t0.Add(3 * time.Minute)), miss(t0.Add(4 * time.Minute)),
	}
	plan, err := app.PlanRecording(evs, st, app.RecordLimits{MaxFailures: 10, MaxMisses: 3}, sequentialIDs())
	require.NoError(t, err)
	require.Len(t, plan.Broken, 1, "told at the third miss, not again at the fourth")
	require.Equal(t, plan.Recordings[2].EvaluationID, plan.Broken[0].EvaluationID)
	require.Equal(t, "u-m1", plan.Broken[0].UserID)
	require.Equal(t, 4, plan.Monitors[0].ExtractionMisses)

	// A success ends the run: the next three misses tell again. Other failures leave it.
	rec := st.Monitors["m1"]
	rec.ExtractionMisses = 2
	st.Monitors["m1"] = rec
	other := completedAt("m1", t0.Add(5*time.Minute), monitor.EvaluationFailed, monitor.StateUnknown)
	plan, err = app.PlanRecording([]event.EvaluationCompleted{other}, st, app.RecordLimits{MaxFailures: 10, MaxMisses: 3}, sequentialIDs())
	require.NoError(t, err)
	require.Equal(t, 2, plan.Monitors[0].ExtractionMisses, "a fetch failure is not a miss")
	ok := completedAt("m1", t0.Add(5*time.Minute), monitor.EvaluationSucceeded, monitor.StateActive)
	plan, err = app.PlanRecording([]event.EvaluationCompleted{ok, miss(t0.Add(6 * time.Minute))}, st,
		app.RecordLimits{MaxFailures: 10, MaxMisses: 3}, sequentialIDs())
	require.NoError(t, err)
	require.Empty(t, plan.Broken)
	require.Equal(t, 1, plan.Monitors[0].ExtractionMisses, "the success reset the count")
}

func TestPlanRecordingAppliesARepairAsAnEdit(t *testing.T) {
	t.Parallel()
	t0 := matchNow
	st := recordState(map[string]monitor.Snapshot{"m1": {State: monitor.StateActive, Status: monitor.StatusActive}})
	rec := st.Monitors["m1"]
	rec.Version, rec.ExtractionMisses = 4, 2
	st.Monitors["m1"] = rec
	repaired := completedAt("m1", t0.Add(time.Minute), monitor.EvaluationSucceeded, monitor.StateActive)
	repaired.MonitorVersion = 4
	repaired.Repair = &monitor.Repair{Fact: "price", Selector: ".price-now", Verified: true, Applied: true}
	repaired.RepairedSpec = &monitor.Spec{Facts: []monitor.FactSpec{{Name: "price", Selector: ".price-now", SelectorBy: monitor.SelectorByRepair}}}
	// Evaluated with the old selector, in flight while the repair landed.
	late := completedAt("m1", t0.Add(2*time.Minute), monitor.EvaluationFailed, monitor.StateUnknown)
	late.MonitorVersion = 4
	plan, err := app.PlanRecording([]event.EvaluationCompleted{repaired, late}, st, app.RecordLimits{MaxFailures: 3}, sequentialIDs())
	require.NoError(t, err)
	require.Len(t, plan.Monitors, 1)
	m := plan.Monitors[0]
	require.NotNil(t, m.RepairedSpec, "the store writes the repaired spec")
	require.Equal(t, ".price-now", m.Repair.Selector)
	require.Equal(t, 0, m.ExtractionMisses)
	require.True(t, plan.Recordings[1].Outcome.Stale, "an evaluation made with the old selector is history only")
	require.Equal(t, 0, m.Outcome.ConsecutiveFailures)
}

// The evaluation reports how long its source took, whatever its outcome.
func TestEvaluationReportsFetchTime(t *testing.T) {
	t.Parallel()
	b := setupRepair(t, false)
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	clock := t0
	fetcher := clockedFetcher{advance: func() { clock = clock.Add(250 * time.Millisecond) },
		doc: ai.Document{Body: []byte("x"), Hash: "h1", FetchedAt: t0}}
	pub := &fakePublisher{}
	ev := app.NewEvaluator(fakeMonitors{b.monitor.ID: b.monitor}, fakePrevious{}, fetcher, b.ai, pub, func() time.Time { return clock },
		app.EvaluatorConfig{})
	require.NoError(t, ev.Evaluate(context.Background(), event.EvaluationDue{MonitorID: b.monitor.ID, ScheduledFor: t0}, 1))
	done := pub.events[0].(event.EvaluationCompleted)
	require.Equal(t, monitor.EvaluationFailed, done.Status, "the page has no price")
	require.Equal(t, int64(250), done.Usage.FetchMS)
}

type clockedFetcher struct {
	advance func()
	doc     ai.Document
}

func (f clockedFetcher) Fetch(context.Context, string) (ai.Document, error) {
	f.advance()
	return f.doc, nil
}

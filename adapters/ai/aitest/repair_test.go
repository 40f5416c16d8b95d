package aitest_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/ai/aitest"
	"github.com/vigilhq/vigil/adapters/ai/chain"
	"github.com/vigilhq/vigil/adapters/ai/claude"
	"github.com/vigilhq/vigil/adapters/ai/fallback"
	"github.com/vigilhq/vigil/adapters/ai/openai"
	"github.com/vigilhq/vigil/adapters/source"
	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/ai"
	"github.com/vigilhq/vigil/domain/app"
	"github.com/vigilhq/vigil/domain/event"
	"github.com/vigilhq/vigil/domain/monitor"
)

const (
	pageBefore = `<html><body><h1>Trail shoe</h1><span class="price">$120.00</span></body></html>`
	// The redesign moved the price and shows the old one struck through.
	pageAfter = `<html><body><main><h1>Trail shoe</h1><div class="buy"><b data-testid="price-now">$120.00</b>
		<s class="was">$150.00</s></div></main></body></html>`
)

// scriptedSuggester stands in for the model behind the fake Claude server: it reads facts
// with the rules and suggests the selectors of its script, in order.
type scriptedSuggester struct {
	ai.Provider
	mu     sync.Mutex
	script []string
	asked  []ai.SelectorRequest
}

func (s *scriptedSuggester) SuggestSelector(_ context.Context, req ai.SelectorRequest, _ ai.Document) (string, ai.Usage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.asked = append(s.asked, req)
	sel := s.script[0]
	s.script = s.script[1:]
	return sel, ai.Usage{}, nil
}

type lastSuccess struct{ prev *app.Previous }

func (l *lastSuccess) LastSucceeded(context.Context, *monitor.Monitor) (app.Previous, error) {
	if l.prev == nil {
		return app.Previous{}, domain.Errorf(domain.ENOTFOUND, "none")
	}
	return *l.prev, nil
}

type onlyMonitor struct{ m *monitor.Monitor }

func (o onlyMonitor) FindMonitorByID(context.Context, string) (*monitor.Monitor, error) {
	return o.m, nil
}

type published struct{ evs []event.EvaluationCompleted }

func (p *published) Publish(_ context.Context, ev event.Event) error {
	p.evs = append(p.evs, ev.(event.EvaluationCompleted))
	return nil
}

func (p *published) PublishAll(ctx context.Context, evs []event.Event) error {
	for _, ev := range evs {
		_ = p.Publish(ctx, ev)
	}
	return nil
}

// TestSelfRepairThroughTheClaudeAdapter runs the evaluator against a real page whose
// markup changes, with the real fetcher, the chain, the Claude adapter against its fake
// server and the rules as the exact reader. A suggested selector that reads the last good
// value on the new page is applied; one that reads another value is not.
func TestSelfRepairThroughTheClaudeAdapter(t *testing.T) {
	t.Parallel()
	var page atomic.Value
	page.Store(pageBefore)
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(page.Load().(string)))
	}))
	t.Cleanup(site.Close)

	model := &scriptedSuggester{Provider: fallback.New(time.Now), script: []string{"s.was", "[data-testid=price-now]"}}
	srv := aitest.NewClaudeServer(t, model)
	cp, err := claude.New(claude.Config{APIKey: "sk-ant-test", BaseURL: srv.URL()}, time.Now)
	require.NoError(t, err)
	rules := fallback.New(time.Now)
	c, err := chain.New([]chain.Named{{Name: "claude", Label: "Claude", Provider: cp}, {Name: "fallback", Label: "rules", Provider: rules}},
		chain.Config{BackoffBase: time.Millisecond, BackoffMax: 5 * time.Millisecond, Logger: zerolog.Nop(), Exact: rules})
	require.NoError(t, err)

	m := monitor.New("m1", monitor.Draft{UserID: "u1", Prompt: "Tell me when the price drops below $100", SourceURL: site.URL,
		Interval: time.Hour, AutoRepair: true},
		monitor.Spec{Kind: monitor.KindCurrentState, Condition: "price < 100.0",
			Facts: []monitor.FactSpec{{Name: "price", Type: monitor.FactNumber, Unit: "USD", Selector: "span.price", SelectorBy: monitor.SelectorByUser}}},
		monitor.ClassifiedBy{}, time.Now())
	prev := &lastSuccess{}
	pub := &published{}
	fetcher := source.New(source.Config{AllowPrivate: true, Fresh: -1}, time.Now)
	ev := app.NewEvaluator(onlyMonitor{m}, prev, fetcher, c, pub, time.Now, app.EvaluatorConfig{Exact: rules})
	evaluate := func(slot time.Time) event.EvaluationCompleted {
		t.Helper()
		require.NoError(t, ev.Evaluate(context.Background(), event.EvaluationDue{MonitorID: m.ID, ScheduledFor: slot}, 1))
		return pub.evs[len(pub.evs)-1]
	}

	first := evaluate(time.Now())
	require.Equal(t, monitor.EvaluationSucceeded, first.Status, first.Error)
	require.Equal(t, 120.0, *first.Facts[0].Number)
	judged := srv.Requests() // Claude judged the condition; the rules read the user's selector
	prev.prev = &app.Previous{MonitorVersion: m.Version, SourceHash: first.SourceHash, State: first.State, Facts: first.Facts}

	page.Store(pageAfter)
	// The first suggestion reads $150.00, the struck-through old price: never applied.
	second := evaluate(time.Now())
	require.Equal(t, monitor.EvaluationFailed, second.Status)
	require.NotNil(t, second.Miss)
	require.Equal(t, "span.price", second.Miss.Selector)
	require.Equal(t, "$120.00", second.Miss.LastGood.Evidence)
	require.Contains(t, second.Miss.Snippet, "Trail shoe")
	require.NotNil(t, second.Repair)
	require.Equal(t, "s.was", second.Repair.Selector)
	require.False(t, second.Repair.Verified)
	require.False(t, second.Repair.Applied)
	require.Equal(t, "150 USD", second.Repair.Found)
	require.Contains(t, second.Repair.Reason, "not the last good value 120 USD")
	require.Nil(t, second.RepairedSpec)
	require.Equal(t, judged+1, srv.Requests(), "one suggestion asked of Claude, nothing judged")
	require.Equal(t, "span.price", model.asked[0].Fact.Selector, "Claude was told the selector that stopped working")
	require.Equal(t, 120.0, *model.asked[0].LastGood.Number, "and the value to find")
	require.Contains(t, string(srv.LastRequest().Body), `data-testid=\"price-now\"`, "and shown the markup, not only the text")

	// The same page again: the answer is cached, nothing is asked or applied.
	again := evaluate(time.Now())
	require.False(t, again.Repair.Applied)
	require.Equal(t, "s.was", again.Repair.Selector)
	require.Equal(t, judged+1, srv.Requests(), "the same question on the same page is not paid for twice")

	// The page changes again (a banner); the next suggestion reads $120.00 where the price
	// is now: verified, applied, and the evaluation succeeds with it.
	page.Store(`<p class="banner">Free returns</p>` + pageAfter)
	third := evaluate(time.Now().Add(time.Minute))
	require.Equal(t, monitor.EvaluationSucceeded, third.Status, third.Error)
	require.Equal(t, 120.0, *third.Facts[0].Number)
	require.Equal(t, monitor.StateInactive, third.State)
	require.True(t, third.Repair.Verified)
	require.True(t, third.Repair.Applied)
	require.Equal(t, "span.price", third.Repair.Old)
	require.Equal(t, "claude", third.Repair.Provider)
	require.NotNil(t, third.RepairedSpec)
	f, _ := third.RepairedSpec.Fact("price")
	require.Equal(t, "[data-testid=price-now]", f.Selector)
	require.Equal(t, monitor.SelectorByRepair, f.SelectorBy)
	require.Greater(t, third.Usage.InputTokens, 0, "the suggestion's tokens are counted")
}

// Both adapters speak the suggestion on the wire: OpenAI through a strict response schema,
// Claude through a forced tool; an answer without a selector is malformed, so retried.
func TestSuggestSelectorOnTheWire(t *testing.T) {
	t.Parallel()
	req := ai.SelectorRequest{Fact: monitor.FactSpec{Name: "price", Type: monitor.FactNumber, Selector: "span.price"},
		LastGood: monitor.NumberFact("price", 120, "USD", time.Time{})}
	doc := ai.Document{Body: []byte(pageAfter), ContentType: "text/html", Text: "Trail shoe $120.00 $150.00"}

	model := &scriptedSuggester{Provider: fallback.New(time.Now), script: []string{"b[data-testid=price-now]"}}
	osrv := aitest.NewOpenAIServer(t, model)
	op, err := openai.New(openai.Config{APIKey: "sk-test", BaseURL: osrv.URL()}, time.Now)
	require.NoError(t, err)
	sel, u, err := op.SuggestSelector(context.Background(), req, doc)
	require.NoError(t, err)
	require.Equal(t, "b[data-testid=price-now]", sel)
	require.Equal(t, "openai", u.Provider)
	require.Positive(t, u.InputTokens)
	require.Contains(t, string(osrv.LastRequest().Body), `"name":"record_selector"`)

	csrv := aitest.NewClaudeServer(t, model)
	cp, err := claude.New(claude.Config{APIKey: "sk-ant-test", BaseURL: csrv.URL()}, time.Now)
	require.NoError(t, err)
	csrv.ReplyRaw(1, aitest.ClaudeToolUse("record_selector", `{"reason":"no selector"}`, "tool_use"))
	_, _, err = cp.SuggestSelector(context.Background(), req, doc)
	ae, ok := ai.AsError(err)
	require.True(t, ok, "%v", err)
	require.True(t, ae.Retryable, "a malformed answer is worth another try")
}

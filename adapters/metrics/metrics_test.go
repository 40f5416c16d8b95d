package metrics_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/ai/chain"
	"github.com/vigilhq/vigil/adapters/ai/fallback"
	"github.com/vigilhq/vigil/adapters/metrics"
	"github.com/vigilhq/vigil/domain/ai"
)

// scrape returns what Prometheus would read from r.
func scrape(t *testing.T, r *metrics.Registry) string {
	t.Helper()
	srv := httptest.NewServer(r.Handler())
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(body)
}

// requireLines checks that every line is in the exposition text.
func requireLines(t *testing.T, text string, lines ...string) {
	t.Helper()
	have := make(map[string]bool)
	for l := range strings.Lines(text) {
		have[strings.TrimSuffix(l, "\n")] = true
	}
	for _, l := range lines {
		require.True(t, have[l], "missing line %q in:\n%s", l, text)
	}
}

func TestObserveAICall(t *testing.T) {
	t.Parallel()
	r := metrics.New()
	call := chain.Call{Provider: "claude", Model: "claude-sonnet-4", Operation: "classify"}

	failed := call
	failed.Outcome, failed.Latency, failed.InputTokens, failed.Cost = chain.OutcomeRetryableError, 200*time.Millisecond, 50, 0.25
	r.ObserveAICall(failed)
	ok := call
	ok.Outcome, ok.Latency, ok.InputTokens, ok.OutputTokens, ok.Cost = chain.OutcomeOK, 1500*time.Millisecond, 100, 20, 0.5
	r.ObserveAICall(ok)
	cached := call
	cached.Outcome = chain.OutcomeCached
	r.ObserveAICall(cached)
	r.ObserveAICall(chain.Call{Provider: "openai", Operation: "evaluate", Outcome: chain.OutcomeBreakerOpen})

	requireLines(t, scrape(t, r),
		`vigil_ai_calls_total{model="claude-sonnet-4",operation="classify",outcome="retryable_error",provider="claude"} 1`,
		`vigil_ai_calls_total{model="claude-sonnet-4",operation="classify",outcome="ok",provider="claude"} 1`,
		`vigil_ai_calls_total{model="claude-sonnet-4",operation="classify",outcome="cached",provider="claude"} 1`,
		`vigil_ai_calls_total{model="",operation="evaluate",outcome="breaker_open",provider="openai"} 1`,
		// Only the two calls that reached the provider are timed.
		`vigil_ai_call_duration_seconds_bucket{operation="classify",provider="claude",le="0.1"} 0`,
		`vigil_ai_call_duration_seconds_bucket{operation="classify",provider="claude",le="0.25"} 1`,
		`vigil_ai_call_duration_seconds_bucket{operation="classify",provider="claude",le="2.5"} 2`,
		`vigil_ai_call_duration_seconds_bucket{operation="classify",provider="claude",le="60"} 2`,
		`vigil_ai_call_duration_seconds_sum{operation="classify",provider="claude"} 1.7`,
		`vigil_ai_call_duration_seconds_count{operation="classify",provider="claude"} 2`,
		`vigil_ai_tokens_total{direction="input",model="claude-sonnet-4",provider="claude"} 150`,
		`vigil_ai_tokens_total{direction="output",model="claude-sonnet-4",provider="claude"} 20`,
		`vigil_ai_cost_usd_total{model="claude-sonnet-4",provider="claude"} 0.75`,
	)
	text := scrape(t, r)
	require.NotContains(t, text, `vigil_ai_call_duration_seconds_count{operation="evaluate",provider="openai"}`)
	require.NotContains(t, text, `vigil_ai_cost_usd_total{model="",provider="openai"}`)
}

func TestRuntimeAndProcessCollectors(t *testing.T) {
	t.Parallel()
	text := scrape(t, metrics.New())
	require.Contains(t, text, "\ngo_goroutines ")
	require.Contains(t, text, "\ngo_memstats_alloc_bytes ")
	if runtime.GOOS == "linux" {
		require.Contains(t, text, "\nprocess_cpu_seconds_total ")
	}
}

func TestObserveMessage(t *testing.T) {
	t.Parallel()
	r := metrics.New()
	r.ObserveMessage("EVALUATIONS", "evaluator", "ack", 30*time.Millisecond)
	r.ObserveMessage("EVALUATIONS", "evaluator", "ack", 70*time.Millisecond)
	r.ObserveMessage("EVALUATIONS", "evaluator", "retry", 3*time.Second)
	r.ObserveMessage("NOTIFICATIONS", "mailer", "dead", time.Second)

	requireLines(t, scrape(t, r),
		`vigil_messages_total{consumer="evaluator",outcome="ack",stream="EVALUATIONS"} 2`,
		`vigil_messages_total{consumer="evaluator",outcome="retry",stream="EVALUATIONS"} 1`,
		`vigil_messages_total{consumer="mailer",outcome="dead",stream="NOTIFICATIONS"} 1`,
		`vigil_message_duration_seconds_bucket{consumer="evaluator",stream="EVALUATIONS",le="0.05"} 1`,
		`vigil_message_duration_seconds_bucket{consumer="evaluator",stream="EVALUATIONS",le="0.1"} 2`,
		`vigil_message_duration_seconds_bucket{consumer="evaluator",stream="EVALUATIONS",le="5"} 3`,
		`vigil_message_duration_seconds_count{consumer="evaluator",stream="EVALUATIONS"} 3`,
		`vigil_message_duration_seconds_count{consumer="mailer",stream="NOTIFICATIONS"} 1`,
	)
}

func TestLabelValuesAreBounded(t *testing.T) {
	t.Parallel()
	r := metrics.New()
	long := strings.Repeat("é", 100)
	r.ObserveAICall(chain.Call{Provider: "openai", Model: long, Operation: "extract", Outcome: chain.OutcomeOK,
		Latency: -time.Second, Cost: -1})
	r.ObserveAICall(chain.Call{Provider: "openai", Model: "bad\xffutf8", Operation: "extract", Outcome: chain.OutcomeOK})
	r.ObserveMessage(strings.Repeat("S", 100), "c", "ack", time.Millisecond)

	text := scrape(t, r)
	requireLines(t, text,
		`vigil_ai_calls_total{model="`+strings.Repeat("é", metrics.LabelMaxRunes)+`",operation="extract",outcome="ok",provider="openai"} 1`,
		`vigil_ai_calls_total{model="bad`+"\uFFFD"+`utf8",operation="extract",outcome="ok",provider="openai"} 1`,
		`vigil_ai_call_duration_seconds_bucket{operation="extract",provider="openai",le="0.01"} 2`,
		`vigil_messages_total{consumer="c",outcome="ack",stream="`+strings.Repeat("S", metrics.LabelMaxRunes)+`"} 1`,
	)
	require.NotContains(t, text, "vigil_ai_cost_usd_total{", "a negative cost is not counted")
}

func TestRegistriesAreIndependent(t *testing.T) {
	t.Parallel()
	a, b := metrics.New(), metrics.New()
	a.ObserveMessage("S", "independent", "ack", time.Millisecond)

	require.Contains(t, scrape(t, a), `consumer="independent"`)
	require.NotContains(t, scrape(t, b), `consumer="independent"`)
	families, err := prometheus.DefaultGatherer.Gather()
	require.NoError(t, err)
	for _, f := range families {
		require.False(t, strings.HasPrefix(f.GetName(), "vigil_"), "%s is in the default registry", f.GetName())
	}
}

func TestObservesTheChain(t *testing.T) {
	t.Parallel()
	r := metrics.New()
	c, err := chain.New([]chain.Named{{Name: fallback.Name, Provider: fallback.New(time.Now)}}, chain.Config{Observer: r})
	require.NoError(t, err)

	for range 2 {
		_, _, err = c.Classify(context.Background(), "Tell me when the price drops below $80", ai.Hints{})
		require.NoError(t, err)
	}
	requireLines(t, scrape(t, r),
		`vigil_ai_calls_total{model="`+fallback.Model+`",operation="classify",outcome="ok",provider="`+fallback.Name+`"} 1`,
		`vigil_ai_calls_total{model="`+fallback.Model+`",operation="classify",outcome="cached",provider="`+fallback.Name+`"} 1`,
		`vigil_ai_call_duration_seconds_count{operation="classify",provider="`+fallback.Name+`"} 1`,
	)
}

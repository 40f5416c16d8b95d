package chain

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/ai/fallback"
	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/ai"
	"github.com/vigilhq/vigil/domain/monitor"
)

type testBundle struct {
	chain  *Chain
	claude *fake
	openai *fake
	rules  *fake
	logs   *syncBuffer
}

// testConfig is fast: millisecond backoffs, short timeouts.
func testConfig() Config {
	return Config{
		ClassifyTimeout: time.Second,
		CallTimeout:     time.Second,
		BackoffBase:     time.Millisecond,
		BackoffMax:      20 * time.Millisecond,
		BreakerDelay:    100 * time.Millisecond,
	}
}

func setup(t *testing.T, cfg Config) *testBundle {
	t.Helper()
	b := &testBundle{
		claude: newFake("claude"),
		openai: newFake("openai"),
		rules:  newFake("fallback"),
		logs:   &syncBuffer{},
	}
	cfg.Logger = zerolog.New(b.logs)
	c, err := New([]Named{
		{Name: "claude", Label: "Claude", Provider: b.claude},
		{Name: "openai", Label: "OpenAI", Provider: b.openai},
		{Name: "fallback", Label: "Rules", Provider: b.rules},
	}, cfg)
	require.NoError(t, err)
	b.chain = c
	return b
}

var doc = ai.Document{URL: "https://example.com/p", ContentType: "application/json", Body: []byte(`{"price": 75}`)}

var spec = monitor.Spec{
	Kind:      monitor.KindCurrentState,
	Facts:     []monitor.FactSpec{{Name: "price", Type: monitor.FactNumber}},
	Condition: "price < 80",
}

func retryable(after time.Duration) error {
	return &ai.Error{Provider: "claude", Retryable: true, RetryAfter: after, StatusCode: 529, Message: "Claude is overloaded"}
}

func permanent() error {
	return &ai.Error{Provider: "claude", StatusCode: 400, Message: "Claude rejected the request"}
}

func TestNew(t *testing.T) {
	t.Parallel()

	_, err := New(nil, Config{})
	require.ErrorContains(t, err, "at least one provider")

	_, err = New([]Named{{Name: "a", Provider: newFake("a")}, {Name: "a"}}, Config{MonthlyBudget: 5})
	require.ErrorContains(t, err, "listed twice")
	require.ErrorContains(t, err, "no implementation")
	require.ErrorContains(t, err, "SpendStore is required")

	c, err := New([]Named{{Name: "fallback", Provider: newFake("fallback")}}, Config{})
	require.NoError(t, err)
	require.Equal(t, "fallback", c.members[0].Label)
	require.Equal(t, ClassifyTimeoutDefault, c.cfg.ClassifyTimeout)
	require.Equal(t, CallTimeoutDefault, c.cfg.CallTimeout)
	require.Equal(t, MaxRetriesDefault, c.cfg.MaxRetries)
	require.Equal(t, "closed", c.BreakerState("fallback"))
	require.Empty(t, c.BreakerState("nope"))

	c, err = New([]Named{{Name: "claude", Provider: newFake("claude")}, {Name: "fallback", Provider: newFake("fallback")}}, Config{})
	require.NoError(t, err)
	require.Equal(t, []string{"claude", "fallback"}, c.Providers(), "in the order the chain asks them")
}

func TestRetryThenSuccess(t *testing.T) {
	t.Parallel()
	b := setup(t, testConfig())
	b.claude.script(step{err: retryable(0)}, step{})

	v, u, err := b.chain.Evaluate(context.Background(), spec, nil, doc)
	require.NoError(t, err)
	require.Equal(t, "by claude", v.Explanation)
	require.Equal(t, int32(2), b.claude.calls.Load())
	require.Zero(t, b.openai.calls.Load())
	require.Equal(t, "claude", u.Provider)
	require.Empty(t, u.Notes)
	require.InDelta(t, 0.02, u.Cost, 1e-9, "the failed attempt is paid for too")
	require.Contains(t, b.logs.String(), `"outcome":"retryable_error","attempt":1`)
	require.Contains(t, b.logs.String(), `"retry":true`)
}

func TestRetriesExhaustedThenFailover(t *testing.T) {
	t.Parallel()
	b := setup(t, testConfig())
	b.claude.script(step{err: retryable(0)})

	_, u, err := b.chain.Extract(context.Background(), spec, doc)
	require.NoError(t, err)
	require.Equal(t, int32(3), b.claude.calls.Load(), "one attempt and two retries")
	require.Equal(t, "openai", u.Provider)
	require.Equal(t, []string{"Claude is unavailable; evaluated with OpenAI instead."}, u.Notes)
}

func TestRetryAfterHonoured(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.BackoffMax = 200 * time.Millisecond
	b := setup(t, cfg)
	b.claude.script(step{err: retryable(50 * time.Millisecond)}, step{})

	_, _, err := b.chain.Evaluate(context.Background(), spec, nil, doc)
	require.NoError(t, err)
	times := b.claude.callTimes()
	require.Len(t, times, 2)
	require.GreaterOrEqual(t, times[1].Sub(times[0]), 50*time.Millisecond)
	require.Zero(t, b.openai.calls.Load())
}

func TestRetryAfterCappedAtBackoffMax(t *testing.T) {
	t.Parallel()
	b := setup(t, testConfig()) // BackoffMax 20ms
	b.claude.script(step{err: retryable(150 * time.Millisecond)}, step{})

	_, u, err := b.chain.Evaluate(context.Background(), spec, nil, doc)
	require.NoError(t, err)
	require.Equal(t, "claude", u.Provider)
	times := b.claude.callTimes()
	require.Len(t, times, 2)
	require.Less(t, times[1].Sub(times[0]), 150*time.Millisecond)
}

func TestRetryAfterBeyondTimeoutFailsOver(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.CallTimeout = 100 * time.Millisecond
	cfg.BackoffMax = time.Minute
	b := setup(t, cfg)
	b.claude.script(step{err: retryable(time.Minute)})

	start := time.Now()
	_, u, err := b.chain.Evaluate(context.Background(), spec, nil, doc)
	require.NoError(t, err)
	require.Less(t, time.Since(start), 100*time.Millisecond, "no waiting for a Retry-After that cannot fit")
	require.Equal(t, int32(1), b.claude.calls.Load())
	require.Equal(t, "openai", u.Provider)
}

func TestNonRetryableFailsOverWithNote(t *testing.T) {
	t.Parallel()
	b := setup(t, testConfig())
	b.claude.script(step{err: permanent()})

	s, u, err := b.chain.Classify(context.Background(), "price below 80", ai.Hints{})
	require.NoError(t, err)
	require.Equal(t, int32(1), b.claude.calls.Load())
	require.Equal(t, int32(1), b.openai.calls.Load())
	require.Equal(t, "openai", u.Provider)
	note := "Claude is unavailable; classified with OpenAI instead."
	require.Equal(t, []string{note}, u.Notes)
	require.Equal(t, []string{note}, s.Warnings)

	_, u, err = b.chain.Evaluate(context.Background(), spec, nil, doc)
	require.NoError(t, err)
	require.Equal(t, []string{"Claude is unavailable; evaluated with OpenAI instead."}, u.Notes)
}

func TestInvalidIsReturnedAtOnce(t *testing.T) {
	t.Parallel()
	b := setup(t, testConfig())
	b.claude.script(step{err: domain.Errorf(domain.EINVALID, "The price is not on the page.")})

	_, _, err := b.chain.Extract(context.Background(), spec, doc)
	require.ErrorIs(t, err, domain.ErrInvalid)
	require.Equal(t, "The price is not on the page.", domain.ErrorMessage(err))
	require.Equal(t, int32(1), b.claude.calls.Load(), "no retry")
	require.Zero(t, b.openai.calls.Load(), "no failover")
	require.Equal(t, "closed", b.chain.BreakerState("claude"))
}

func TestAllFail(t *testing.T) {
	t.Parallel()
	b := setup(t, testConfig())
	b.claude.script(step{err: permanent()})
	b.openai.script(step{err: errors.New("connection refused")})
	last := &ai.Error{Provider: "fallback", Message: "Rules broke."}
	b.rules.script(step{err: last})

	_, _, err := b.chain.Evaluate(context.Background(), spec, nil, doc)
	require.ErrorIs(t, err, domain.ErrUnavailable)
	require.ErrorIs(t, err, last)
	require.Equal(t, "No AI provider could answer: Claude rejected the request; OpenAI failed; Rules broke.",
		domain.ErrorMessage(err))
}

func TestTimeoutFailsOver(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.CallTimeout = 50 * time.Millisecond
	b := setup(t, cfg)
	b.claude.script(step{block: true})

	start := time.Now()
	_, u, err := b.chain.Evaluate(context.Background(), spec, nil, doc)
	require.NoError(t, err)
	require.GreaterOrEqual(t, time.Since(start), 50*time.Millisecond)
	require.Less(t, time.Since(start), 500*time.Millisecond)
	require.Equal(t, "openai", u.Provider)
	require.Equal(t, []string{"Claude is unavailable; evaluated with OpenAI instead."}, u.Notes)
	require.Contains(t, b.logs.String(), `"outcome":"timeout"`)
}

func TestTimeoutBoundsRetries(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.CallTimeout = 50 * time.Millisecond
	cfg.MaxRetries = 100
	b := setup(t, cfg)
	b.claude.script(step{err: retryable(0), delay: 10 * time.Millisecond})

	start := time.Now()
	_, u, err := b.chain.Evaluate(context.Background(), spec, nil, doc)
	require.NoError(t, err)
	require.Less(t, time.Since(start), 300*time.Millisecond)
	require.Equal(t, "openai", u.Provider)
}

func TestIgnoredContextDoesNotHang(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.CallTimeout = 50 * time.Millisecond
	b := setup(t, cfg)
	// A provider that sleeps without looking at its context.
	stubborn := &stubbornProvider{fake: b.claude, release: make(chan struct{})}
	t.Cleanup(func() { close(stubborn.release) })
	b.chain.members[0].Provider = stubborn

	start := time.Now()
	_, u, err := b.chain.Evaluate(context.Background(), spec, nil, doc)
	require.NoError(t, err)
	require.Less(t, time.Since(start), 500*time.Millisecond)
	require.Equal(t, "openai", u.Provider)
}

type stubbornProvider struct {
	*fake
	release chan struct{}
}

func (p *stubbornProvider) Evaluate(context.Context, monitor.Spec, []monitor.Fact, ai.Document) (monitor.Verdict, ai.Usage, error) {
	<-p.release
	return monitor.Verdict{}, ai.Usage{}, nil
}

func TestPanicFailsOver(t *testing.T) {
	t.Parallel()
	b := setup(t, testConfig())
	b.claude.script(step{panic: true})

	_, u, err := b.chain.Evaluate(context.Background(), spec, nil, doc)
	require.NoError(t, err)
	require.Equal(t, "openai", u.Provider)
}

func TestCircuitBreaker(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.BreakerFailures = 3
	cfg.BreakerWindow = 5
	cfg.BreakerDelay = 100 * time.Millisecond
	b := setup(t, cfg)
	b.claude.script(step{err: permanent()})

	ctx := context.Background()
	for i := range 3 {
		_, u, err := b.chain.Classify(ctx, fmt.Sprintf("prompt %d", i), ai.Hints{})
		require.NoError(t, err)
		require.Equal(t, "openai", u.Provider)
	}
	require.Equal(t, "open", b.chain.BreakerState("claude"))

	_, u, err := b.chain.Classify(ctx, "prompt 3", ai.Hints{})
	require.NoError(t, err)
	require.Equal(t, int32(3), b.claude.calls.Load(), "an open breaker skips the provider")
	require.Equal(t, "openai", u.Provider)
	require.Equal(t, []string{"Claude is unavailable; classified with OpenAI instead."}, u.Notes)

	b.claude.script(step{})
	require.Eventually(t, func() bool { return b.chain.BreakerState("claude") == "half-open" },
		time.Second, 10*time.Millisecond)
	_, u, err = b.chain.Classify(ctx, "prompt 4", ai.Hints{})
	require.NoError(t, err)
	require.Equal(t, "claude", u.Provider)
	require.Equal(t, int32(4), b.claude.calls.Load())
	require.Equal(t, "closed", b.chain.BreakerState("claude"))
}

func TestBreakerReopensWhenProbeFails(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.BreakerFailures = 1
	cfg.BreakerWindow = 1
	cfg.BreakerDelay = 50 * time.Millisecond
	b := setup(t, cfg)
	b.claude.script(step{err: permanent()})

	_, _, err := b.chain.Evaluate(context.Background(), spec, nil, doc)
	require.NoError(t, err)
	require.Equal(t, "open", b.chain.BreakerState("claude"))
	require.Eventually(t, func() bool { return b.chain.BreakerState("claude") == "half-open" },
		time.Second, 10*time.Millisecond)
	_, _, err = b.chain.Evaluate(context.Background(), spec, []monitor.Fact{monitor.NumberFact("price", 1, "", time.Time{})}, doc)
	require.NoError(t, err)
	require.Equal(t, int32(2), b.claude.calls.Load())
	require.Equal(t, "open", b.chain.BreakerState("claude"))
}

func TestCacheHit(t *testing.T) {
	t.Parallel()
	b := setup(t, testConfig())
	ctx := context.Background()

	s1, u1, err := b.chain.Classify(ctx, "price below 80", ai.Hints{})
	require.NoError(t, err)
	require.False(t, u1.Cached)
	s2, u2, err := b.chain.Classify(ctx, "price below 80", ai.Hints{})
	require.NoError(t, err)
	require.Equal(t, int32(1), b.claude.calls.Load())
	require.Equal(t, s1, s2)
	require.Equal(t, ai.Usage{Provider: "claude", Model: "claude-model", Cached: true}, u2)

	// Answers are copies: changing one does not change the cache.
	s2.Facts[0].Name = "changed"
	s3, _, err := b.chain.Classify(ctx, "price below 80", ai.Hints{})
	require.NoError(t, err)
	require.Equal(t, "price", s3.Facts[0].Name)

	// Extract by spec and document hash, computed when the fetcher left it empty.
	f1, _, err := b.chain.Extract(ctx, spec, doc)
	require.NoError(t, err)
	withHash := doc
	withHash.Hash = documentHash(doc)
	withHash.FetchedAt = time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
	f2, u, err := b.chain.Extract(ctx, spec, withHash)
	require.NoError(t, err)
	require.True(t, u.Cached)
	require.Zero(t, u.Cost)
	require.Equal(t, *f1[0].Number, *f2[0].Number)
	require.Equal(t, withHash.FetchedAt, f2[0].ObservedAt, "reused facts are observed again")
	require.Equal(t, int32(2), b.claude.calls.Load())

	changed := doc
	changed.Body = []byte(`{"price": 70}`)
	_, u, err = b.chain.Extract(ctx, spec, changed)
	require.NoError(t, err)
	require.False(t, u.Cached)
	require.Equal(t, int32(3), b.claude.calls.Load())

	// Evaluate by spec, facts and document hash.
	_, _, err = b.chain.Evaluate(ctx, spec, f1, doc)
	require.NoError(t, err)
	v, u, err := b.chain.Evaluate(ctx, spec, f2, doc)
	require.NoError(t, err)
	require.True(t, u.Cached)
	require.Equal(t, monitor.StateActive, v.State)
	require.Equal(t, int32(4), b.claude.calls.Load())
}

func TestErrorsAreNotCached(t *testing.T) {
	t.Parallel()
	b := setup(t, testConfig())
	b.claude.script(step{err: domain.Errorf(domain.EINVALID, "no")}, step{})

	_, _, err := b.chain.Classify(context.Background(), "p", ai.Hints{})
	require.Error(t, err)
	_, u, err := b.chain.Classify(context.Background(), "p", ai.Hints{})
	require.NoError(t, err)
	require.False(t, u.Cached)
	require.Equal(t, int32(2), b.claude.calls.Load())
}

func TestCachePrefersBestProvider(t *testing.T) {
	t.Parallel()
	b := setup(t, testConfig())
	ctx := context.Background()
	b.claude.script(step{err: permanent()}, step{})

	s, u, err := b.chain.Classify(ctx, "price below 80", ai.Hints{})
	require.NoError(t, err)
	require.Equal(t, "openai", u.Provider)
	require.Equal(t, "openai: price below 80", s.Summary)

	// Claude is back: its answer is better than OpenAI's cached one.
	s, u, err = b.chain.Classify(ctx, "price below 80", ai.Hints{})
	require.NoError(t, err)
	require.Equal(t, "claude", u.Provider)
	require.False(t, u.Cached)
	require.Empty(t, s.Warnings)

	s, u, err = b.chain.Classify(ctx, "price below 80", ai.Hints{})
	require.NoError(t, err)
	require.Equal(t, "claude", u.Provider)
	require.True(t, u.Cached)
	require.Equal(t, "claude: price below 80", s.Summary)
	require.Equal(t, int32(2), b.claude.calls.Load())
	require.Equal(t, int32(1), b.openai.calls.Load())
}

func TestCachedAnswerOfLaterProviderDuringOutage(t *testing.T) {
	t.Parallel()
	b := setup(t, testConfig())
	ctx := context.Background()
	b.claude.script(step{err: permanent()})

	_, _, err := b.chain.Evaluate(ctx, spec, nil, doc)
	require.NoError(t, err)
	_, u, err := b.chain.Evaluate(ctx, spec, nil, doc)
	require.NoError(t, err)
	require.Equal(t, "openai", u.Provider)
	require.True(t, u.Cached)
	require.Equal(t, []string{"Claude is unavailable; evaluated with OpenAI instead."}, u.Notes)
	require.Equal(t, int32(1), b.openai.calls.Load())
}

func TestCoalescing(t *testing.T) {
	t.Parallel()
	b := setup(t, testConfig())
	b.claude.gate = make(chan struct{})

	const n = 10
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		usages []ai.Usage
		specs  []monitor.Spec
	)
	for range n {
		wg.Go(func() {
			s, u, err := b.chain.Classify(context.Background(), "price below 80", ai.Hints{})
			if !assertNoError(t, err) {
				return
			}
			// Each caller owns its answer.
			s.Warnings = append(s.Warnings, "mine")
			s.Facts[0].Unit = "mine"
			mu.Lock()
			defer mu.Unlock()
			usages = append(usages, u)
			specs = append(specs, s)
		})
	}
	require.Eventually(t, func() bool { return b.chain.flights.waiting() == n }, time.Second, time.Millisecond)
	close(b.claude.gate)
	wg.Wait()

	require.Equal(t, int32(1), b.claude.calls.Load())
	require.Len(t, usages, n)
	paid := 0
	for i, u := range usages {
		require.Equal(t, "claude", u.Provider)
		require.Equal(t, "claude: price below 80", specs[i].Summary)
		if !u.Cached {
			paid++
			require.InDelta(t, 0.01, u.Cost, 1e-9)
		}
	}
	require.Equal(t, 1, paid, "exactly one caller accounts for the call")
}

func assertNoError(t *testing.T, err error) bool {
	t.Helper()
	if err != nil {
		t.Errorf("unexpected error: %v", err)
		return false
	}
	return true
}

func TestCoalescedCallerLeavingDoesNotCancelOthers(t *testing.T) {
	t.Parallel()
	b := setup(t, testConfig())
	b.claude.gate = make(chan struct{})

	leaving, leave := context.WithCancel(context.Background())
	errs := make(chan error, 2)
	go func() {
		_, _, err := b.chain.Evaluate(leaving, spec, nil, doc)
		errs <- err
	}()
	go func() {
		_, _, err := b.chain.Evaluate(context.Background(), spec, nil, doc)
		errs <- err
	}()
	require.Eventually(t, func() bool { return b.chain.flights.waiting() == 2 }, time.Second, time.Millisecond)
	leave()
	require.ErrorIs(t, <-errs, context.Canceled)
	close(b.claude.gate)
	require.NoError(t, <-errs)
	require.Equal(t, int32(1), b.claude.calls.Load())
}

func TestBudgetSpent(t *testing.T) {
	t.Parallel()
	clk := &clock{now: time.Date(2026, 7, 15, 12, 0, 0, 0, time.UTC)}
	store := &spendStore{spent: map[string]float64{"spender": 5, "saver": 1}}
	cfg := testConfig()
	cfg.MonthlyBudget = 5
	cfg.Spend = store
	cfg.Now = clk.Now
	b := setup(t, cfg)

	ctx := ai.WithUser(context.Background(), "spender")
	_, u, err := b.chain.Evaluate(ctx, spec, nil, doc)
	require.NoError(t, err)
	require.Zero(t, b.claude.calls.Load())
	require.Zero(t, b.openai.calls.Load())
	require.Equal(t, int32(1), b.rules.calls.Load())
	require.Equal(t, "fallback", u.Provider)
	require.Equal(t, []string{"Your monthly AI budget is spent; evaluated with rules until 1 August 2026."}, u.Notes)
	require.Equal(t, []time.Time{time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)}, store.months)

	s, _, err := b.chain.Classify(ctx, "price below 80", ai.Hints{})
	require.NoError(t, err)
	require.Equal(t, []string{"Your monthly AI budget is spent; classified with rules until 1 August 2026."}, s.Warnings)
	require.Equal(t, 1, store.lookups(), "spend is cached for a minute")

	clk.Add(2 * time.Minute)
	_, _, err = b.chain.Evaluate(ai.WithUser(context.Background(), "saver"), spec, []monitor.Fact{}, doc)
	require.NoError(t, err)
	require.Equal(t, int32(1), b.claude.calls.Load(), "a user within budget gets the best provider")
	_, _, err = b.chain.Evaluate(ctx, spec, nil, doc)
	require.NoError(t, err)
	require.Equal(t, 3, store.lookups())

	// Answers cached from better providers cost nothing: they are served even over budget.
	_, u, err = b.chain.Evaluate(ai.WithUser(context.Background(), "spender"), spec, []monitor.Fact{}, doc)
	require.NoError(t, err)
	require.Equal(t, "claude", u.Provider)
	require.True(t, u.Cached)
	require.Empty(t, u.Notes)

	// No user, no budget.
	_, u, err = b.chain.Evaluate(context.Background(), monitor.Spec{Summary: "other"}, nil, doc)
	require.NoError(t, err)
	require.Equal(t, "claude", u.Provider)
}

func TestContextCancellationStopsRetries(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.BackoffMax = 5 * time.Second
	cfg.CallTimeout = 10 * time.Second
	b := setup(t, cfg)
	b.claude.script(step{err: retryable(2 * time.Second)})

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(30*time.Millisecond, cancel)
	start := time.Now()
	_, _, err := b.chain.Evaluate(ctx, spec, nil, doc)
	require.ErrorIs(t, err, context.Canceled)
	require.Less(t, time.Since(start), time.Second)
	require.Equal(t, int32(1), b.claude.calls.Load())
	require.Zero(t, b.openai.calls.Load())
}

func TestLogs(t *testing.T) {
	t.Parallel()
	b := setup(t, testConfig())
	prompt := "Tell me when the price of the blue widget on the shop page drops below $80, secret tail text"

	_, _, err := b.chain.Classify(ai.WithUser(context.Background(), "u1"), prompt, ai.Hints{})
	require.NoError(t, err)
	logs := b.logs.String()
	for _, want := range []string{`"level":"info"`, `"provider":"claude"`, `"model":"claude-model"`, `"operation":"classify"`,
		`"latency_ms":`, `"input_tokens":100`, `"output_tokens":20`, `"cost":0.01`, `"outcome":"ok"`, `"user_id":"u1"`} {
		require.Contains(t, logs, want)
	}
	require.Contains(t, logs, prompt[:60])
	require.NotContains(t, logs, "secret tail text")
}

func TestWithRealFallback(t *testing.T) {
	t.Parallel()
	claude := newFake("claude", step{err: permanent()})
	c, err := New([]Named{
		{Name: "claude", Label: "Claude", Provider: claude},
		{Name: "fallback", Label: "Rules", Provider: fallback.New(time.Now)},
	}, testConfig())
	require.NoError(t, err)
	ctx := context.Background()

	s, u, err := c.Classify(ctx, "Tell me when the price drops below $80", ai.Hints{})
	require.NoError(t, err)
	require.Equal(t, fallback.Name, u.Provider)
	note := "Claude is unavailable; classified with rules instead."
	require.Equal(t, []string{note}, u.Notes)
	require.Contains(t, s.Warnings, note)

	facts, u, err := c.Extract(ctx, s, doc)
	require.NoError(t, err)
	require.Equal(t, fallback.Name, u.Provider)
	require.Len(t, facts, 1)
	require.InDelta(t, 75.0, *facts[0].Number, 1e-9)

	v, _, err := c.Evaluate(ctx, s, facts, doc)
	require.NoError(t, err)
	require.Equal(t, monitor.StateActive, v.State)

	_, _, err = c.Classify(ctx, "Tell me something nice", ai.Hints{})
	require.ErrorIs(t, err, domain.ErrInvalid)
	require.True(t, strings.HasPrefix(domain.ErrorMessage(err), note+" "), domain.ErrorMessage(err))
}

func TestLRUEvicts(t *testing.T) {
	t.Parallel()
	c := newLRU[int](2)
	c.put("a", 1, ai.Usage{})
	c.put("b", 2, ai.Usage{})
	_, _, ok := c.get("a") // a is now the most recent
	require.True(t, ok)
	c.put("c", 3, ai.Usage{})
	_, _, ok = c.get("b")
	require.False(t, ok)
	_, _, ok = c.get("a")
	require.True(t, ok)
	require.Equal(t, 2, c.len())
}

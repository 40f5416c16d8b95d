package chain

import (
	"bufio"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/ai"
)

// recorder is an Observer that keeps every call.
type recorder struct {
	mu    sync.Mutex
	calls []Call
}

func (r *recorder) ObserveAICall(c Call) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, c)
}

func (r *recorder) all() []Call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Call(nil), r.calls...)
}

// outcomes returns "provider outcome" for each call, in order.
func outcomes(calls []Call) []string {
	out := make([]string, len(calls))
	for i, c := range calls {
		out[i] = c.Provider + " " + c.Outcome
	}
	return out
}

// loggedOutcomes returns "provider outcome" for each line the chain logged about a call.
func loggedOutcomes(t *testing.T, logs string) []string {
	t.Helper()
	var out []string
	sc := bufio.NewScanner(strings.NewReader(logs))
	for sc.Scan() {
		var line struct {
			Provider, Outcome string
		}
		require.NoError(t, json.Unmarshal(sc.Bytes(), &line))
		if line.Outcome != "" {
			out = append(out, line.Provider+" "+line.Outcome)
		}
	}
	return out
}

func TestObserver(t *testing.T) {
	t.Parallel()

	ctx := context.Background()
	evaluate := func(t *testing.T, b *testBundle) {
		t.Helper()
		_, _, err := b.chain.Evaluate(ctx, spec, nil, doc)
		require.NoError(t, err)
	}

	tests := []struct {
		name string
		cfg  func(*Config)
		run  func(t *testing.T, b *testBundle)
		want []string
	}{
		{
			name: "success",
			run:  evaluate,
			want: []string{"claude ok"},
		},
		{
			name: "retry then success",
			run: func(t *testing.T, b *testBundle) {
				b.claude.script(step{err: retryable(0)}, step{})
				evaluate(t, b)
			},
			want: []string{"claude retryable_error", "claude ok"},
		},
		{
			name: "retries exhausted then failover",
			run: func(t *testing.T, b *testBundle) {
				b.claude.script(step{err: retryable(0)})
				evaluate(t, b)
			},
			want: []string{"claude retryable_error", "claude retryable_error", "claude retryable_error", "openai ok"},
		},
		{
			name: "failover",
			run: func(t *testing.T, b *testBundle) {
				b.claude.script(step{err: permanent()})
				evaluate(t, b)
			},
			want: []string{"claude error", "openai ok"},
		},
		{
			name: "cache hit",
			run: func(t *testing.T, b *testBundle) {
				evaluate(t, b)
				evaluate(t, b)
			},
			want: []string{"claude ok", "claude cached"},
		},
		{
			name: "cache hit of a later provider",
			run: func(t *testing.T, b *testBundle) {
				b.claude.script(step{err: permanent()})
				evaluate(t, b)
				evaluate(t, b)
			},
			want: []string{"claude error", "openai ok", "claude error", "openai cached"},
		},
		{
			name: "breaker open",
			cfg: func(cfg *Config) {
				cfg.BreakerFailures, cfg.BreakerWindow, cfg.BreakerDelay = 1, 1, time.Minute
			},
			run: func(t *testing.T, b *testBundle) {
				b.claude.script(step{err: permanent()})
				evaluate(t, b)
				_, _, err := b.chain.Classify(ctx, "price below 80", ai.Hints{})
				require.NoError(t, err)
				require.Equal(t, int32(1), b.claude.calls.Load(), "an open breaker calls no provider")
			},
			want: []string{"claude error", "openai ok", "claude breaker_open", "openai ok"},
		},
		{
			name: "invalid",
			run: func(t *testing.T, b *testBundle) {
				b.claude.script(step{err: domain.Errorf(domain.EINVALID, "The price is not on the page.")})
				_, _, err := b.chain.Extract(ctx, spec, doc)
				require.ErrorIs(t, err, domain.ErrInvalid)
			},
			want: []string{"claude invalid"},
		},
		{
			name: "timeout",
			cfg:  func(cfg *Config) { cfg.CallTimeout = 50 * time.Millisecond },
			run: func(t *testing.T, b *testBundle) {
				b.claude.script(step{block: true})
				evaluate(t, b)
			},
			want: []string{"claude timeout", "openai ok"},
		},
		{
			name: "canceled",
			run: func(t *testing.T, b *testBundle) {
				b.claude.script(step{block: true})
				ctx, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
				defer cancel()
				_, _, err := b.chain.Evaluate(ctx, spec, nil, doc)
				require.ErrorIs(t, err, context.DeadlineExceeded)
			},
			want: []string{"claude canceled"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig()
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			rec := &recorder{}
			cfg.Observer = rec
			b := setup(t, cfg)

			tt.run(t, b)

			// The flight that ran the provider may still be recording when a canceled
			// caller returns.
			require.Eventually(t, func() bool { return len(rec.all()) == len(tt.want) }, time.Second, time.Millisecond)
			require.Equal(t, tt.want, outcomes(rec.all()))
			require.Equal(t, tt.want, loggedOutcomes(t, b.logs.String()), "logs and metrics agree")
		})
	}
}

func TestObserverCallFields(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	cfg := testConfig()
	cfg.Observer = rec
	b := setup(t, cfg)
	b.claude.script(step{err: retryable(0)}, step{})
	ctx := context.Background()

	_, _, err := b.chain.Classify(ctx, "price below 80", ai.Hints{})
	require.NoError(t, err)
	_, _, err = b.chain.Classify(ctx, "price below 80", ai.Hints{})
	require.NoError(t, err)

	calls := rec.all()
	require.Len(t, calls, 3)
	for i, c := range calls[:2] {
		require.Positive(t, c.Latency, "attempt %d", i)
		calls[i].Latency = 0
	}
	attempt := Call{Provider: "claude", Model: "claude-model", Operation: "classify",
		InputTokens: 100, OutputTokens: 20, Cost: 0.01}
	failed, answered := attempt, attempt
	failed.Outcome, answered.Outcome = OutcomeRetryableError, OutcomeOK
	require.Equal(t, []Call{
		failed,
		answered,
		{Provider: "claude", Model: "claude-model", Operation: "classify", Outcome: OutcomeCached},
	}, calls, "a failed attempt reports what it was billed; a cache hit costs nothing")
}

func TestObserverCoalescedCallsOnce(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	cfg := testConfig()
	cfg.Observer = rec
	b := setup(t, cfg)
	b.claude.gate = make(chan struct{})

	const n = 5
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			_, _, err := b.chain.Evaluate(context.Background(), spec, nil, doc)
			assertNoError(t, err)
		})
	}
	require.Eventually(t, func() bool { return b.chain.flights.waiting() == n }, time.Second, time.Millisecond)
	close(b.claude.gate)
	wg.Wait()

	require.Equal(t, []string{"claude ok"}, outcomes(rec.all()), "callers sharing one provider call are one call")
}

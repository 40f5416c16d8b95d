package chain

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/failsafe-go/failsafe-go/timeout"
	"github.com/rs/zerolog"

	"github.com/vigilhq/vigil/domain/ai"
	"github.com/vigilhq/vigil/domain/monitor"
)

// Defaults applied by New to zero Config fields.
const (
	ClassifyTimeoutDefault = 20 * time.Second
	CallTimeoutDefault     = 30 * time.Second
	MaxRetriesDefault      = 2
	BackoffBaseDefault     = 500 * time.Millisecond
	BackoffMaxDefault      = 10 * time.Second
	BreakerFailuresDefault = 5
	BreakerWindowDefault   = 10
	BreakerDelayDefault    = 30 * time.Second
	CacheSizeDefault       = 10_000
)

// spendTTL is how long a user's monthly spend is trusted before it is read again.
const spendTTL = time.Minute

// Named is one provider of the chain.
type Named struct {
	// Name identifies the provider in logs, metrics and cache keys: "claude", "openai", "fallback".
	Name string
	// Label names the provider in messages to users: "Claude", "OpenAI", "Rules". Defaults to Name.
	Label string
	// Provider answers the calls.
	Provider ai.Provider
}

// SpendStore reports what users spent on AI.
type SpendStore interface {
	// MonthlySpend returns the USD userID spent in the calendar month (UTC) that starts at month.
	MonthlySpend(ctx context.Context, userID string, month time.Time) (float64, error)
}

// Config tunes the chain. Zero fields get the ...Default values.
type Config struct {
	// ClassifyTimeout bounds the time spent on one provider for one Classify call, retries
	// and backoff included.
	ClassifyTimeout time.Duration
	// CallTimeout does the same for Extract and Evaluate.
	CallTimeout time.Duration
	// MaxRetries is the number of retries per provider and call after a retryable failure;
	// negative disables retries.
	MaxRetries int
	// BackoffBase and BackoffMax bound the exponential backoff between retries. A provider's
	// Retry-After is waited for when it is longer, up to BackoffMax.
	BackoffBase, BackoffMax time.Duration
	// BreakerFailures failed attempts among the last BreakerWindow open a provider's circuit
	// breaker; it lets a probe through after BreakerDelay and closes when the probe succeeds.
	BreakerFailures int
	BreakerWindow   int
	BreakerDelay    time.Duration
	// CacheSize is the number of answers each cache (classify, extract, evaluate) keeps.
	CacheSize int
	// MonthlyBudget is what a user may spend on AI per calendar month, in USD; 0 is unlimited.
	MonthlyBudget float64
	// Spend reports users' spending; required when MonthlyBudget is set.
	Spend SpendStore
	// Logger receives one line per provider call.
	Logger zerolog.Logger
	// Observer is told about the same calls as the Logger, for metrics; nil for none.
	Observer Observer
	// Now is the wall clock, used for calendar months and the spend cache. Defaults to time.Now.
	Now func() time.Time
	// Exact extracts the facts whose selector the user gave (the rules provider), so a
	// user's selector is read exactly where it says, with no model call; nil leaves them to
	// the chain like the others.
	Exact ai.Provider
}

// Observer is told about every provider attempt the chain makes (including cache hits).
type Observer interface {
	// ObserveAICall records one call. It runs on the caller's goroutine and must be quick.
	ObserveAICall(c Call)
}

// Outcomes of a Call. The same words appear as "outcome" in the chain's logs.
const (
	// OutcomeOK is an attempt that answered.
	OutcomeOK = "ok"
	// OutcomeCached is an answer served from the cache: no provider was called.
	OutcomeCached = "cached"
	// OutcomeRetryableError is a failed attempt the provider said may be retried (overloaded,
	// rate limited, a server error), whether or not the chain retried it.
	OutcomeRetryableError = "retryable_error"
	// OutcomeError is any other failed attempt.
	OutcomeError = "error"
	// OutcomeInvalid is a provider saying the input cannot be handled (EINVALID).
	OutcomeInvalid = "invalid"
	// OutcomeBreakerOpen is an attempt the provider's open circuit breaker refused: no
	// provider was called.
	OutcomeBreakerOpen = "breaker_open"
	// OutcomeTimeout is an attempt cut short by the chain's per-provider timeout.
	OutcomeTimeout = "timeout"
	// OutcomeCanceled is an attempt abandoned because its caller gave up, which says
	// nothing about the provider.
	OutcomeCanceled = "canceled"
)

// Call is one provider attempt, cache hit or breaker refusal, as logged. It holds no prompt,
// document or key.
type Call struct {
	// Provider is the Named.Name of the provider; Model the model it used or last used.
	Provider, Model string
	// Operation is "classify", "extract" or "evaluate".
	Operation string
	// Outcome is one of the Outcome... constants.
	Outcome string
	// Latency is how long the provider took; zero when it was not called.
	Latency time.Duration
	// InputTokens, OutputTokens and Cost (USD) are what the provider reported for this
	// attempt, failed attempts included; zero when it was not called.
	InputTokens, OutputTokens int
	Cost                      float64
}

// Chain is an ai.Provider that asks several providers in order. See the package comment.
type Chain struct {
	members  []*member
	cfg      Config
	log      zerolog.Logger
	observer Observer
	now      func() time.Time
	timeouts [opCount]timeout.Timeout[any]
	limits   [opCount]time.Duration

	classified *lru[monitor.Spec]
	extracted  *lru[[]monitor.Fact]
	evaluated  *lru[monitor.Verdict]
	suggested  *lru[string]
	flights    *group
	spend      *spendCache
}

var _ ai.Provider = (*Chain)(nil)

// New returns a chain asking providers in the given order. The last provider is the one users
// fall back to when their budget is spent: the rule-based provider.
func New(providers []Named, cfg Config) (*Chain, error) {
	if err := validate(providers, cfg); err != nil {
		return nil, fmt.Errorf("ai provider chain: %w", err)
	}
	cfg.ClassifyTimeout = cmp.Or(cfg.ClassifyTimeout, ClassifyTimeoutDefault)
	cfg.CallTimeout = cmp.Or(cfg.CallTimeout, CallTimeoutDefault)
	switch {
	case cfg.MaxRetries == 0:
		cfg.MaxRetries = MaxRetriesDefault
	case cfg.MaxRetries < 0:
		cfg.MaxRetries = 0
	}
	cfg.BackoffBase = cmp.Or(cfg.BackoffBase, BackoffBaseDefault)
	cfg.BackoffMax = cmp.Or(cfg.BackoffMax, BackoffMaxDefault)
	cfg.BreakerFailures = cmp.Or(cfg.BreakerFailures, BreakerFailuresDefault)
	cfg.BreakerWindow = cmp.Or(cfg.BreakerWindow, max(BreakerWindowDefault, cfg.BreakerFailures))
	cfg.BreakerDelay = cmp.Or(cfg.BreakerDelay, BreakerDelayDefault)
	cfg.CacheSize = cmp.Or(cfg.CacheSize, CacheSizeDefault)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}

	c := &Chain{
		cfg:        cfg,
		log:        cfg.Logger,
		observer:   cfg.Observer,
		now:        cfg.Now,
		classified: newLRU[monitor.Spec](cfg.CacheSize),
		extracted:  newLRU[[]monitor.Fact](cfg.CacheSize),
		evaluated:  newLRU[monitor.Verdict](cfg.CacheSize),
		suggested:  newLRU[string](cfg.CacheSize),
		flights:    newGroup(),
		spend:      newSpendCache(cfg.Spend, cfg.CacheSize),
	}
	c.limits = [opCount]time.Duration{opClassify: cfg.ClassifyTimeout, opExtract: cfg.CallTimeout, opEvaluate: cfg.CallTimeout, opSuggest: cfg.CallTimeout}
	for o, d := range c.limits {
		c.timeouts[o] = timeout.New[any](d)
	}
	for _, p := range providers {
		p.Label = cmp.Or(p.Label, p.Name)
		c.members = append(c.members, &member{Named: p, breaker: c.newBreaker(p.Name)})
	}
	return c, nil
}

func validate(providers []Named, cfg Config) error {
	var problems []error
	if len(providers) == 0 {
		problems = append(problems, errors.New("at least one provider is required"))
	}
	seen := make(map[string]bool, len(providers))
	for i, p := range providers {
		if p.Name == "" {
			problems = append(problems, fmt.Errorf("provider %d has no name", i))
		}
		if p.Provider == nil {
			problems = append(problems, fmt.Errorf("provider %q has no implementation", p.Name))
		}
		if seen[p.Name] {
			problems = append(problems, fmt.Errorf("provider %q is listed twice", p.Name))
		}
		seen[p.Name] = true
	}
	for _, d := range []struct {
		name  string
		value time.Duration
	}{
		{"ClassifyTimeout", cfg.ClassifyTimeout}, {"CallTimeout", cfg.CallTimeout}, {"BackoffBase", cfg.BackoffBase},
		{"BackoffMax", cfg.BackoffMax}, {"BreakerDelay", cfg.BreakerDelay},
	} {
		if d.value < 0 {
			problems = append(problems, fmt.Errorf("%s must not be negative, got %s", d.name, d.value))
		}
	}
	if cfg.BreakerFailures < 0 || cfg.BreakerWindow < 0 || cfg.CacheSize < 0 {
		problems = append(problems, errors.New("BreakerFailures, BreakerWindow and CacheSize must not be negative"))
	}
	if cfg.BreakerWindow > 0 && cfg.BreakerFailures > cfg.BreakerWindow {
		problems = append(problems, fmt.Errorf("BreakerFailures (%d) must not exceed BreakerWindow (%d)", cfg.BreakerFailures, cfg.BreakerWindow))
	}
	if cfg.BackoffMax > 0 && cfg.BackoffBase > cfg.BackoffMax {
		problems = append(problems, fmt.Errorf("BackoffBase (%s) must not exceed BackoffMax (%s)", cfg.BackoffBase, cfg.BackoffMax))
	}
	if cfg.MonthlyBudget < 0 {
		problems = append(problems, fmt.Errorf("MonthlyBudget must not be negative, got %v", cfg.MonthlyBudget))
	}
	if cfg.MonthlyBudget > 0 && cfg.Spend == nil {
		problems = append(problems, errors.New("a SpendStore is required with a MonthlyBudget"))
	}
	return errors.Join(problems...)
}

// newBreaker returns the circuit breaker of one provider. It counts attempts: every failure
// except an EINVALID answer, which is the input's fault, not the provider's.
func (c *Chain) newBreaker(name string) circuitbreaker.CircuitBreaker[any] {
	return circuitbreaker.NewBuilder[any]().
		HandleIf(func(_ any, err error) bool { return err != nil && !isInvalid(err) }).
		WithFailureThresholdRatio(uint(c.cfg.BreakerFailures), uint(c.cfg.BreakerWindow)).
		WithSuccessThreshold(1).
		WithDelay(c.cfg.BreakerDelay).
		OnStateChanged(func(e circuitbreaker.StateChangedEvent) {
			c.log.Warn().Str("provider", name).Str("from", e.OldState.String()).Str("to", e.NewState.String()).
				Msg("ai provider circuit breaker changed state")
		}).
		Build()
}

// Providers returns the names of the chain's providers, in the order it asks them.
func (c *Chain) Providers() []string {
	names := make([]string, len(c.members))
	for i, m := range c.members {
		names[i] = m.Name
	}
	return names
}

// BreakerState returns the state of the named provider's circuit breaker: "closed", "open" or
// "half-open"; "" for an unknown provider. An open breaker whose delay has passed reports
// "half-open": the next call probes the provider.
func (c *Chain) BreakerState(name string) string {
	for _, m := range c.members {
		if m.Name != name {
			continue
		}
		state := m.breaker.State()
		if state == circuitbreaker.OpenState && m.breaker.RemainingDelay() == 0 {
			return circuitbreaker.HalfOpenState.String()
		}
		return state.String()
	}
	return ""
}

// Classify implements ai.Provider. Errors: EINVALID when the prompt cannot be monitored,
// EUNAVAILABLE when no provider could answer, the context's error when ctx ends first.
func (c *Chain) Classify(ctx context.Context, prompt string, hints ai.Hints) (monitor.Spec, ai.Usage, error) {
	return run(ctx, c, operation[monitor.Spec]{
		op:      opClassify,
		content: digest(prompt, "\x00", hints.SourceURL),
		excerpt: excerpt(prompt),
		cache:   c.classified,
		clone:   cloneSpec,
		note: func(s *monitor.Spec, notes []string) {
			s.Warnings = append(s.Warnings, notes...)
		},
		call: func(ctx context.Context, p ai.Provider) (monitor.Spec, ai.Usage, error) {
			return p.Classify(ctx, prompt, hints)
		},
	})
}

// Extract implements ai.Provider. Errors: EINVALID when the source does not hold the facts,
// EUNAVAILABLE when no provider could answer, the context's error when ctx ends first.
// With Config.Exact, the facts whose selector the user gave or a repair verified are read by
// it, and only the others go to the providers.
func (c *Chain) Extract(ctx context.Context, spec monitor.Spec, doc ai.Document) ([]monitor.Fact, ai.Usage, error) {
	if c.cfg.Exact == nil {
		return c.extract(ctx, spec, doc)
	}
	exact, rest := spec, spec
	exact.Facts, rest.Facts = nil, nil
	for _, f := range spec.Facts {
		if f.Exact() {
			exact.Facts = append(exact.Facts, f)
		} else {
			rest.Facts = append(rest.Facts, f)
		}
	}
	if len(exact.Facts) == 0 {
		return c.extract(ctx, spec, doc)
	}
	byName, u, err := c.cfg.Exact.Extract(ctx, exact, doc)
	if err != nil {
		return nil, u, err
	}
	if len(rest.Facts) > 0 {
		more, mu, err := c.extract(ctx, rest, doc)
		if err != nil {
			return nil, mu, err
		}
		byName, u = append(byName, more...), mu
	}
	// In the spec's order, as a single provider would answer.
	facts := make([]monitor.Fact, 0, len(byName))
	for _, fs := range spec.Facts {
		for _, f := range byName {
			if f.Key == fs.Name {
				facts = append(facts, f)
				break
			}
		}
	}
	return facts, u, nil
}

func (c *Chain) extract(ctx context.Context, spec monitor.Spec, doc ai.Document) ([]monitor.Fact, ai.Usage, error) {
	content := ""
	if s, err := canonical(spec); err == nil {
		content = digest(s, "\x00", documentHash(doc), "\x00", doc.Format)
	}
	observed := doc.FetchedAt
	return run(ctx, c, operation[[]monitor.Fact]{
		op:      opExtract,
		content: content,
		cache:   c.extracted,
		clone:   cloneFacts,
		reuse: func(facts []monitor.Fact) []monitor.Fact {
			// The same content was observed again, now.
			at := observed
			if at.IsZero() {
				at = c.now()
			}
			for i := range facts {
				facts[i].ObservedAt = at
			}
			return facts
		},
		call: func(ctx context.Context, p ai.Provider) ([]monitor.Fact, ai.Usage, error) {
			return p.Extract(ctx, spec, doc)
		},
	})
}

// Evaluate implements ai.Provider. Errors: EINVALID when the condition cannot be judged,
// EUNAVAILABLE when no provider could answer, the context's error when ctx ends first.
func (c *Chain) Evaluate(ctx context.Context, spec monitor.Spec, facts []monitor.Fact, doc ai.Document) (monitor.Verdict, ai.Usage, error) {
	content := ""
	s, err1 := canonical(spec)
	f, err2 := canonical(factValues(facts))
	if err1 == nil && err2 == nil {
		content = digest(s, "\x00", f, "\x00", documentHash(doc))
	}
	return run(ctx, c, operation[monitor.Verdict]{
		op:      opEvaluate,
		content: content,
		cache:   c.evaluated,
		clone:   func(v monitor.Verdict) monitor.Verdict { return v },
		call: func(ctx context.Context, p ai.Provider) (monitor.Verdict, ai.Usage, error) {
			return p.Evaluate(ctx, spec, facts, doc)
		},
	})
}

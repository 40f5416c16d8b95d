package chain

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/failsafe-go/failsafe-go/retrypolicy"
	"github.com/failsafe-go/failsafe-go/timeout"
	"github.com/rs/zerolog"

	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/ai"
)

// op is one of the three calls of ai.Provider.
type op int

const (
	opClassify op = iota
	opExtract
	opEvaluate
	opSuggest
	opCount
)

func (o op) String() string {
	return [...]string{"classify", "extract", "evaluate", "suggest"}[o]
}

// done is the past participle used in notes to users: "classified with rules".
func (o op) done() string {
	switch o {
	case opClassify:
		return "classified"
	case opSuggest:
		return "asked"
	}
	return "evaluated"
}

// member is a provider with its circuit breaker and the model it last answered with, per
// operation, which is part of its cache keys.
type member struct {
	Named
	breaker circuitbreaker.CircuitBreaker[any]
	models  [opCount]atomic.Pointer[string]
}

func (m *member) model(o op) string {
	if p := m.models[o].Load(); p != nil {
		return *p
	}
	return ""
}

func (m *member) setModel(o op, model string) {
	if m.model(o) != model {
		m.models[o].Store(&model)
	}
}

// inSentence is how the provider is named inside a sentence: "evaluated with rules".
func (m *member) inSentence() string {
	if m.Name == "fallback" {
		return strings.ToLower(m.Label)
	}
	return m.Label
}

// operation describes one call to the chain.
type operation[T any] struct {
	op op
	// content identifies the question regardless of the provider; "" disables caching and
	// coalescing.
	content string
	excerpt string // logged: the start of the prompt, for Classify
	cache   *lru[T]
	clone   func(T) T
	// reuse adapts a cached answer to this call; optional.
	reuse func(T) T
	// note adds user-facing notes to the answer itself; optional.
	note func(*T, []string)
	// can reports a provider able to answer; nil means every provider can.
	can  func(ai.Provider) bool
	call func(context.Context, ai.Provider) (T, ai.Usage, error)
}

// answer is what a coalesced call shares.
type answer[T any] struct {
	val   T
	usage ai.Usage
}

// run coalesces identical calls in flight and runs the chain once for them. One caller gets
// the answer with its cost; the others get it as a cached answer: they did not pay for it.
func run[T any](ctx context.Context, c *Chain, o operation[T]) (T, ai.Usage, error) {
	var zero T
	if err := ctx.Err(); err != nil {
		return zero, ai.Usage{}, fmt.Errorf("ai %s: %w", o.op, err)
	}
	spent, until := c.budgetSpent(ctx)
	if o.content == "" {
		a, err := runChain(ctx, c, o, spent, until)
		return a.val, a.usage, err
	}
	key := fmt.Sprintf("%s\x00%t\x00%s", o.op, spent, o.content)
	v, first, err := c.flights.do(ctx, key, func(ctx context.Context) (any, error) {
		return runChain(ctx, c, o, spent, until)
	})
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("ai %s: %w", o.op, ctx.Err())
		}
		return zero, ai.Usage{}, err
	}
	// Every caller gets its own copy: they may change their answer while others read theirs.
	a := v.(answer[T])
	u := cachedUsage(a.usage)
	if first {
		u = a.usage
		u.Notes = append([]string(nil), a.usage.Notes...)
	}
	return o.clone(a.val), u, nil
}

// runChain asks the providers in order.
func runChain[T any](ctx context.Context, c *Chain, o operation[T], spent bool, until time.Time) (answer[T], error) {
	var (
		failed  *member // the first provider that could not answer
		lastErr error
		reasons []string
		paid    float64 // cost of failed attempts, which providers may still bill
	)
	for i, m := range c.members {
		if err := ctx.Err(); err != nil {
			return answer[T]{}, fmt.Errorf("ai %s: %w", o.op, err)
		}
		last := i == len(c.members)-1
		if o.can != nil && !o.can(m.Provider) {
			continue
		}
		if o.content != "" {
			if v, u, ok := o.cache.get(cacheKey(m.Name, m.model(o.op), o.content)); ok {
				c.record(ctx, m, o.op, o.excerpt, 0, 0, ai.Usage{Model: u.Model}, OutcomeCached, false, nil)
				v = o.clone(v)
				if o.reuse != nil {
					v = o.reuse(v)
				}
				u = cachedUsage(u)
				u.Cost = paid
				return finish(o, v, u, failed, m, spent && last, until), nil
			}
		}
		if spent && !last {
			continue
		}
		v, u, err := attempts(ctx, c, m, o)
		paid += u.Cost
		if err == nil {
			m.setModel(o.op, u.Model)
			if o.content != "" {
				stored := u
				stored.Notes = append([]string(nil), u.Notes...)
				o.cache.put(cacheKey(m.Name, u.Model, o.content), o.clone(v), stored)
			}
			u.Cost = paid
			return finish(o, v, u, failed, m, spent && last, until), nil
		}
		if ctx.Err() != nil {
			return answer[T]{}, fmt.Errorf("ai %s: %w", o.op, ctx.Err())
		}
		if isInvalid(err) {
			return answer[T]{}, c.invalid(o.op, err, failed, m, spent && last, until)
		}
		if failed == nil {
			failed = m
		}
		lastErr = err
		reasons = append(reasons, reason(m, err))
	}
	if len(reasons) == 0 {
		// None was asked: none can answer this, or the budget leaves only those that cannot.
		msg := "No AI provider can answer this."
		if spent {
			msg = fmt.Sprintf("Your monthly AI budget is spent until %s.", until.Format("2 January 2006"))
		}
		return answer[T]{}, &domain.Error{Code: domain.EUNAVAILABLE, Message: msg}
	}
	return answer[T]{}, &domain.Error{
		Code:    domain.EUNAVAILABLE,
		Message: "No AI provider could answer: " + strings.Join(reasons, "; ") + ".",
		Err:     lastErr,
	}
}

// finish adds the notes that tell the user how the answer was produced.
func finish[T any](o operation[T], v T, u ai.Usage, failed, answered *member, budget bool, until time.Time) answer[T] {
	if ns := notes(o.op, failed, answered, budget, until); len(ns) > 0 {
		u.Notes = append(u.Notes, ns...)
		if o.note != nil {
			o.note(&v, ns)
		}
	}
	return answer[T]{val: v, usage: u}
}

// notes are the user-facing remarks on an answer given by answered after failed could not
// answer, or because the user's budget is spent.
func notes(o op, failed, answered *member, budget bool, until time.Time) []string {
	var ns []string
	if budget {
		ns = append(ns, fmt.Sprintf("Your monthly AI budget is spent; %s with %s until %s.",
			o.done(), answered.inSentence(), until.Format("2 January 2006")))
	}
	if failed != nil && failed != answered {
		ns = append(ns, fmt.Sprintf("%s is unavailable; %s with %s instead.", failed.Label, o.done(), answered.inSentence()))
	}
	return ns
}

// invalid returns the EINVALID error of answered, prefixed with the notes that explain why
// that provider was asked, so users know a better provider might have understood.
func (c *Chain) invalid(o op, err error, failed, answered *member, budget bool, until time.Time) error {
	ns := notes(o, failed, answered, budget, until)
	var de *domain.Error
	if len(ns) == 0 || !errors.As(err, &de) {
		return err
	}
	return &domain.Error{
		Code:    domain.EINVALID,
		Message: strings.Join(ns, " ") + " " + de.Message,
		Fields:  de.Fields,
		Err:     err,
	}
}

// reason says in a few words why a provider did not answer; it is shown to users.
func reason(m *member, err error) string {
	switch {
	case errors.Is(err, circuitbreaker.ErrOpen):
		return m.Label + " is paused after repeated failures"
	case errors.Is(err, timeout.ErrExceeded):
		return m.Label + " timed out"
	}
	msg := ""
	var de *domain.Error
	if ae, ok := ai.AsError(err); ok {
		msg = ae.Message
	} else if errors.As(err, &de) {
		msg = de.Message
	}
	msg = strings.TrimRight(strings.TrimSpace(msg), ".")
	switch {
	case msg == "":
		return m.Label + " failed"
	case strings.HasPrefix(msg, m.Label):
		return msg
	}
	return m.Label + ": " + msg
}

// isInvalid reports whether err says the input cannot be handled, which no other provider
// would change.
func isInvalid(err error) bool {
	var de *domain.Error
	return errors.As(err, &de) && de.Code == domain.EINVALID
}

// retryIn is a failed attempt that the retry policy should repeat.
type retryIn struct {
	err error
}

func (r *retryIn) Error() string { return r.err.Error() }
func (r *retryIn) Unwrap() error { return r.err }

// attempts asks one provider, retrying as the policies allow. The returned usage adds up the
// cost of every attempt, successful or not.
func attempts[T any](ctx context.Context, c *Chain, m *member, o operation[T]) (T, ai.Usage, error) {
	var (
		val  T
		got  ai.Usage
		paid float64
	)
	deadline := time.Now().Add(c.limits[o.op])
	// The attempt decides how long to wait before the next one (backoff, Retry-After, time
	// left); the policy reads it back. Both run on this goroutine. The policy is built per call
	// because reading exec.LastError() in a DelayFunc races with a firing timeout in
	// failsafe-go v0.9.8.
	var wait time.Duration
	retry := retrypolicy.NewBuilder[any]().
		HandleIf(func(_ any, err error) bool {
			var r *retryIn
			return errors.As(err, &r)
		}).
		WithMaxRetries(c.cfg.MaxRetries).
		WithDelayFunc(func(failsafe.ExecutionAttempt[any]) time.Duration { return wait }).
		ReturnLastFailure().
		Build()
	err := failsafe.With[any](c.timeouts[o.op], retry, m.breaker).WithContext(ctx).
		RunWithExecution(func(exec failsafe.Execution[any]) error {
			actx := exec.Context()
			start := time.Now()
			v, u, err := guarded(actx, m, o.call)
			latency := time.Since(start)
			paid += u.Cost
			if u.Model == "" {
				u.Model = m.model(o.op)
			}
			if err == nil {
				val, got = v, u
				c.record(ctx, m, o.op, o.excerpt, exec.Attempts(), latency, u, OutcomeOK, false, nil)
				return nil
			}
			outcome := outcomeOf(ctx, actx, err)
			if outcome == OutcomeRetryableError && exec.Attempts() <= c.cfg.MaxRetries {
				ae, _ := ai.AsError(err)
				wait = c.backoff(exec.Attempts(), ae.RetryAfter)
				// Waiting longer than the time left on this provider only delays the next one.
				if left := time.Until(deadline); ae.RetryAfter < left && wait < left {
					c.record(ctx, m, o.op, o.excerpt, exec.Attempts(), latency, u, outcome, true, err)
					return &retryIn{err: err}
				}
			}
			c.record(ctx, m, o.op, o.excerpt, exec.Attempts(), latency, u, outcome, false, err)
			return err
		})
	if r, ok := err.(*retryIn); ok {
		err = r.err
	}
	if errors.Is(err, circuitbreaker.ErrOpen) {
		// The breaker refused the attempt (the first, or a retry after a failure opened it).
		c.record(ctx, m, o.op, o.excerpt, 0, 0, ai.Usage{Model: m.model(o.op)}, OutcomeBreakerOpen, false, nil)
	}
	got.Cost = paid
	if err != nil {
		var zero T
		return zero, ai.Usage{Provider: m.Name, Cost: paid}, err
	}
	return val, got, nil
}

// guarded calls the provider so that neither a provider that ignores its context nor one that
// panics can hold up or crash the chain: the call is abandoned when ctx ends.
func guarded[T any](ctx context.Context, m *member, call func(context.Context, ai.Provider) (T, ai.Usage, error)) (T, ai.Usage, error) {
	type result struct {
		val   T
		usage ai.Usage
		err   error
	}
	done := make(chan result, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- result{err: &ai.Error{Provider: m.Name, Message: "failed unexpectedly", Err: fmt.Errorf("panic: %v", r)}}
			}
		}()
		v, u, err := call(ctx, m.Provider)
		done <- result{v, u, err}
	}()
	select {
	case r := <-done:
		return r.val, r.usage, r.err
	case <-ctx.Done():
		var zero T
		return zero, ai.Usage{}, ctx.Err()
	}
}

// backoff returns the wait before retry number attempt: exponential from BackoffBase with
// ±25% jitter, at least the provider's Retry-After, at most BackoffMax.
func (c *Chain) backoff(attempt int, retryAfter time.Duration) time.Duration {
	d := c.cfg.BackoffBase
	for i := 1; i < attempt && d < c.cfg.BackoffMax; i++ {
		d *= 2
	}
	d = time.Duration(float64(d) * (0.75 + rand.Float64()/2)) // #nosec G404 -- jitter spreads retries; nothing secret depends on it
	d = max(d, retryAfter)
	return min(d, c.cfg.BackoffMax)
}

// outcomeOf names a failed attempt in logs and metrics. Only an attempt named
// OutcomeRetryableError is retried.
func outcomeOf(ctx, attemptCtx context.Context, err error) string {
	switch {
	case ctx.Err() != nil:
		return OutcomeCanceled
	case attemptCtx.Err() != nil:
		return OutcomeTimeout
	case isInvalid(err):
		return OutcomeInvalid
	}
	if ae, ok := ai.AsError(err); ok && ae.Retryable {
		return OutcomeRetryableError
	}
	return OutcomeError
}

// record logs one provider attempt, a cache hit or a breaker refusal and tells the observer,
// so that logs and metrics count the same calls. It never logs the prompt in full, documents
// or keys. Attempts that reached the provider are logged at info level, the others at debug;
// retry says the chain will try the provider again.
func (c *Chain) record(ctx context.Context, m *member, o op, prompt string, attempt int, latency time.Duration, u ai.Usage, outcome string, retry bool, err error) {
	c.logCall(ctx, m, o, prompt, attempt, latency, u, outcome, retry, err)
	if c.observer != nil {
		c.observer.ObserveAICall(Call{
			Provider:     m.Name,
			Model:        u.Model,
			Operation:    o.String(),
			Outcome:      outcome,
			Latency:      latency,
			InputTokens:  u.InputTokens,
			OutputTokens: u.OutputTokens,
			Cost:         u.Cost,
		})
	}
}

// logCall writes record's log line.
func (c *Chain) logCall(ctx context.Context, m *member, o op, prompt string, attempt int, latency time.Duration, u ai.Usage, outcome string, retry bool, err error) {
	level, msg := zerolog.InfoLevel, "ai provider call"
	switch outcome {
	case OutcomeCached:
		level, msg = zerolog.DebugLevel, "ai answer served from cache"
	case OutcomeBreakerOpen:
		level, msg = zerolog.DebugLevel, "ai provider skipped: circuit breaker open"
	}
	ev := c.log.WithLevel(level)
	if ev == nil {
		return
	}
	ev = ev.Str("provider", m.Name).
		Str("model", u.Model).
		Str("operation", o.String()).
		Str("outcome", outcome)
	if attempt > 0 {
		ev = ev.Int("attempt", attempt).
			Int64("latency_ms", latency.Milliseconds()).
			Int("input_tokens", u.InputTokens).
			Int("output_tokens", u.OutputTokens).
			Float64("cost", u.Cost)
	}
	if retry {
		ev = ev.Bool("retry", true)
	}
	if prompt != "" {
		ev = ev.Str("prompt", prompt)
	}
	if user := ai.UserFrom(ctx); user != "" {
		ev = ev.Str("user_id", user)
	}
	if ae, ok := ai.AsError(err); ok && ae.StatusCode != 0 {
		ev = ev.Int("status", ae.StatusCode)
	}
	if err != nil {
		ev = ev.Str("error", truncate(err.Error(), 200))
	}
	ev.Msg(msg)
}

// excerpt is the part of a prompt that may be logged.
func excerpt(prompt string) string { return truncate(prompt, 60) }

// truncate returns at most the first n runes of s.
func truncate(s string, n int) string {
	for i := range s {
		if n == 0 {
			return s[:i]
		}
		n--
	}
	return s
}

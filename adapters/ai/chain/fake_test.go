package chain

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigilhq/vigil/domain/ai"
	"github.com/vigilhq/vigil/domain/monitor"
)

// step is one scripted provider answer. The zero step answers successfully.
type step struct {
	err   error
	block bool          // wait until the context ends
	delay time.Duration // answer after this long
	panic bool
}

// fake is a scripted ai.Provider: each call takes the next step, and the last step repeats.
type fake struct {
	name string

	mu    sync.Mutex
	steps []step
	times []time.Time
	gate  chan struct{} // when set, calls wait for it to close

	calls atomic.Int32
}

var _ ai.Provider = (*fake)(nil)

func newFake(name string, steps ...step) *fake {
	return &fake{name: name, steps: steps}
}

// script replaces the remaining steps.
func (f *fake) script(steps ...step) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.steps = steps
}

func (f *fake) callTimes() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.times...)
}

func (f *fake) next(ctx context.Context) (ai.Usage, error) {
	f.calls.Add(1)
	f.mu.Lock()
	f.times = append(f.times, time.Now())
	s := step{}
	if len(f.steps) > 0 {
		s = f.steps[0]
		if len(f.steps) > 1 {
			f.steps = f.steps[1:]
		}
	}
	gate := f.gate
	f.mu.Unlock()

	u := ai.Usage{Provider: f.name, Model: f.name + "-model", InputTokens: 100, OutputTokens: 20, Cost: 0.01, Latency: time.Millisecond}
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return u, ctx.Err()
		}
	}
	switch {
	case s.panic:
		panic("scripted panic")
	case s.block:
		<-ctx.Done()
		return u, ctx.Err()
	case s.delay > 0:
		select {
		case <-time.After(s.delay):
		case <-ctx.Done():
			return u, ctx.Err()
		}
	}
	return u, s.err
}

func (f *fake) Classify(ctx context.Context, prompt string, _ ai.Hints) (monitor.Spec, ai.Usage, error) {
	u, err := f.next(ctx)
	if err != nil {
		return monitor.Spec{}, u, err
	}
	return monitor.Spec{
		Kind:       monitor.KindCurrentState,
		Summary:    f.name + ": " + prompt,
		Facts:      []monitor.FactSpec{{Name: "price", Type: monitor.FactNumber}},
		Condition:  "price < 80",
		Confidence: 0.9,
	}, u, nil
}

func (f *fake) Extract(ctx context.Context, _ monitor.Spec, doc ai.Document) ([]monitor.Fact, ai.Usage, error) {
	u, err := f.next(ctx)
	if err != nil {
		return nil, u, err
	}
	fact := monitor.NumberFact("price", 75, "USD", doc.FetchedAt)
	fact.Evidence = f.name
	return []monitor.Fact{fact}, u, nil
}

func (f *fake) Evaluate(ctx context.Context, _ monitor.Spec, _ []monitor.Fact, _ ai.Document) (monitor.Verdict, ai.Usage, error) {
	u, err := f.next(ctx)
	if err != nil {
		return monitor.Verdict{}, u, err
	}
	return monitor.Verdict{State: monitor.StateActive, Confidence: 0.9, Explanation: "by " + f.name}, u, nil
}

// spendStore is a SpendStore with fixed amounts per user.
type spendStore struct {
	mu     sync.Mutex
	spent  map[string]float64
	months []time.Time
}

func (s *spendStore) MonthlySpend(_ context.Context, userID string, month time.Time) (float64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.months = append(s.months, month)
	return s.spent[userID], nil
}

func (s *spendStore) lookups() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.months)
}

// clock is a settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

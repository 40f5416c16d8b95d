package chain

import (
	"context"
	"sync"
)

// group coalesces identical calls in flight: the first caller starts the work, later callers
// with the same key wait for its result. The work runs on its own context, carrying the first
// caller's values but not its cancellation, so one caller giving up does not fail the others;
// it is canceled when every caller has given up.
type group struct {
	mu      sync.Mutex
	flights map[string]*flight
}

type flight struct {
	done    chan struct{}
	val     any
	err     error
	waiters int
	claimed bool // a caller took the result as its own
	cancel  context.CancelFunc
}

func newGroup() *group {
	return &group{flights: make(map[string]*flight)}
}

// do returns fn's result for key, running fn at most once for calls that overlap. first is
// true for exactly one of the callers that receive the result, the one that accounts for it.
func (g *group) do(ctx context.Context, key string, fn func(context.Context) (any, error)) (val any, first bool, err error) {
	g.mu.Lock()
	f, ok := g.flights[key]
	if !ok {
		fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		f = &flight{done: make(chan struct{}), cancel: cancel}
		g.flights[key] = f
		go func() {
			defer cancel()
			f.val, f.err = fn(fctx)
			g.mu.Lock()
			if g.flights[key] == f {
				delete(g.flights, key)
			}
			g.mu.Unlock()
			close(f.done)
		}()
	}
	f.waiters++
	g.mu.Unlock()

	select {
	case <-f.done:
		g.mu.Lock()
		first = !f.claimed
		f.claimed = true
		g.mu.Unlock()
		return f.val, first, f.err
	case <-ctx.Done():
		g.mu.Lock()
		f.waiters--
		if f.waiters == 0 {
			f.cancel()
			// A later caller must start afresh rather than join canceled work.
			if g.flights[key] == f {
				delete(g.flights, key)
			}
		}
		g.mu.Unlock()
		return nil, false, ctx.Err()
	}
}

// waiting returns the number of callers waiting on work in flight.
func (g *group) waiting() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for _, f := range g.flights {
		n += f.waiters
	}
	return n
}

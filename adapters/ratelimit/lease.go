package ratelimit

import (
	"context"
	"sync"
	"time"
)

// # Leases: most hits of a busy key cost no round trip
//
// Counting every hit of the per-caller API limit in Postgres makes every request write a
// row. Leases keeps the guarantee (at most Limit hits per window of a key, across every
// process) with a fraction of the writes: a process reserves a share of the window's
// limit in one statement (reserveSQL: the count goes up by the share, capped at Limit)
// and admits hits from it in memory until it is used up or the window ends. When half a
// share is left, it reserves the next share in the background, so a key's steady traffic
// never waits for the database: only the first hit of a window does, or a burst that
// outruns a round trip. A share a process does not use before the window ends is lost to
// the key for that window, so a caller spread over P processes may meet its limit up to
// 1.5·P shares early; with a share of a twentieth of the limit and a few API processes,
// that is a few percent. A key whose window is full is denied from memory until the
// window ends: nothing frees a reserved hit but the end of its window.
//
// Use it for high-volume limits whose exact count does not matter to a single hit; keep
// Limiter.Allow for brute-force and failure budgets, which Refund and Peek work with.

// LeaseShare is the fraction of a rule's limit one reservation takes: 1/LeaseShare.
const LeaseShare = 20

// leasesMax bounds the keys a Leases remembers; past it, ended leases are forgotten.
const leasesMax = 100_000

// Leases admits hits from shares of each window's limit reserved in the database.
type Leases struct {
	l   *Limiter
	now func() time.Time // the process's clock, for when a lease ends

	mu     sync.Mutex
	leases map[string]*lease
}

type lease struct {
	left   int       // hits of the shares still to admit here
	count  int       // the window's count in the database after the last reservation
	ends   time.Time // on the process's clock
	window time.Time // the window's end on the database's clock: which window the shares are of
	full   bool      // the window has nothing more to reserve: deny once left is 0
	// reserving is closed when the reservation under way for the key ends: the key's
	// requests that the lease cannot admit wait for it rather than all reserving at once
	// and stranding shares.
	reserving chan struct{}
}

// NewLeases returns Leases reserving through l, timing leases with now (nil: time.Now).
func NewLeases(l *Limiter, now func() time.Time) *Leases {
	if now == nil {
		now = time.Now
	}
	return &Leases{l: l, now: now, leases: map[string]*lease{}}
}

// Allow admits one hit of key under rule from this process's share, reserving a new share
// when it has none left; one reservation of a key at a time. It returns the errors of
// Limiter.Allow.
func (s *Leases) Allow(ctx context.Context, rule Rule, key string) (Decision, error) {
	if err := rule.Validate(); err != nil {
		return Decision{}, err
	}
	k := storeKey(rule, key)
	share := max(1, rule.Limit/LeaseShare)
	for {
		now := s.now()
		s.mu.Lock()
		ls := s.leases[k]
		if ls != nil && now.Before(ls.ends) && (ls.left > 0 || ls.full) {
			d := take(rule, ls, now)
			if ls.left <= share/2 && !ls.full && ls.reserving == nil {
				ls.reserving = make(chan struct{})
				go s.refill(context.WithoutCancel(ctx), rule, k, ls, share)
			}
			s.mu.Unlock()
			return d, nil
		}
		if ls != nil && ls.reserving != nil {
			wait := ls.reserving
			s.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return Decision{}, storeError("wait for a reservation", rule, ctx.Err())
			}
		}
		if len(s.leases) >= leasesMax {
			for old, l := range s.leases {
				if l.reserving == nil && !now.Before(l.ends) {
					delete(s.leases, old)
				}
			}
		}
		next := &lease{reserving: make(chan struct{})}
		s.leases[k] = next
		s.mu.Unlock()

		r, err := s.l.reserve(ctx, rule, k, share)
		s.mu.Lock()
		done := next.reserving
		next.reserving = nil
		if err != nil {
			delete(s.leases, k)
			s.mu.Unlock()
			close(done)
			return Decision{}, err
		}
		next.start(r, now, share)
		d := take(rule, next, now)
		s.mu.Unlock()
		close(done)
		return d, nil
	}
}

// refill reserves the next share of ls's window while ls still admits hits. A failure
// changes nothing: once ls is used up, the key's next hit reserves on the request path and
// meets the error there.
func (s *Leases) refill(ctx context.Context, rule Rule, k string, ls *lease, share int) {
	ctx, cancel := context.WithTimeout(ctx, CheckTimeout)
	defer cancel()
	r, err := s.l.reserve(ctx, rule, k, share)
	s.mu.Lock()
	defer s.mu.Unlock()
	done := ls.reserving
	ls.reserving = nil
	defer close(done)
	switch {
	case err != nil:
	case r.windowEnd.Equal(ls.window):
		ls.left += r.granted
		ls.count = r.count
		ls.full = r.granted < share
	case s.leases[k] == ls:
		// The window ended while the reservation was on its way: the share is the next
		// window's, and what was left of ls is gone with it.
		ls.start(r, s.now(), share)
	}
}

// start makes ls the lease of the reservation r, made at now.
func (ls *lease) start(r reservation, now time.Time, share int) {
	ls.left, ls.count, ls.window, ls.full = r.granted, r.count, r.windowEnd, r.granted < share
	ls.ends = now.Add(r.resetAfter)
}

// take admits a hit from ls, or denies it when the window is full.
func take(rule Rule, ls *lease, now time.Time) Decision {
	resetAfter := ls.ends.Sub(now)
	if ls.left == 0 {
		return decide(rule, rule.Limit+1, false, resetAfter)
	}
	ls.left--
	// What this process may still admit, plus what the database has not handed out.
	d := decide(rule, ls.count, true, resetAfter)
	d.Remaining = max(rule.Limit-ls.count, 0) + ls.left
	return d
}

package main

import (
	"context"
	"sync"
	"time"

	"github.com/vigilhq/vigil/adapters/httpapi"
	"github.com/vigilhq/vigil/adapters/ratelimit"
)

// rateLimitCleanupEvery is how often the API role deletes the rows of long-ended rate
// limit windows. Every API process does it; concurrent cleanups are safe and cheap.
const rateLimitCleanupEvery = 5 * time.Minute

// rateLimits builds the API's request limits on the API's pool, with the rules
// of ratelimit.Defaults (documented there and on httpapi.Limits). The limiter uses the database's clock, so
// every API process agrees on when a window ends.
// With VIGIL_RATE_LIMITS=off (benchmarks, or a deployment limiting at its proxy) there are
// none.
func (m *Main) rateLimits() *httpapi.Limits {
	if !m.cfg.RateLimits {
		return nil
	}
	lim := ratelimit.New(m.pool, nil)
	return &httpapi.Limits{Limiter: lim, Leases: ratelimit.NewLeases(lim, nil), Rules: ratelimit.Defaults()}
}

// cleanRateLimits runs lim.Cleanup every rateLimitCleanupEvery until ctx ends or the
// returned stop is called; stop waits for a cleanup in progress, so the pool can close
// after it.
func (m *Main) cleanRateLimits(ctx context.Context, lim *ratelimit.Limiter) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(rateLimitCleanupEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			runCtx, done := context.WithTimeout(ctx, time.Minute)
			n, err := lim.Cleanup(runCtx)
			done()
			switch {
			case err != nil && ctx.Err() == nil:
				m.log.Warn().Err(err).Msg("clean up rate limits")
			case n > 0:
				m.log.Debug().Int64("deleted", n).Msg("cleaned up rate limits")
			}
		}
	}()
	return func() {
		cancel()
		wg.Wait()
	}
}

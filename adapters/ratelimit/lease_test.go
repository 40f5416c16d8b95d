package ratelimit_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/ratelimit"
)

// TestLeasesReserveAShareAndAdmitFromMemory: the first hit of a key reserves a share of the
// window (the row's count goes up by the share at once), the next hits of the share write
// nothing, and the headers count what this process may still admit.
func TestLeasesReserveAShareAndAdmitFromMemory(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	lim, b := setup(t)
	leases := ratelimit.NewLeases(lim, b.clock.Now)
	rule := ratelimit.Rule{Name: "api", Limit: 100, Window: time.Minute}
	share := rule.Limit / ratelimit.LeaseShare
	count := func() int {
		var n int
		require.NoError(t, b.pool.QueryRow(ctx, `SELECT count FROM rate_limits`).Scan(&n))
		return n
	}
	for i := range share {
		d, err := leases.Allow(ctx, rule, "user-1")
		require.NoError(t, err)
		require.True(t, d.Allowed)
		require.Equal(t, rule.Limit-(i+1), d.Remaining)
		require.Equal(t, share, count(), "one reservation for the whole share")
	}
	_, err := leases.Allow(ctx, rule, "user-1")
	require.NoError(t, err)
	require.Equal(t, 2*share, count(), "the next share")
}

// TestLeasesNeverAdmitMoreThanTheLimit: three processes' Leases hammer one key
// concurrently; together they admit at most the limit, and at least the limit less the
// shares they may strand. Denied keys are then denied from memory until the window ends,
// and a new window admits again.
func TestLeasesNeverAdmitMoreThanTheLimit(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	lim, b := setup(t)
	rule := ratelimit.Rule{Name: "api", Limit: 200, Window: time.Minute}
	procs := []*ratelimit.Leases{ratelimit.NewLeases(lim, b.clock.Now), ratelimit.NewLeases(lim, b.clock.Now), ratelimit.NewLeases(lim, b.clock.Now)}
	var admitted atomic.Int32
	var wg sync.WaitGroup
	for i := range 600 {
		wg.Go(func() {
			d, err := procs[i%len(procs)].Allow(ctx, rule, "user-1")
			if err != nil {
				t.Error(err)
				return
			}
			if d.Allowed {
				admitted.Add(1)
			}
		})
	}
	wg.Wait()
	share := rule.Limit / ratelimit.LeaseShare
	require.LessOrEqual(t, int(admitted.Load()), rule.Limit)
	require.GreaterOrEqual(t, int(admitted.Load()), rule.Limit-len(procs)*share)

	for _, p := range procs {
		d, err := p.Allow(ctx, rule, "user-1")
		require.NoError(t, err)
		require.False(t, d.Allowed)
		require.Positive(t, d.RetryAfter)
		require.LessOrEqual(t, d.RetryAfter, time.Minute)
	}
	b.clock.Advance(time.Minute)
	d, err := procs[0].Allow(ctx, rule, "user-1")
	require.NoError(t, err)
	require.True(t, d.Allowed, "a new window")
	require.Equal(t, rule.Limit-1, d.Remaining)
}

// TestLeasesKeepKeysApart: one caller's full window does not touch another's.
func TestLeasesKeepKeysApart(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	lim, b := setup(t)
	leases := ratelimit.NewLeases(lim, b.clock.Now)
	rule := ratelimit.Rule{Name: "api", Limit: 3, Window: time.Minute}
	for range 3 {
		d, err := leases.Allow(ctx, rule, "ann")
		require.NoError(t, err)
		require.True(t, d.Allowed)
	}
	d, err := leases.Allow(ctx, rule, "ann")
	require.NoError(t, err)
	require.False(t, d.Allowed)
	d, err = leases.Allow(ctx, rule, "bob")
	require.NoError(t, err)
	require.True(t, d.Allowed)
	require.Equal(t, 2, d.Remaining)
}

package ratelimit_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/ratelimit"
)

// TestLeasesReserveAShareAndAdmitFromMemory: the first hit of a key reserves a share of the
// window (the row's count goes up by the share at once), the next hits of the share write
// nothing until half of it is used, and the headers count what this process may still
// admit.
func TestLeasesReserveAShareAndAdmitFromMemory(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	lim, b := setup(t)
	leases := ratelimit.NewLeases(lim, b.clock.Now)
	rule := ratelimit.Rule{Name: "api", Limit: 200, Window: time.Minute}
	share := rule.Limit / ratelimit.LeaseShare
	for i := range share/2 - 1 {
		d, err := leases.Allow(ctx, rule, "user-1")
		require.NoError(t, err)
		require.True(t, d.Allowed)
		require.Equal(t, rule.Limit-(i+1), d.Remaining)
		require.Equal(t, share, storedCount(ctx, t, b), "one reservation for the whole share")
	}
}

// TestLeasesReserveTheNextShareAhead: once half a share is used, the next share is
// reserved in the background while the rest of the first is admitted, so a key's steady
// traffic never waits for the database. While the key's row is locked (the reservation
// cannot finish), the whole first share is still admitted; a hit past it waits for that
// one reservation rather than starting another; when the lock goes, the next share is
// reserved without any further hit.
func TestLeasesReserveTheNextShareAhead(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	lim, b := setup(t)
	leases := ratelimit.NewLeases(lim, b.clock.Now)
	rule := ratelimit.Rule{Name: "api", Limit: 200, Window: time.Minute}
	share := rule.Limit / ratelimit.LeaseShare

	d, err := leases.Allow(ctx, rule, "user-1")
	require.NoError(t, err)
	require.True(t, d.Allowed)
	tx, err := b.pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	_, err = tx.Exec(ctx, `SELECT 1 FROM rate_limits FOR UPDATE`)
	require.NoError(t, err)

	for i := 1; i < share; i++ {
		hitCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		d, err := leases.Allow(hitCtx, rule, "user-1")
		cancel()
		require.NoError(t, err, "hit %d of the share waited for the database", i+1)
		require.True(t, d.Allowed)
		require.Equal(t, rule.Limit-(i+1), d.Remaining)
	}
	hitCtx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = leases.Allow(hitCtx, rule, "user-1")
	cancel()
	require.Error(t, err, "past the share, a hit waits for the reservation under way")

	require.NoError(t, tx.Rollback(ctx))
	require.Eventually(t, func() bool { return storedCount(ctx, t, b) == 2*share }, 10*time.Second, 10*time.Millisecond,
		"the next share is reserved with no further hit")
	d, err = leases.Allow(ctx, rule, "user-1")
	require.NoError(t, err)
	require.True(t, d.Allowed)
	require.Equal(t, rule.Limit-(share+1), d.Remaining)
	require.Equal(t, 2*share, storedCount(ctx, t, b))
}

// storedCount is the count of the only row of rate_limits.
func storedCount(ctx context.Context, t *testing.T, b *testBundle) int {
	t.Helper()
	var n int
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT count FROM rate_limits`).Scan(&n))
	return n
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

// TestReservationsLeaveTheSessionAsTheyFoundIt: a reservation commits without waiting for
// the WAL to be flushed, and that setting ends with its transaction: the pooled
// connection's next statement commits synchronously again.
func TestReservationsLeaveTheSessionAsTheyFoundIt(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	_, b := setup(t)
	cfg := b.pool.Config()
	cfg.MaxConns, cfg.MinConns = 1, 0
	one, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(one.Close)
	leases := ratelimit.NewLeases(ratelimit.New(one, b.clock.Now), b.clock.Now)
	d, err := leases.Allow(ctx, ratelimit.Rule{Name: "api", Limit: 200, Window: time.Minute}, "user-1")
	require.NoError(t, err)
	require.True(t, d.Allowed)
	var setting string
	require.NoError(t, one.QueryRow(ctx, `SHOW synchronous_commit`).Scan(&setting))
	require.Equal(t, "on", setting)
}

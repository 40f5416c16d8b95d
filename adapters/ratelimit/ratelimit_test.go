package ratelimit_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/postgres"
	"github.com/vigilhq/vigil/adapters/postgres/pgtest"
	"github.com/vigilhq/vigil/adapters/ratelimit"
	"github.com/vigilhq/vigil/domain"
)

// clock is a settable clock safe for concurrent use.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type testBundle struct {
	pool  *pgxpool.Pool
	clock *clock
	lim   *ratelimit.Limiter
}

func setup(t *testing.T) (*ratelimit.Limiter, *testBundle) {
	t.Helper()
	b := &testBundle{
		pool:  pgtest.New(t),
		clock: &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)},
	}
	b.lim = ratelimit.New(b.pool, b.clock.Now)
	return b.lim, b
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func rows(ctx context.Context, t *testing.T, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM rate_limits").Scan(&n))
	return n
}

func TestAllowEnforcesLimitAndResetsWindow(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	lim, b := setup(t)
	rule := ratelimit.Rule{Name: "test", Limit: 3, Window: time.Minute}

	d, err := lim.Allow(ctx, rule, "1.2.3.4")
	require.NoError(t, err)
	require.Equal(t, ratelimit.Decision{Allowed: true, Limit: 3, Remaining: 2, ResetAfter: time.Minute}, d)

	b.clock.Advance(10 * time.Second)
	d, err = lim.Allow(ctx, rule, "1.2.3.4")
	require.NoError(t, err)
	require.Equal(t, ratelimit.Decision{Allowed: true, Limit: 3, Remaining: 1, ResetAfter: 50 * time.Second}, d)

	d, err = lim.Allow(ctx, rule, "1.2.3.4")
	require.NoError(t, err)
	require.Equal(t, ratelimit.Decision{Allowed: true, Limit: 3, Remaining: 0, ResetAfter: 50 * time.Second}, d)

	// Over the limit: denied until the window that opened at the first hit ends, however
	// often the caller insists.
	for range 5 {
		b.clock.Advance(time.Second)
		d, err = lim.Allow(ctx, rule, "1.2.3.4")
		require.NoError(t, err)
		require.False(t, d.Allowed)
	}
	require.Equal(t, ratelimit.Decision{Allowed: false, Limit: 3, Remaining: 0,
		ResetAfter: 45 * time.Second, RetryAfter: 45 * time.Second}, d)

	// Other keys and other rules have their own counters.
	d, err = lim.Allow(ctx, rule, "5.6.7.8")
	require.NoError(t, err)
	require.True(t, d.Allowed)
	d, err = lim.Allow(ctx, ratelimit.Rule{Name: "other", Limit: 3, Window: time.Minute}, "1.2.3.4")
	require.NoError(t, err)
	require.True(t, d.Allowed)

	// Just before the end the window still holds; at its end a new one opens.
	b.clock.Advance(45*time.Second - time.Microsecond)
	d, err = lim.Allow(ctx, rule, "1.2.3.4")
	require.NoError(t, err)
	require.False(t, d.Allowed)
	require.Equal(t, time.Microsecond, d.RetryAfter)

	b.clock.Advance(time.Microsecond)
	d, err = lim.Allow(ctx, rule, "1.2.3.4")
	require.NoError(t, err)
	require.Equal(t, ratelimit.Decision{Allowed: true, Limit: 3, Remaining: 2, ResetAfter: time.Minute}, d)

	// A long silence also starts afresh.
	b.clock.Advance(24 * time.Hour)
	d, err = lim.Allow(ctx, rule, "1.2.3.4")
	require.NoError(t, err)
	require.Equal(t, 2, d.Remaining)
}

func TestAllowConcurrentNeverExceedsLimit(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	lim, _ := setup(t)
	rule := ratelimit.Rule{Name: "test", Limit: 5, Window: time.Minute}

	var admitted, denied atomic.Int32
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			<-start
			d, err := lim.Allow(ctx, rule, "key")
			if err != nil {
				t.Error(err)
				return
			}
			if d.Allowed {
				admitted.Add(1)
			} else {
				denied.Add(1)
			}
		})
	}
	close(start)
	wg.Wait()
	require.Equal(t, int32(5), admitted.Load())
	require.Equal(t, int32(15), denied.Load())
}

// TestTwoProcessesShareLimits runs two limiters, each with its own pool as two API
// processes would have, on the server's clock.
func TestTwoProcessesShareLimits(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	url := pgtest.NewURL(t)
	open := func() *ratelimit.Limiter {
		pool, err := postgres.Open(ctx, postgres.PoolConfig{URL: url, AppName: "vigil-api", MaxConns: 4})
		require.NoError(t, err)
		t.Cleanup(pool.Close)
		return ratelimit.New(pool, nil)
	}
	a, b := open(), open()
	rule := ratelimit.Rule{Name: "login-ip", Limit: 10, Window: time.Hour}

	// Sequential: each process sees the other's hits.
	for i := range 6 {
		lim := a
		if i%2 == 1 {
			lim = b
		}
		d, err := lim.Allow(ctx, rule, "203.0.113.9")
		require.NoError(t, err)
		require.True(t, d.Allowed)
		require.Equal(t, 10-(i+1), d.Remaining)
		require.Greater(t, d.ResetAfter, 59*time.Minute)
		require.LessOrEqual(t, d.ResetAfter, time.Hour)
	}
	p, err := b.Peek(ctx, rule, "203.0.113.9")
	require.NoError(t, err)
	require.Equal(t, 4, p.Remaining)

	// Concurrent from both: together they admit only what is left.
	var admitted atomic.Int32
	var wg sync.WaitGroup
	for i := range 20 {
		lim := a
		if i%2 == 1 {
			lim = b
		}
		wg.Go(func() {
			d, err := lim.Allow(ctx, rule, "203.0.113.9")
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
	require.Equal(t, int32(4), admitted.Load())

	d, err := a.Allow(ctx, rule, "203.0.113.9")
	require.NoError(t, err)
	require.False(t, d.Allowed)
	require.Positive(t, d.RetryAfter)
}

func TestPeekDoesNotCount(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	lim, b := setup(t)
	rule := ratelimit.Rule{Name: "test", Limit: 2, Window: time.Minute}

	// No window yet: a hit would open a full one.
	for range 3 {
		d, err := lim.Peek(ctx, rule, "key")
		require.NoError(t, err)
		require.Equal(t, ratelimit.Decision{Allowed: true, Limit: 2, Remaining: 2, ResetAfter: time.Minute}, d)
	}
	require.Zero(t, rows(ctx, t, b.pool), "Peek must not write")

	_, err := lim.Allow(ctx, rule, "key")
	require.NoError(t, err)
	b.clock.Advance(20 * time.Second)
	for range 3 {
		d, err := lim.Peek(ctx, rule, "key")
		require.NoError(t, err)
		require.Equal(t, ratelimit.Decision{Allowed: true, Limit: 2, Remaining: 1, ResetAfter: 40 * time.Second}, d)
	}

	// Exhausted: Peek says no more, and when.
	_, err = lim.Allow(ctx, rule, "key")
	require.NoError(t, err)
	d, err := lim.Peek(ctx, rule, "key")
	require.NoError(t, err)
	require.Equal(t, ratelimit.Decision{Allowed: false, Limit: 2, Remaining: 0,
		ResetAfter: 40 * time.Second, RetryAfter: 40 * time.Second}, d)

	// Ended window: fresh again, before any new hit.
	b.clock.Advance(40 * time.Second)
	d, err = lim.Peek(ctx, rule, "key")
	require.NoError(t, err)
	require.Equal(t, ratelimit.Decision{Allowed: true, Limit: 2, Remaining: 2, ResetAfter: time.Minute}, d)
}

// TestLoginFailureBudget is the flow doc.go shows the auth handlers: Peek before the
// password check, Fail after a failed one, whatever the IP.
func TestLoginFailureBudget(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	lim, b := setup(t)
	rule := ratelimit.Defaults().LoginFailuresAccount
	acct := ratelimit.EmailKey(" Ann@Example.com")
	require.Equal(t, "ann@example.com", acct)

	attempts := 0
	for range 150 {
		d, err := lim.Peek(ctx, rule, acct)
		require.NoError(t, err)
		if !d.Allowed {
			break
		}
		attempts++ // the password check fails
		_, err = lim.Fail(ctx, rule, acct)
		require.NoError(t, err)
		b.clock.Advance(10 * time.Second)
	}
	require.Equal(t, 100, attempts, "ASVS: at most 100 failed logins per account per hour")

	d, err := lim.Peek(ctx, rule, acct)
	require.NoError(t, err)
	require.False(t, d.Allowed)
	require.Equal(t, time.Hour-1000*time.Second, d.RetryAfter)

	b.clock.Advance(d.RetryAfter)
	d, err = lim.Peek(ctx, rule, acct)
	require.NoError(t, err)
	require.True(t, d.Allowed)
	require.Equal(t, 100, d.Remaining)
}

func TestRefund(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	lim, b := setup(t)
	rule := ratelimit.Rule{Name: "test", Limit: 2, Window: time.Minute}

	// Refunding nothing does nothing.
	require.NoError(t, lim.Refund(ctx, rule, "key"))
	require.Zero(t, rows(ctx, t, b.pool))

	// Reserve, refund: the budget is whole again.
	d, err := lim.Fail(ctx, rule, "key")
	require.NoError(t, err)
	require.Equal(t, 1, d.Remaining)
	require.NoError(t, lim.Refund(ctx, rule, "key"))
	require.NoError(t, lim.Refund(ctx, rule, "key"), "refunding below zero is a no-op")
	d, err = lim.Peek(ctx, rule, "key")
	require.NoError(t, err)
	require.Equal(t, 2, d.Remaining)

	// Exhausted and denied; one refund of an admitted hit frees exactly one.
	for range 3 {
		_, err = lim.Fail(ctx, rule, "key")
		require.NoError(t, err)
	}
	require.NoError(t, lim.Refund(ctx, rule, "key"))
	d, err = lim.Allow(ctx, rule, "key")
	require.NoError(t, err)
	require.True(t, d.Allowed)
	require.Equal(t, 0, d.Remaining)
	d, err = lim.Allow(ctx, rule, "key")
	require.NoError(t, err)
	require.False(t, d.Allowed)
}

func TestCleanupRemovesExpiredRows(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	lim, b := setup(t)
	minute := ratelimit.Rule{Name: "minute", Limit: 5, Window: time.Minute}
	day := ratelimit.Rule{Name: "day", Limit: 5, Window: 24 * time.Hour}

	for _, k := range []string{"a", "b", "c"} {
		_, err := lim.Allow(ctx, minute, k)
		require.NoError(t, err)
	}
	_, err := lim.Allow(ctx, day, "a")
	require.NoError(t, err)

	// Windows that ended less than an hour ago stay.
	b.clock.Advance(time.Hour)
	n, err := lim.Cleanup(ctx)
	require.NoError(t, err)
	require.Zero(t, n)
	require.Equal(t, 4, rows(ctx, t, b.pool))

	b.clock.Advance(time.Minute + time.Second)
	_, err = lim.Allow(ctx, minute, "c") // a fresh window for c
	require.NoError(t, err)
	n, err = lim.Cleanup(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(2), n)
	require.Equal(t, 2, rows(ctx, t, b.pool))

	// The surviving rows are the ones still counting.
	d, err := lim.Peek(ctx, day, "a")
	require.NoError(t, err)
	require.Equal(t, 4, d.Remaining)
	d, err = lim.Peek(ctx, minute, "c")
	require.NoError(t, err)
	require.Equal(t, 4, d.Remaining)
}

func TestInvalidRules(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	lim, _ := setup(t)

	for _, rule := range []ratelimit.Rule{
		{Name: "", Limit: 1, Window: time.Minute},
		{Name: "zero", Limit: 0, Window: time.Minute},
		{Name: "negative", Limit: -1, Window: time.Minute},
		{Name: "no-window", Limit: 1},
		{Name: "tiny-window", Limit: 1, Window: time.Microsecond},
	} {
		_, err := lim.Allow(ctx, rule, "k")
		require.ErrorIs(t, err, domain.ErrInvalid, "Allow %v", rule)
		_, err = lim.Peek(ctx, rule, "k")
		require.ErrorIs(t, err, domain.ErrInvalid, "Peek %v", rule)
		require.ErrorIs(t, lim.Refund(ctx, rule, "k"), domain.ErrInvalid, "Refund %v", rule)
	}
}

func TestStoreDownIsUnavailable(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	lim, b := setup(t)
	b.pool.Close()
	rule := ratelimit.Rule{Name: "test", Limit: 1, Window: time.Minute}

	_, err := lim.Allow(ctx, rule, "k")
	require.ErrorIs(t, err, domain.ErrUnavailable)
	require.Contains(t, err.Error(), "rate limit test")
	_, err = lim.Peek(ctx, rule, "k")
	require.ErrorIs(t, err, domain.ErrUnavailable)
	require.ErrorIs(t, lim.Refund(ctx, rule, "k"), domain.ErrUnavailable)
	_, err = lim.Cleanup(ctx)
	require.ErrorIs(t, err, domain.ErrUnavailable)
}

func TestLongKeys(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	lim, _ := setup(t)
	rule := ratelimit.Rule{Name: "forgot-email", Limit: 1, Window: time.Minute}

	// A hostile 1 MB "email" must not break the index (keys are hashed).
	long := string(make([]byte, 1<<20))
	d, err := lim.Allow(ctx, rule, long)
	require.NoError(t, err)
	require.True(t, d.Allowed)
	d, err = lim.Allow(ctx, rule, long)
	require.NoError(t, err)
	require.False(t, d.Allowed)
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	rules := ratelimit.Defaults()
	all := rules.All()
	require.Len(t, all, 11)
	names := map[string]bool{}
	for _, r := range all {
		require.NoError(t, r.Validate())
		require.False(t, names[r.Name], "duplicate rule name %s", r.Name)
		names[r.Name] = true
	}
	require.Equal(t, ratelimit.Rule{Name: "login-fail-account", Limit: 100, Window: time.Hour}, rules.LoginFailuresAccount)
	require.Equal(t, 20, rules.LoginIP.Limit)
	require.Equal(t, time.Minute, rules.LoginIP.Window)
	require.Equal(t, ratelimit.Rule{Name: "action-test-caller", Limit: 10, Window: time.Hour}, rules.ActionTest)
}

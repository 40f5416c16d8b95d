package ratelimit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigilhq/vigil/domain"
)

// CleanupAfter is how long after its window ended a row is kept before Cleanup deletes it.
const CleanupAfter = time.Hour

// Rule is one limit: at most Limit hits per Window for each key. Name namespaces the keys,
// so two rules never share a counter; it must be stable across releases and processes.
type Rule struct {
	Name   string        // e.g. "login-ip"
	Limit  int           // hits allowed per window, > 0
	Window time.Duration // window length, at least a millisecond
}

// Validate returns an EINVALID error when the rule cannot be enforced.
func (r Rule) Validate() error {
	switch {
	case r.Name == "":
		return domain.Errorf(domain.EINVALID, "A rate-limit rule needs a name.")
	case r.Limit <= 0:
		return domain.Errorf(domain.EINVALID, "Rate-limit rule %s needs a positive limit, not %d.", r.Name, r.Limit)
	case r.Window < time.Millisecond:
		return domain.Errorf(domain.EINVALID, "Rate-limit rule %s needs a window of at least 1ms, not %s.", r.Name, r.Window)
	}
	return nil
}

// String returns the rule as "name (limit/window)".
func (r Rule) String() string { return fmt.Sprintf("%s (%d/%s)", r.Name, r.Limit, r.Window) }

// Decision is the outcome of a check.
type Decision struct {
	// Allowed reports whether the hit is admitted (Allow) or whether one more hit would be (Peek).
	Allowed bool
	// Limit is the rule's limit.
	Limit int
	// Remaining is how many more hits the current window admits.
	Remaining int
	// ResetAfter is the time until the current window ends and the full limit is back.
	ResetAfter time.Duration
	// RetryAfter is how long to wait before the next hit can be admitted; 0 when Allowed.
	RetryAfter time.Duration
}

// Limiter counts hits per rule and key in Postgres, so every API process shares the limits.
// It is safe for concurrent use.
type Limiter struct {
	pool *pgxpool.Pool
	now  func() time.Time
}

// New returns a Limiter on pool. now is the clock; nil uses the database server's clock,
// which is what production should do: one clock for every API process, whatever their
// skew. Tests inject a clock.
func New(pool *pgxpool.Pool, now func() time.Time) *Limiter {
	return &Limiter{pool: pool, now: now}
}

// allowSQL counts one hit in a single atomic statement. The row lock taken by ON CONFLICT
// DO UPDATE serialises concurrent hits on the same key, and every SET expression reads the
// row as it was before this hit, so an expired window is restarted and counted in one
// step. The count saturates at limit+1: a denied hit changes nothing, and RETURNING tells
// admitted (count <= limit) from denied (count = limit+1) without a second query.
// $2 is the injected time or NULL for the server's statement time.
const allowSQL = `
INSERT INTO rate_limits AS r (key, window_start, window_end, count)
VALUES ($1, coalesce($2::timestamptz, statement_timestamp()),
        coalesce($2::timestamptz, statement_timestamp()) + $3::bigint * interval '1 microsecond', 1)
ON CONFLICT (key) DO UPDATE SET
  window_start = CASE WHEN r.window_end <= excluded.window_start THEN excluded.window_start ELSE r.window_start END,
  window_end   = CASE WHEN r.window_end <= excluded.window_start THEN excluded.window_end ELSE r.window_end END,
  count        = CASE WHEN r.window_end <= excluded.window_start THEN 1
                      ELSE least(r.count + 1, greatest(r.count, $4::integer + 1)) END
RETURNING count, window_end, coalesce($2::timestamptz, statement_timestamp())`

// reserveSQL takes up to $5 hits of the window at once (a lease), as many as the limit
// leaves: granted says how many. A full window marks the row denied, as allowSQL does.
const reserveSQL = `
INSERT INTO rate_limits AS r (key, window_start, window_end, count, granted)
VALUES ($1, coalesce($2::timestamptz, statement_timestamp()),
        coalesce($2::timestamptz, statement_timestamp()) + $3::bigint * interval '1 microsecond',
        least($5::integer, $4::integer), least($5::integer, $4::integer))
ON CONFLICT (key) DO UPDATE SET
  window_start = CASE WHEN r.window_end <= excluded.window_start THEN excluded.window_start ELSE r.window_start END,
  window_end   = CASE WHEN r.window_end <= excluded.window_start THEN excluded.window_end ELSE r.window_end END,
  count        = CASE WHEN r.window_end <= excluded.window_start THEN excluded.count
                      WHEN r.count >= $4::integer THEN $4::integer + 1
                      ELSE least(r.count + $5::integer, $4::integer) END,
  granted      = CASE WHEN r.window_end <= excluded.window_start THEN excluded.count
                      WHEN r.count >= $4::integer THEN 0
                      ELSE least(r.count + $5::integer, $4::integer) - r.count END
RETURNING granted, count, window_end, coalesce($2::timestamptz, statement_timestamp())`

// asyncCommitSQL lets the rest of its transaction commit without waiting for the WAL to
// reach the disk. A reservation is on the request path of every caller's first hit and of
// each share after; an OS crash may forget the last fraction of a second of reservations,
// which admits at most a share more per key: no hit the limit exists to stop.
const asyncCommitSQL = `SELECT set_config('synchronous_commit', 'off', true)`

const peekSQL = `
SELECT count, window_end, coalesce($2::timestamptz, statement_timestamp())
FROM rate_limits WHERE key = $1`

const refundSQL = `
UPDATE rate_limits SET count = least(count, $3::integer) - 1
WHERE key = $1 AND count > 0 AND window_end > coalesce($2::timestamptz, statement_timestamp())`

const cleanupSQL = `
DELETE FROM rate_limits
WHERE window_end < coalesce($1::timestamptz, statement_timestamp()) - $2::bigint * interval '1 microsecond'`

// Allow counts one hit for key under rule and reports whether it is admitted. Denied hits
// are not counted, so they never push the window's end further away. It returns EINVALID
// for an invalid rule and EUNAVAILABLE when the store fails; callers on the request path
// should then fail open (see Middleware).
func (l *Limiter) Allow(ctx context.Context, rule Rule, key string) (Decision, error) {
	if err := rule.Validate(); err != nil {
		return Decision{}, err
	}
	var (
		count    int
		end, now time.Time
	)
	err := l.pool.QueryRow(ctx, allowSQL, storeKey(rule, key), l.clock(), rule.Window.Microseconds(), rule.Limit).
		Scan(&count, &end, &now)
	if err != nil {
		return Decision{}, storeError("count hit", rule, err)
	}
	return decide(rule, count, count <= rule.Limit, end.Sub(now)), nil
}

// reservation is what one reserve got: granted hits of the window, whose count is count
// after it, which ends at windowEnd on the database's clock, resetAfter from now.
type reservation struct {
	granted, count int
	windowEnd      time.Time
	resetAfter     time.Duration
}

// reserve takes up to n hits of the window of the stored key k at once.
func (l *Limiter) reserve(ctx context.Context, rule Rule, k string, n int) (reservation, error) {
	var (
		r   reservation
		now time.Time
		b   pgx.Batch
	)
	// One implicit transaction: the setting holds for the reservation's commit only.
	b.Queue(asyncCommitSQL)
	b.Queue(reserveSQL, k, l.clock(), rule.Window.Microseconds(), rule.Limit, n).QueryRow(func(row pgx.Row) error {
		return row.Scan(&r.granted, &r.count, &r.windowEnd, &now)
	})
	if err := l.pool.SendBatch(ctx, &b).Close(); err != nil {
		return reservation{}, storeError("reserve hits", rule, err)
	}
	r.resetAfter = max(r.windowEnd.Sub(now), 0)
	return r, nil
}

// Peek reports the state of key under rule without counting a hit: Allowed says whether
// one more hit would be admitted. Use it to check a failure budget before doing the work
// whose failure is counted. It returns the same errors as Allow.
func (l *Limiter) Peek(ctx context.Context, rule Rule, key string) (Decision, error) {
	if err := rule.Validate(); err != nil {
		return Decision{}, err
	}
	var (
		count    int
		end, now time.Time
	)
	err := l.pool.QueryRow(ctx, peekSQL, storeKey(rule, key), l.clock()).Scan(&count, &end, &now)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && !end.After(now)) {
		// No window running: a hit now would open a fresh one.
		return decide(rule, 0, true, rule.Window), nil
	}
	if err != nil {
		return Decision{}, storeError("peek", rule, err)
	}
	return decide(rule, count, count < rule.Limit, end.Sub(now)), nil
}

// Fail counts one failure against a failure budget such as Rules.LoginFailuresAccount. It
// is Allow under a name that reads well at the call site; the Decision says whether the
// budget still had room for this failure.
func (l *Limiter) Fail(ctx context.Context, rule Rule, key string) (Decision, error) {
	return l.Allow(ctx, rule, key)
}

// Refund takes back one admitted hit counted by Allow or Fail in the current window. It is
// for the strict variant of a failure budget: count the failure before the work (so
// concurrent attempts cannot all pass a Peek), and refund it when the work succeeded.
// Refund only a hit whose Decision was Allowed (a denied hit was not counted). Refunding a
// key with no hit in the current window does nothing. It returns EUNAVAILABLE when the
// store fails.
func (l *Limiter) Refund(ctx context.Context, rule Rule, key string) error {
	if err := rule.Validate(); err != nil {
		return err
	}
	if _, err := l.pool.Exec(ctx, refundSQL, storeKey(rule, key), l.clock(), rule.Limit); err != nil {
		return storeError("refund", rule, err)
	}
	return nil
}

// Cleanup deletes the rows of windows that ended more than CleanupAfter ago and returns
// how many it deleted. Rows of expired windows are harmless (the next hit restarts them);
// this only bounds the table's size. The caller runs it periodically, e.g. every few
// minutes from one process; running it from several at once is safe.
func (l *Limiter) Cleanup(ctx context.Context) (int64, error) {
	tag, err := l.pool.Exec(ctx, cleanupSQL, l.clock(), CleanupAfter.Microseconds())
	if err != nil {
		return 0, &domain.Error{Code: domain.EUNAVAILABLE, Message: "The rate limiter is unavailable.",
			Err: fmt.Errorf("clean up rate limits: %w", err)}
	}
	return tag.RowsAffected(), nil
}

// clock returns the injected time truncated to Postgres's microseconds, or nil to use the
// server's clock.
func (l *Limiter) clock() *time.Time {
	if l.now == nil {
		return nil
	}
	t := l.now().Truncate(time.Microsecond)
	return &t
}

// decide builds a Decision from the window's count after (Allow) or before (Peek) the hit.
func decide(rule Rule, count int, allowed bool, resetAfter time.Duration) Decision {
	d := Decision{
		Allowed:    allowed,
		Limit:      rule.Limit,
		Remaining:  max(rule.Limit-count, 0),
		ResetAfter: max(resetAfter, 0),
	}
	if !allowed {
		d.RetryAfter = d.ResetAfter
	}
	return d
}

// storeKey namespaces key by the rule and hashes it: the primary key stays short whatever
// a caller sends (a btree entry must fit in a third of a page), and raw emails and IPs are
// not written to the table. The hash is not anonymisation: IPv4 addresses can be
// enumerated.
func storeKey(rule Rule, key string) string {
	sum := sha256.Sum256([]byte(key))
	return rule.Name + ":" + hex.EncodeToString(sum[:16])
}

// storeError wraps a failure of the store as EUNAVAILABLE.
func storeError(op string, rule Rule, err error) error {
	return &domain.Error{
		Code:    domain.EUNAVAILABLE,
		Message: "The rate limiter is unavailable.",
		Err:     fmt.Errorf("rate limit %s: %s: %w", rule.Name, op, err),
	}
}

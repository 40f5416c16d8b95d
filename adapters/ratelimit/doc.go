// Package ratelimit enforces Vigil's request limits per endpoint and per caller, in
// Postgres, so that every API process shares the same counters.
//
// # Design: a fixed window per key, in one statement
//
// Each (rule, key) pair is one row of the rate_limits table (migration 005): the start and
// end of the current window and the number of hits in it. A window opens at the key's
// first hit and lasts the rule's Window. Allow is a single INSERT ... ON CONFLICT DO UPDATE
// ... RETURNING: it creates the row, or restarts a window that has ended, or adds one to
// the count, and returns the result, all under the row lock Postgres takes for the
// conflict. Concurrent hits on one key from any number of processes queue on that lock, so
// a window never admits more than Limit hits; nothing is read and then written back, so
// there is no lost-update race and no retry loop. The count saturates at Limit+1, which
// both marks a denial in the RETURNING row and keeps denied hits from counting: hammering
// a key that is already limited changes nothing, and its window still ends on time.
//
// Why this and not the alternatives:
//   - Process memory fails the requirement: N processes would admit N times the limit.
//   - NATS KV can only compare-and-swap a whole value: read, compute, Update with the
//     revision, retry on conflict. That is two round trips at best and a retry storm on
//     a hot key. Postgres does read-modify-write in one statement under a row lock, and
//     every API process already holds a pool.
//   - GCRA and the sliding-window counter smooth bursts better but allow the same worst
//     case (about 2×Limit in a span straddling a boundary), cost more SQL to get right,
//     and make RateLimit-Reset harder to explain. A fixed window is what the IETF
//     RateLimit headers describe and what a user reads as "100 per hour".
//   - A sliding log (one timestamp per hit) is exact but costs O(Limit) per key: 600
//     timestamps rewritten on every API request.
//
// The guarantee is therefore: at most Limit hits per window of each key, and never more
// than Limit per Window on average. Two windows back to back can admit up to 2×Limit in a
// span shorter than Window; for the limits here (brute force, spam, cost) the long-run rate
// is what matters.
//
// The table is UNLOGGED: it is written on every request, and limits need not survive a
// crash. Postgres empties an unlogged table after a crash and a promoted standby starts
// with it empty, which forgives at most one window of every limit. Keys are stored as the
// rule name and a hash of the caller key, so their length is bounded whatever the client
// sends. Rows of ended windows are harmless; Limiter.Cleanup deletes those that ended more
// than CleanupAfter ago, using the index on window_end. Run it every few minutes from one
// process (from several is safe too).
//
// Time comes from the database server unless a clock is injected (New), so processes with
// skewed clocks still agree on when a window ends.
//
// # Leases
//
// Leases counts a busy limit (the per-caller API limit, hit on every request) with a
// fraction of the writes: a process reserves a twentieth of the window's limit in one
// statement and admits hits from memory until it is used up or the window ends. The limit
// still holds across processes, since the database hands out no more than Limit per
// window; what a process leaves unused when the window ends is lost to that key for the
// window. See lease.go.
//
// # Failing open
//
// When the store is down or slower than CheckTimeout, Middleware lets the request through
// and logs a warning (sampled). An outage of the limiter must not become an outage of the
// API. Failing open costs little here: the limits protect endpoints that need Postgres
// themselves, so while Postgres is down an attacker cannot log in or register either.
// Limiter methods return EUNAVAILABLE errors and leave the choice to direct callers.
//
// # Using it
//
// Per-IP and per-caller limits are route middleware:
//
//	rules := ratelimit.Defaults()
//	lim := ratelimit.New(pool, nil)
//	e.IPExtractor = echo.ExtractIPDirect() // or ExtractIPFromXFFHeader behind a proxy
//	e.POST("/api/auth/login", h.login, ratelimit.Middleware(lim, rules.LoginIP, ratelimit.IPKey, log))
//	api := e.Group("/api", authenticate, ratelimit.Middleware(lim, rules.API, callerID, log))
//
// Without an IPExtractor, echo believes the client's X-Forwarded-For and per-IP limits can
// be dodged by sending a new one with every request.
//
// Limits keyed by the target email of a request body (forgot, the login failure budget)
// are checked in the handler, after decoding. The login failure budget enforces OWASP
// ASVS's "at most 100 failed logins per account per hour" whatever the attacker's IPs:
// Peek before checking the password, and count only failures.
//
//	acct := ratelimit.EmailKey(req.Email)
//	if d, err := h.limits.Peek(ctx, h.rules.LoginFailuresAccount, acct); err == nil && !d.Allowed {
//		c.Response().Header().Set("Retry-After", strconv.Itoa(int(d.RetryAfter.Seconds())+1))
//		return domain.Errorf(domain.ERATELIMITED, "Too many failed logins for this account; try again later.")
//	} // a store error fails open, like the middleware
//	user, err := h.auth.Login(ctx, req.Email, req.Password)
//	if errors.Is(err, auth.ErrBadCredentials) {
//		if _, err := h.limits.Fail(ctx, h.rules.LoginFailuresAccount, acct); err != nil {
//			log.Warn().Err(err).Msg("count login failure")
//		}
//		return err
//	}
//
// Answer the refusal the same way whether or not the account exists (the budget is
// keyed by the email, not the user), or the limit becomes an enumeration oracle.
//
// Peek and Fail are two statements, so attempts already in flight when the budget runs
// out are still counted but not stopped: the overshoot is bounded by the concurrent
// attempts on one account (each pays a bcrypt compare, and LoginIP caps each address).
// For a hard cap, count first and give it back on success:
//
//	d, err := h.limits.Fail(ctx, rule, acct) // reserve one failure
//	if err == nil && !d.Allowed {
//		return tooManyFailures(d)
//	}
//	user, err := h.auth.Login(ctx, req.Email, req.Password)
//	if err == nil && d.Allowed {
//		h.limits.Refund(ctx, rule, acct) // it was not a failure after all
//	}
package ratelimit

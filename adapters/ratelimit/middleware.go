package ratelimit

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/rs/zerolog"

	"github.com/vigilhq/vigil/domain"
)

// Response headers, from draft-ietf-httpapi-ratelimit-headers (the separate-field form)
// and RFC 9110 for Retry-After. Times are whole seconds, rounded up.
const (
	HeaderLimit      = "RateLimit-Limit"
	HeaderRemaining  = "RateLimit-Remaining"
	HeaderReset      = "RateLimit-Reset"
	HeaderRetryAfter = "Retry-After"
)

// CheckTimeout bounds one check on the request path: a store slower than this is treated
// as down and the request goes through, so a struggling database does not add its latency
// to every request on top of its own.
const CheckTimeout = time.Second

// Allower counts a hit of a key under a rule: a *Limiter, exactly, or *Leases, from
// shares reserved ahead.
type Allower interface {
	Allow(ctx context.Context, rule Rule, key string) (Decision, error)
}

// Middleware limits the requests of each key under rule, counting every request that
// reaches it. key names the caller (IPKey, the authenticated user or API key id...); an
// empty key means the rule does not apply to this request and it passes unlimited.
//
// Every limited response carries the RateLimit-* headers. A denied request also gets
// Retry-After and the middleware returns a *domain.Error with code ERATELIMITED, which the
// API's error handler turns into a 429 problem+json (headers set here survive it). When
// several Middleware apply to one route, an admitted request reports the rule closest to
// exhaustion.
//
// When the store fails or is slower than CheckTimeout, the request is allowed and a warning
// logged (at most one every 10 seconds per rule): an outage of the limiter must not take
// the API down with it.
//
// Middleware panics when rule is invalid or key is nil: both are wiring mistakes that
// must stop the program at start-up rather than silently disable a limit.
func Middleware(l Allower, rule Rule, key func(c echo.Context) string, log zerolog.Logger) echo.MiddlewareFunc {
	if err := rule.Validate(); err != nil {
		panic(fmt.Sprintf("ratelimit.Middleware: %v", err))
	}
	if l == nil || (reflect.ValueOf(l).Kind() == reflect.Pointer && reflect.ValueOf(l).IsNil()) || key == nil {
		panic("ratelimit.Middleware: nil limiter or key function")
	}
	log = log.With().Str("rule", rule.Name).Logger()
	outage := log.Sample(&zerolog.BurstSampler{Burst: 1, Period: 10 * time.Second})
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			k := key(c)
			if k == "" {
				return next(c)
			}
			ctx, cancel := context.WithTimeout(c.Request().Context(), CheckTimeout)
			d, err := l.Allow(ctx, rule, k)
			cancel()
			if err != nil {
				if c.Request().Context().Err() == nil { // not merely a client that went away
					outage.Warn().Err(err).Msg("rate limiter unavailable; allowing requests")
				}
				return next(c)
			}
			h := c.Response().Header()
			if !d.Allowed {
				d.SetHeaders(h)
				return d.Err()
			}
			// With several limits on one route, report the one closest to exhaustion.
			if prev, err := strconv.Atoi(h.Get(HeaderRemaining)); err != nil || d.Remaining < prev {
				d.SetHeaders(h)
			}
			return next(c)
		}
	}
}

// SetHeaders sets the RateLimit-* headers for d, and Retry-After when d is a denial.
func (d Decision) SetHeaders(h http.Header) {
	h.Set(HeaderLimit, strconv.Itoa(d.Limit))
	h.Set(HeaderRemaining, strconv.Itoa(d.Remaining))
	h.Set(HeaderReset, strconv.Itoa(ceilSeconds(d.ResetAfter)))
	if !d.Allowed {
		h.Set(HeaderRetryAfter, strconv.Itoa(d.retrySeconds()))
	}
}

// Err returns nil when d is allowed and otherwise the ERATELIMITED error to return from a
// handler, whose message says when to try again.
func (d Decision) Err() error {
	if d.Allowed {
		return nil
	}
	n := d.retrySeconds()
	msg := fmt.Sprintf("Too many requests; try again in %d seconds.", n)
	if n == 1 {
		msg = "Too many requests; try again in 1 second."
	}
	return &domain.Error{Code: domain.ERATELIMITED, Message: msg}
}

// retrySeconds is RetryAfter in whole seconds, rounded up, at least 1.
func (d Decision) retrySeconds() int { return max(ceilSeconds(d.RetryAfter), 1) }

// ceilSeconds rounds d up to whole seconds: a client that waits the advertised time must
// find the window reset.
func ceilSeconds(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int((d + time.Second - 1) / time.Second)
}

// IPKey keys a request by its client address: IPv4 addresses whole, IPv6 addresses by
// their /64 prefix, since one subscriber usually holds a whole /64 and could otherwise
// rotate through 2^64 keys.
//
// It relies on echo's RealIP. Set Echo.IPExtractor (echo.ExtractIPDirect, or
// echo.ExtractIPFromXFFHeader with the trusted proxies) on the server: without one, RealIP
// believes any X-Forwarded-For header the client sends and per-IP limits can be dodged.
func IPKey(c echo.Context) string {
	raw := c.RealIP()
	addr, err := netip.ParseAddr(raw)
	if err != nil {
		return raw
	}
	addr = addr.WithZone("").Unmap()
	if addr.Is6() {
		if p, err := addr.Prefix(64); err == nil {
			return p.String()
		}
	}
	return addr.String()
}

// EmailKey normalises an email address for use as a key, so "Ann@Example.com " and
// "ann@example.com" share one budget.
func EmailKey(email string) string {
	return strings.ToLower(strings.TrimSpace(email))
}

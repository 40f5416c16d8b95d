package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/rs/zerolog"

	"github.com/vigilhq/vigil/adapters/ratelimit"
	"github.com/vigilhq/vigil/domain"
)

// Paths of the unauthenticated account endpoints with strict limits. Limits attach by
// route path, so a route registered later (password reset) is limited as soon as it exists.
const (
	pathLogin    = "/api/auth/login"
	pathRegister = "/api/auth/register"
	pathForgot   = "/api/auth/password/forgot"
	pathReset    = "/api/auth/password/reset"
)

// Limits are the request limits of the API, counted in Postgres so that they hold across
// every API process (see package ratelimit). With Config.Limits set:
//
//   - POST /api/auth/login: Rules.LoginIP per client IP, and the failure budget
//     Rules.LoginFailuresAccount per target email whatever the IP (OWASP ASVS: at most 100
//     failed logins per account per hour). The budget is peeked before the password is
//     checked and charged only when the login fails with bad credentials; it is keyed by
//     the email, not the user, so the answer is the same whether or not the account exists.
//   - POST /api/auth/register: Rules.RegisterIP per client IP.
//   - POST /api/auth/password/forgot: Rules.ForgotIP per client IP, then Rules.ForgotEmail
//     per target email (read from the body, which is restored for the handler).
//   - POST /api/auth/password/reset: Rules.ResetIP per client IP.
//   - every authenticated route: Rules.API per caller (the API key when one was used,
//     otherwise the user), counted after authentication.
//
// The routes that cost AI calls and fetches have limits of their own on top: POST
// /api/monitors/:id/evaluate Rules.EvaluateNow per caller, POST /api/monitors and the two
// validate routes Rules.CreateMonitor and Rules.ValidateMonitor per user, whichever of
// their keys they use. The numbers are ratelimit.Defaults(), documented there; they are not
// configurable by environment because no deployment has needed other values yet.
type Limits struct {
	Limiter *ratelimit.Limiter
	Rules   ratelimit.Rules
	// Leases, when set, counts Rules.API (every authenticated request) from shares of
	// each window reserved ahead, so most requests write nothing; the limit still holds
	// across processes (see ratelimit.Leases). Nil: every request is counted in Postgres.
	Leases *ratelimit.Leases
}

// PerCaller returns middleware limiting each caller by rule; it must sit behind the
// authenticated middleware (on a route of an authenticated group). cmd uses it for
// Config.ActionTestLimit with Rules.ActionTest.
func (l *Limits) PerCaller(rule ratelimit.Rule, log zerolog.Logger) echo.MiddlewareFunc {
	return ratelimit.Middleware(l.Limiter, rule, CallerRateKey, log)
}

// CallerRateKey keys a request by its caller for per-caller limits: the API key when one
// authenticated the request, otherwise the user. It is "" (no limit) without a caller.
func CallerRateKey(c echo.Context) string {
	caller, ok := CallerFrom(c)
	switch {
	case !ok:
		return ""
	case caller.APIKeyID != "":
		return "key:" + caller.APIKeyID
	default:
		return "user:" + caller.UserID
	}
}

// UserRateKey keys a request by its user, whichever API key or token it came with, for
// limits on what costs money: a user cannot multiply them by making keys.
func UserRateKey(c echo.Context) string {
	if caller, ok := CallerFrom(c); ok {
		return "user:" + caller.UserID
	}
	return ""
}

// costLimit returns the route middleware enforcing the rule rule picks from the
// configured limits, keyed by key; none without limits.
func (s *Server) costLimit(rule func(ratelimit.Rules) ratelimit.Rule, key func(echo.Context) string) []echo.MiddlewareFunc {
	if s.cfg.Limits == nil {
		return nil
	}
	return []echo.MiddlewareFunc{ratelimit.Middleware(s.cfg.Limits.Limiter, rule(s.cfg.Limits.Rules), key, s.cfg.Logger)}
}

// useLimits installs the limits of s.cfg.Limits: the per-path ones as router middleware,
// the per-caller one for the authenticated middleware to apply.
func (s *Server) useLimits(e *echo.Echo) {
	l, log := s.cfg.Limits, s.cfg.Logger
	r := l.Rules
	ip := func(rule ratelimit.Rule) echo.MiddlewareFunc {
		return ratelimit.Middleware(l.Limiter, rule, ratelimit.IPKey, log)
	}
	byPath := map[string]echo.MiddlewareFunc{
		pathLogin:    chain(ip(r.LoginIP), s.loginFailureBudget(l)),
		pathRegister: ip(r.RegisterIP),
		pathForgot:   chain(ip(r.ForgotIP), ratelimit.Middleware(l.Limiter, r.ForgotEmail, bodyEmailKey, log)),
		pathReset:    ip(r.ResetIP),
	}
	e.Use(func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if c.Request().Method == http.MethodPost {
				if mw, ok := byPath[c.Path()]; ok {
					return mw(next)(c)
				}
			}
			return next(c)
		}
	})
	s.apiLimit = l.PerCaller(r.API, log)
	if l.Leases != nil {
		s.apiLimit = ratelimit.Middleware(l.Leases, r.API, CallerRateKey, log)
	}
}

// chain applies mws in order: the first one runs first.
func chain(mws ...echo.MiddlewareFunc) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		for i := len(mws) - 1; i >= 0; i-- {
			next = mws[i](next)
		}
		return next
	}
}

// loginFailureBudget enforces Rules.LoginFailuresAccount around the login handler: a
// refusal before the password is checked once the target email's budget is spent, a
// charge after each login that fails with bad credentials (EUNAUTHORIZED, which the login
// use case returns for unknown emails and wrong passwords alike). Other failures (invalid
// input, beta, disabled) are not guesses at the password and are not charged. When the
// store is down the budget fails open, like ratelimit.Middleware.
func (s *Server) loginFailureBudget(l *Limits) echo.MiddlewareFunc {
	rule := l.Rules.LoginFailuresAccount
	if err := rule.Validate(); err != nil {
		panic("httpapi: login failure budget: " + err.Error())
	}
	log := s.cfg.Logger.With().Str("rule", rule.Name).Logger()
	outage := log.Sample(&zerolog.BurstSampler{Burst: 1, Period: 10 * time.Second})
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			key := bodyEmailKey(c)
			if key == "" {
				return next(c) // the handler answers 400/422
			}
			ctx, cancel := context.WithTimeout(c.Request().Context(), ratelimit.CheckTimeout)
			d, err := l.Limiter.Peek(ctx, rule, key)
			cancel()
			switch {
			case err != nil:
				outage.Warn().Err(err).Msg("rate limiter unavailable; allowing login")
			case !d.Allowed:
				d.SetHeaders(c.Response().Header())
				return &domain.Error{Code: domain.ERATELIMITED,
					Message: "Too many failed logins for this account; try again later or reset the password."}
			}
			err = next(c)
			if domain.ErrorCode(err) == domain.EUNAUTHORIZED {
				// Charge even when the client has gone: a script hanging up early must pay too.
				ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request().Context()), ratelimit.CheckTimeout)
				if _, ferr := l.Limiter.Fail(ctx, rule, key); ferr != nil {
					outage.Warn().Err(ferr).Msg("count failed login")
				}
				cancel()
			}
			return err
		}
	}
}

// bodyEmailKey keys a request by the "email" of its JSON body (ratelimit.EmailKey), and
// puts the body back for the handler. It reads at most BodyLimit bytes and leaves the rest
// in place, so the handler still answers an oversized body with 413. Anything that is not
// a JSON object with a string email gives "" (no limit): the handler rejects it anyway.
func bodyEmailKey(c echo.Context) string {
	req := c.Request()
	if req.Body == nil || req.Body == http.NoBody {
		return ""
	}
	head, err := io.ReadAll(io.LimitReader(req.Body, BodyLimit+1))
	req.Body = readCloser{Reader: io.MultiReader(bytes.NewReader(head), req.Body), Closer: req.Body}
	if err != nil || len(head) > BodyLimit {
		return ""
	}
	var v struct {
		Email string `json:"email"`
	}
	if json.Unmarshal(head, &v) != nil {
		return ""
	}
	return ratelimit.EmailKey(v.Email)
}

// readCloser reads from the restored body and closes the original one.
type readCloser struct {
	io.Reader
	io.Closer
}

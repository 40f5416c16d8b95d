// Package httpapi is Vigil's HTTP API on Echo: health and readiness for operators, the demo
// source in development, and (in later issues) the JSON API under /api. Errors are RFC 9457
// problem+json documents with a stable code, written in exactly one place.
package httpapi

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"

	"github.com/vigilhq/vigil/domain"
)

// Checker is a dependency /readyz checks (Postgres, NATS).
type Checker interface {
	Check(ctx context.Context) error
}

// Config wires a Server.
type Config struct {
	Logger     zerolog.Logger
	Checks     map[string]Checker // name -> check, all must pass for /readyz
	DemoSource bool               // serve /demo/price.json and /demo/page.html
	// Metrics serves GET /metrics when set (Prometheus), to administrators only: on the
	// API's port it would tell anyone the system's traffic and internals. Scrapers read
	// it without credentials on METRICS_ADDR, a listener of its own.
	Metrics http.Handler
	// CORSOrigins are the origins (scheme://host[:port]) whose pages may call the API from
	// a browser; none by default. Their cross-origin requests also pass the CSRF check.
	CORSOrigins []string
	// Observer counts and times every request (Prometheus); nil: none.
	Observer HTTPObserver
	// Tracer runs every request in a span (OpenTelemetry); nil: the caller's traceparent
	// is carried on, and nothing is recorded.
	Tracer trace.Tracer
	// HSTS sends Strict-Transport-Security on every response: set it when the public URL
	// is https.
	HSTS bool
	// TranslateError turns an error no layer below translated (a database error that
	// escaped its store) into a domain error before it becomes a response, so an outage is
	// a 503 and bad data a 400, never a 500. Nil: none.
	TranslateError func(error) error
	// TrustedProxies are the proxies whose X-Forwarded-For is believed; with none, the
	// client address is the connection's, so a client cannot forge its IP for rate limits
	// and audit records.
	TrustedProxies []netip.Prefix
	// UnsubscribeTokens and Unsubscriber serve /unsubscribe when both are set.
	UnsubscribeTokens UnsubscribeVerifier
	Unsubscriber      Unsubscriber
	Now               func() time.Time

	// --- accounts: /api/auth/*, /api/me*, /.well-known/jwks.json ---
	// Accounts and AccessTokens serve the account routes when both are set. AccessTokens
	// also backs the authenticated middleware of every /api route. APIKeys resolves
	// "Bearer vgl_…" API keys; nil rejects them.
	Accounts     Accounts
	AccessTokens AccessTokens
	APIKeys      APIKeyResolver
	// --- end accounts ---

	// --- monitors: /api/monitors* ---
	// Monitors serves the monitor routes (with AccessTokens for authentication).
	// PromptExamples are shown with a 422 for a prompt that cannot be monitored.
	Monitors       Monitors
	PromptExamples []string
	// Series serves /api/monitors/:id/facts and /facts/latest; Stats /api/monitors/:id/stats;
	// Overviews GET /api/stats and, for administrators, /api/admin/stats.
	Series    Series
	Stats     Stats
	Overviews Overviews
	// Backtests serves POST /api/monitors/:id/backtest.
	Backtests Backtests
	// Exports serves GET /api/monitors/:id/export and, with Accounts, Monitors and
	// Notifications, GET /api/me/export.
	Exports Exports
	// --- end monitors ---

	// Actions serves /api/actions and the recipient confirmation page; Triggers serves
	// /api/monitors/:id/triggers (both with AccessTokens for authentication).
	Actions  Actions
	Triggers Triggers
	// ActionTestLimit, when set, rate-limits POST /api/actions/:id/test. Notifications
	// serves /api/notifications.
	ActionTestLimit echo.MiddlewareFunc
	Notifications   Notifications
	// EmailEventSource and EmailEvents serve POST /api/webhooks/email-events (bounces,
	// complaints, deliveries) when both are set; Suppressions serves
	// /api/admin/suppressions.
	EmailEventSource EmailEventSource
	EmailEvents      EmailEventHandler
	Suppressions     Suppressions
	// PageTokens serves the pages the links in emails open: /m/:id (with Monitors) and
	// /settings (with Accounts). /reset-password is served with PasswordResets.
	PageTokens PageTokens
	// EmailVerifier serves /verify-email, the link of welcome emails (with PageTokens).
	EmailVerifier EmailVerifier

	// api keys: APIKeyManager serves /api/me/api-keys when set.
	APIKeyManager APIKeyManager
	// admin: Admin serves /api/admin/* (administrators only) when set.
	Admin Admin
	// rate limits: Limits enforces the request limits (see Limits); nil: none.
	Limits *Limits

	// password reset: PasswordResets serves /api/auth/password/{forgot,reset} when set.
	PasswordResets PasswordResets
	// google sign-in: Google and GoogleAccounts serve /api/auth/google/{login,callback}
	// when both are set (only when GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET are).
	Google         GoogleSignIn
	GoogleAccounts GoogleAccounts
}

// HTTPObserver is told of every answered request: route is the pattern it matched
// (/api/monitors/:id), "" when none did.
type HTTPObserver interface {
	ObserveHTTP(method, route string, status int, d time.Duration)
}

// Server is the HTTP API.
type Server struct {
	echo *echo.Echo
	cfg  Config

	apiLimit echo.MiddlewareFunc // rate limits: per caller, applied by authenticated
}

// New builds the server and its routes.
func New(cfg Config) *Server {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	e := echo.New()
	e.JSONSerializer = jsonSerializer{}
	e.HideBanner, e.HidePort = true, true
	s := &Server{echo: e, cfg: cfg}
	e.HTTPErrorHandler = s.handleError
	e.IPExtractor = echo.ExtractIPDirect()
	if len(cfg.TrustedProxies) > 0 {
		opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
		for _, p := range cfg.TrustedProxies {
			opts = append(opts, echo.TrustIPRange(prefixNet(p)))
		}
		e.IPExtractor = echo.ExtractIPFromXFFHeader(opts...)
	}
	e.Pre(s.securityHeaders)
	if len(cfg.CORSOrigins) > 0 {
		e.Pre(middleware.CORSWithConfig(corsConfig(cfg.CORSOrigins)))
	}
	e.Pre(refuseCrossSiteWrites(cfg.CORSOrigins))
	e.Use(middleware.RequestID())
	e.Use(s.traceRequests) // around logRequests, which writes the error response
	e.Use(s.logRequests)
	e.Use(middleware.Recover())
	e.Use(refuseUnreadableText)

	if err := s.registerDocRoutes(e); err != nil {
		// The document is embedded and tested; a broken one is a programming error.
		panic(err)
	}
	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	if cfg.Metrics != nil && cfg.AccessTokens != nil {
		e.GET("/metrics", echo.WrapHandler(cfg.Metrics), s.authenticated, s.adminOnly)
	}
	if cfg.UnsubscribeTokens != nil && cfg.Unsubscriber != nil {
		e.GET("/unsubscribe", s.unsubscribe)
		e.POST("/unsubscribe", s.unsubscribe)
	}
	// --- accounts ---
	if cfg.Accounts != nil && cfg.AccessTokens != nil {
		s.registerAccountRoutes(e)
	}
	// --- end accounts ---
	// --- monitors ---
	if cfg.Monitors != nil && cfg.AccessTokens != nil {
		s.registerMonitorRoutes(e)
	}
	if cfg.Series != nil && cfg.AccessTokens != nil {
		s.registerSeriesRoutes(e)
	}
	if cfg.Stats != nil && cfg.AccessTokens != nil {
		s.registerStatsRoutes(e)
	}
	if cfg.Overviews != nil && cfg.AccessTokens != nil {
		s.registerOverviewRoutes(e)
	}
	if cfg.Backtests != nil && cfg.AccessTokens != nil {
		s.registerBacktestRoutes(e)
	}
	if cfg.Exports != nil && cfg.AccessTokens != nil {
		s.registerExportRoutes(e)
		if cfg.Accounts != nil && cfg.Monitors != nil && cfg.Notifications != nil {
			s.registerAccountExport(e)
		}
	}
	// --- end monitors ---
	if cfg.Actions != nil && cfg.AccessTokens != nil {
		s.registerActionRoutes(e)
	}
	if cfg.Triggers != nil && cfg.AccessTokens != nil {
		s.registerTriggerRoutes(e)
	}
	if cfg.Notifications != nil && cfg.AccessTokens != nil {
		s.registerNotificationRoutes(e)
	}
	if cfg.EmailEventSource != nil && cfg.EmailEvents != nil {
		s.registerEmailEventRoutes(e)
	}
	if cfg.Suppressions != nil && cfg.AccessTokens != nil {
		s.registerSuppressionRoutes(e)
	}
	s.registerPageRoutes(e)
	s.registerResetPage(e)
	// api keys
	if cfg.APIKeyManager != nil && cfg.AccessTokens != nil {
		s.registerAPIKeyRoutes(e)
	}
	// admin
	if cfg.Admin != nil && cfg.AccessTokens != nil {
		s.registerAdminRoutes(e)
	}
	// rate limits
	if cfg.Limits != nil {
		s.useLimits(e)
	}
	if cfg.DemoSource {
		e.GET("/demo/price.json", s.demoPrice)
		e.GET("/demo/page.html", s.demoPage)
	}
	return s
}

func prefixNet(p netip.Prefix) *net.IPNet {
	p = p.Masked()
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// Routes lists the routes the server serves, as "METHOD /path/:param".
func (s *Server) Routes() []string {
	var out []string
	for _, r := range s.echo.Routes() {
		if r.Method == echo.RouteNotFound {
			continue // Echo's own 404 routes of groups
		}
		out = append(out, r.Method+" "+r.Path)
	}
	return out
}

// Handler returns the server's http.Handler.
func (s *Server) Handler() http.Handler { return s.echo }

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 5*time.Second)
	defer cancel()
	checks := map[string]string{}
	ready := true
	for name, chk := range s.cfg.Checks {
		if err := chk.Check(ctx); err != nil {
			ready = false
			checks[name] = err.Error()
			continue
		}
		checks[name] = "ok"
	}
	status := http.StatusOK
	body := map[string]any{"status": "ready", "checks": checks}
	if !ready {
		status = http.StatusServiceUnavailable
		body["status"] = "not ready"
	}
	return c.JSON(status, body)
}

// Problem is an RFC 9457 problem details document.
type Problem struct {
	Type     string            `json:"type"`
	Title    string            `json:"title"`
	Status   int               `json:"status"`
	Detail   string            `json:"detail,omitempty"`
	Code     string            `json:"code"`
	Instance string            `json:"instance,omitempty"`
	Errors   map[string]string `json:"errors,omitempty"`
	// Examples are prompts that work, given when a prompt could not be understood.
	Examples []string `json:"examples,omitempty"`
}

var statusOf = map[string]int{
	domain.EINVALID:      http.StatusUnprocessableEntity,
	domain.ENOTFOUND:     http.StatusNotFound,
	domain.ECONFLICT:     http.StatusConflict,
	domain.EUNAUTHORIZED: http.StatusUnauthorized,
	domain.EFORBIDDEN:    http.StatusForbidden,
	domain.ERATELIMITED:  http.StatusTooManyRequests,
	domain.EUNAVAILABLE:  http.StatusServiceUnavailable,
	domain.EINTERNAL:     http.StatusInternalServerError,
}

// retryAfterUnavailable is the Retry-After, in seconds, of a 503: long enough for a
// restarting database or a failed-over connection to come back, short enough to retry soon.
const retryAfterUnavailable = "5"

// badQuery marks an EINVALID error about a read's query parameters, answered 400: the
// request asks for something that cannot be read, rather than for a change that is refused.
type badQuery struct{ error }

func (b badQuery) Unwrap() error { return b.error }

// handleError is the one place errors become HTTP responses.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	if s.cfg.TranslateError != nil {
		err = s.cfg.TranslateError(err)
	}
	p := Problem{Type: "about:blank", Instance: c.Request().URL.Path}
	var he *echo.HTTPError
	var de *domain.Error
	switch {
	case errors.As(err, &de):
		p.Code, p.Detail, p.Errors = de.Code, de.Message, de.Fields
		if de.Code == domain.EINVALID && de.Fields["prompt"] != "" {
			p.Examples = s.cfg.PromptExamples
		}
		p.Status = statusOf[de.Code]
		if p.Status == 0 {
			p.Status = http.StatusInternalServerError
		}
		if bq := (badQuery{}); de.Code == domain.EINVALID && errors.As(err, &bq) {
			p.Status = http.StatusBadRequest
		}
	case errors.As(err, &he):
		p.Status, p.Code = he.Code, codeOfStatus(he.Code)
		if msg, ok := he.Message.(string); ok {
			p.Detail = msg
		}
	default:
		p.Status, p.Code = http.StatusInternalServerError, domain.EINTERNAL
	}
	if p.Status >= 500 {
		s.log(c).Error().Err(err).Msg("request failed")
		if p.Code == domain.EINTERNAL {
			p.Detail = "Internal error."
		}
	}
	p.Title = http.StatusText(p.Status)
	h := c.Response().Header()
	if p.Status == http.StatusServiceUnavailable && h.Get("Retry-After") == "" {
		h.Set("Retry-After", retryAfterUnavailable)
	}
	h.Set(echo.HeaderContentType, "application/problem+json")
	if err := c.JSON(p.Status, p); err != nil {
		s.log(c).Error().Err(err).Msg("write error response")
	}
}

func codeOfStatus(status int) string {
	for code, st := range statusOf {
		if st == status && code != domain.EINVALID {
			return code
		}
	}
	if status < 500 {
		return domain.EINVALID
	}
	return domain.EINTERNAL
}

func (s *Server) log(c echo.Context) *zerolog.Logger {
	lc := s.cfg.Logger.With().Str("request_id", c.Response().Header().Get(echo.HeaderXRequestID))
	if sc := trace.SpanContextFromContext(c.Request().Context()); sc.IsValid() {
		lc = lc.Str("trace_id", sc.TraceID().String())
	}
	l := lc.Logger()
	return &l
}

func (s *Server) logRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		req := c.Request()
		level := zerolog.DebugLevel
		if c.Response().Status >= 500 {
			level = zerolog.WarnLevel
		}
		elapsed := time.Since(start)
		s.log(c).WithLevel(level).Str("method", req.Method).Str("ip", c.RealIP()).Str("path", req.URL.Path).
			Int("status", c.Response().Status).Dur("latency", elapsed).Msg("request")
		if s.cfg.Observer != nil {
			s.cfg.Observer.ObserveHTTP(req.Method, c.Path(), c.Response().Status, elapsed)
		}
		return nil
	}
}

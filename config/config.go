// Package config loads Vigil's settings from environment variables. Every setting has a
// development default so `make run` needs none; Load reports every invalid setting at once.
package config

import (
	"cmp"
	"errors"
	"fmt"
	"net/mail"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Environments Vigil runs in.
const (
	EnvDev  = "dev"
	EnvProd = "prod"
)

// Config holds every setting of every role. Roles read the parts they need.
type Config struct {
	Env              string        // VIGIL_ENV: dev | prod
	HTTPAddr         string        // HTTP_ADDR
	DatabaseURL      string        // DATABASE_URL
	DatabaseMaxConns int32         // DATABASE_MAX_CONNS
	DatabaseMinConns int32         // DATABASE_MIN_CONNS
	StatementTimeout time.Duration // DATABASE_STATEMENT_TIMEOUT
	NATSURL          string        // NATS_URL; empty starts the embedded server
	NATSEmbeddedAddr string        // NATS_EMBEDDED_ADDR
	DataDir          string        // VIGIL_DATA_DIR
	SMTPURL          string        // SMTP_URL
	MailFrom         string        // MAIL_FROM
	PublicBaseURL    string        // PUBLIC_BASE_URL
	PublicAppURL     string        // PUBLIC_APP_URL: a separate front end serving the pages links in emails open; default PublicBaseURL
	LogLevel         string        // LOG_LEVEL
	LogFormat        string        // LOG_FORMAT: json | console
	SecretKey        string        // VIGIL_SECRET_KEY: signs links; dev keeps a generated one in the data dir
	// DataKeys encrypt secrets at rest (webhook signing secrets): VIGIL_DATA_KEYS,
	// "id=base64key,..." with 32-byte keys; the first seals, all open. Dev without it: a
	// key generated once in the data dir.
	DataKeys string
	// SendGridWebhookKey is SENDGRID_WEBHOOK_PUBLIC_KEY: the verification key of SendGrid's
	// signed Event Webhook (base64 DER or PEM). Set, it enables POST /api/webhooks/email-events.
	SendGridWebhookKey string

	SchedulerTick          time.Duration // SCHEDULER_TICK
	SchedulerBatch         int           // SCHEDULER_BATCH
	SchedulerJitter        time.Duration // SCHEDULER_JITTER: the most a run of an interval monitor is delayed at random
	MailerConcurrency      int           // MAILER_CONCURRENCY: emails one mailer process sends at once
	WebhookConcurrency     int           // WEBHOOK_CONCURRENCY: webhook calls one mailer process makes at once
	SMTPMaxConns           int           // SMTP_MAX_CONNS: connections one process keeps open to the relay
	MatcherConcurrency     int           // MATCHER_CONCURRENCY: batches of state changes one matcher handles at once
	MatcherBatch           int           // MATCHER_BATCH: state changes matched in one transaction
	MailerBatch            int           // MAILER_BATCH: notification requests claimed in one transaction
	MailerLease            time.Duration // MAILER_LEASE: how long a mailer's claim protects a notification being sent
	RelayWorkers           int           // RELAY_WORKERS: outbox batches one process publishes at once
	SchedulerConcurrency   int           // SCHEDULER_CONCURRENCY: monitor changes one scheduler handles at once
	EvaluatorConcurrency   int           // EVALUATOR_CONCURRENCY: evaluations one evaluator runs at once
	RecorderConcurrency    int           // RECORDER_CONCURRENCY: batches of evaluations one recorder records at once
	RecorderBatch          int           // RECORDER_BATCH: evaluations recorded in one transaction
	MinInterval            time.Duration // MONITOR_MIN_INTERVAL
	MaxFailures            int           // MONITOR_MAX_FAILURES: consecutive failures before status error
	ExtractionMisses       int           // EXTRACTION_MISSES: misses in a row of a fact found before, on a changed source, before the owner is told
	FactsRetention         time.Duration // FACTS_RETENTION: facts partitions wholly older are dropped (400d)
	EvaluationsRetention   time.Duration // EVALUATIONS_RETENTION (180d)
	NotificationsRetention time.Duration // NOTIFICATIONS_RETENTION (180d)
	ArchiveDir             string        // VIGIL_ARCHIVE_DIR: facts partitions are archived here before they are dropped; "" drops them unarchived
	AllowPrivateSources    bool          // VIGIL_ALLOW_PRIVATE_SOURCES: allow loopback/private source addresses
	Chromium               string        // VIGIL_CHROMIUM: the browser that renders pages (default: chromium on PATH)
	RenderTabs             int           // RENDER_TABS: pages rendered at once
	RenderTimeout          time.Duration // RENDER_TIMEOUT: time limit of one rendered page
	SourceHostConcurrency  int           // SOURCE_HOST_CONCURRENCY: requests to one host at once (0: no bound)
	SourceHostDelay        time.Duration // SOURCE_HOST_DELAY: least time between two requests to one host
	SourceRobots           bool          // SOURCE_ROBOTS: obey robots.txt
	BotContact             string        // VIGIL_BOT_CONTACT: the URL in the User-Agent; default PUBLIC_BASE_URL
	DemoSource             bool          // VIGIL_DEMO_SOURCE: serve /demo/* from the API (dev default on)
	StreamReplicas         int           // NATS_STREAM_REPLICAS
	StreamMaxAge           time.Duration // NATS_STREAM_MAX_AGE

	AnthropicAPIKey  string         // ANTHROPIC_API_KEY
	AnthropicBaseURL string         // ANTHROPIC_BASE_URL
	AnthropicModel   string         // ANTHROPIC_MODEL
	OpenAIAPIKey     string         // OPENAI_API_KEY
	OpenAIBaseURL    string         // OPENAI_BASE_URL (any OpenAI-compatible server: Ollama, vLLM, llama.cpp)
	OpenAIModel      string         // OPENAI_MODEL
	AIProviders      []string       // VIGIL_AI_PROVIDERS: order; default every provider with a key, then fallback
	AIPrices         string         // AI_PRICES: "model=input/output,..." USD per million tokens, overrides the built-in table
	AIMonthlyBudget  float64        // AI_MONTHLY_BUDGET_USD: per user; 0 means no limit
	MetricsAddr      string         // METRICS_ADDR: where every role serves /metrics without credentials; empty: none (the API serves it to administrators)
	TracesEndpoint   string         // OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, or OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces: where spans go over OTLP/HTTP; empty: none sent
	TLSAtProxy       bool           // TLS_TERMINATED_AT_PROXY: clients reach Vigil over https through a trusted proxy, so PUBLIC_BASE_URL may be http in prod
	MonitorQuota     int            // MONITOR_QUOTA: monitors per user
	RateLimits       bool           // VIGIL_RATE_LIMITS: enforce the API's request limits (default on)
	TrustedProxies   []netip.Prefix // VIGIL_TRUSTED_PROXIES: CIDRs whose X-Forwarded-For is believed
	CORSOrigins      []string       // CORS_ORIGINS: origins (https://app.example) whose pages may call the API from browsers; empty: none

	// --- accounts ---
	Beta           bool   // VIGIL_BETA: on limits register and login to the beta allowlist (default off)
	JWTPrivateKeys string // VIGIL_JWT_PRIVATE_KEYS: Ed25519 private keys (PEM, or base64 separated by commas); the first signs, all verify. Dev without it: a key generated once in VIGIL_DATA_DIR
	JWTIssuer      string // VIGIL_JWT_ISSUER: "iss" of access tokens; default PUBLIC_BASE_URL
	BcryptCost     int    // BCRYPT_COST: 10-16, default 12
	// --- end accounts ---

	// google sign-in: enabled when GoogleClientID and GoogleClientSecret are set.
	GoogleClientID     string // GOOGLE_CLIENT_ID
	GoogleClientSecret string // GOOGLE_CLIENT_SECRET
	GoogleRedirectURL  string // GOOGLE_REDIRECT_URL: default PUBLIC_BASE_URL + /api/auth/google/callback
	GoogleIssuer       string // GOOGLE_ISSUER: default Google's; with the URLs below, points sign-in at another OIDC provider
	GoogleAuthURL      string // GOOGLE_AUTH_URL
	GoogleTokenURL     string // GOOGLE_TOKEN_URL
	GoogleJWKSURL      string // GOOGLE_JWKS_URL
}

// HTTPSOnly tells whether clients reach Vigil over https only, so browsers may be told
// to use nothing else (HSTS).
func (c Config) HTTPSOnly() bool {
	return hasScheme(c.PublicBaseURL, "https") || c.TLSAtProxy
}

// Load reads the configuration through getenv (os.Getenv in production, a map in tests).
func Load(getenv func(string) string) (Config, error) {
	var errs []error
	env := func(key, def string) string { return cmp.Or(strings.TrimSpace(getenv(key)), def) }
	dur := func(key string, def time.Duration) time.Duration {
		raw := getenv(key)
		if raw == "" {
			return def
		}
		d, err := time.ParseDuration(raw)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("%s: %q is not a positive duration such as 30s or 5m", key, raw))
			return def
		}
		return d
	}
	num := func(key string, def, min, max int) int {
		raw := getenv(key)
		if raw == "" {
			return def
		}
		n, err := strconv.Atoi(raw)
		if err != nil || n < min || n > max {
			errs = append(errs, fmt.Errorf("%s: %q must be a whole number from %d to %d", key, raw, min, max))
			return def
		}
		return n
	}
	boolean := func(key string, def bool) bool {
		raw := getenv(key)
		if raw == "" {
			return def
		}
		switch strings.ToLower(raw) {
		case "1", "true", "on", "yes":
			return true
		case "0", "false", "off", "no":
			return false
		}
		errs = append(errs, fmt.Errorf("%s: %q must be on or off", key, raw))
		return def
	}

	c := Config{Env: env("VIGIL_ENV", EnvDev)}
	dev := c.Env == EnvDev
	if c.Env != EnvDev && c.Env != EnvProd {
		errs = append(errs, fmt.Errorf("VIGIL_ENV: %q must be dev or prod", c.Env))
	}
	devDefault := func(v string) string {
		if dev {
			return v
		}
		return ""
	}
	c.HTTPAddr = env("HTTP_ADDR", ":8080")
	c.DatabaseURL = env("DATABASE_URL", devDefault("postgres://postgres@127.0.0.1:5432/vigil?sslmode=disable"))
	c.DatabaseMaxConns = int32(num("DATABASE_MAX_CONNS", 10, 1, 1000)) // #nosec G115 -- num keeps it within 1..1000
	c.DatabaseMinConns = int32(num("DATABASE_MIN_CONNS", 1, 0, 1000))  // #nosec G115 -- num keeps it within 0..1000
	c.StatementTimeout = dur("DATABASE_STATEMENT_TIMEOUT", 30*time.Second)
	c.NATSURL = env("NATS_URL", "")
	c.NATSEmbeddedAddr = env("NATS_EMBEDDED_ADDR", "127.0.0.1:4223")
	c.DataDir = env("VIGIL_DATA_DIR", "./data")
	c.SMTPURL = env("SMTP_URL", devDefault("smtp://127.0.0.1:1025"))
	c.MailFrom = env("MAIL_FROM", devDefault("Vigil <vigil@localhost>"))
	c.PublicBaseURL = env("PUBLIC_BASE_URL", devDefault("http://localhost:8080"))
	c.PublicAppURL = env("PUBLIC_APP_URL", c.PublicBaseURL)
	c.TLSAtProxy = boolean("TLS_TERMINATED_AT_PROXY", false)
	c.LogLevel = env("LOG_LEVEL", "info")
	c.LogFormat = env("LOG_FORMAT", map[bool]string{true: "console", false: "json"}[dev])
	c.SecretKey = env("VIGIL_SECRET_KEY", "")
	c.DataKeys = env("VIGIL_DATA_KEYS", "")
	c.SendGridWebhookKey = env("SENDGRID_WEBHOOK_PUBLIC_KEY", "")
	c.SchedulerTick = dur("SCHEDULER_TICK", time.Second)
	c.SchedulerBatch = num("SCHEDULER_BATCH", 500, 1, 100000)
	c.SchedulerJitter = dur("SCHEDULER_JITTER", 0)
	c.MailerConcurrency = num("MAILER_CONCURRENCY", 16, 1, 256)
	c.WebhookConcurrency = num("WEBHOOK_CONCURRENCY", 16, 1, 256)
	c.SMTPMaxConns = num("SMTP_MAX_CONNS", 16, 1, 256)
	c.MatcherConcurrency = num("MATCHER_CONCURRENCY", 2, 1, 64)
	c.MatcherBatch = num("MATCHER_BATCH", 100, 1, 500)
	c.MailerBatch = num("MAILER_BATCH", 50, 1, 500)
	c.MailerLease = dur("MAILER_LEASE", 2*time.Minute)
	c.RelayWorkers = num("RELAY_WORKERS", 4, 1, 32)
	c.SchedulerConcurrency = num("SCHEDULER_CONCURRENCY", 4, 1, 64)
	// Evaluations wait on sources and AI providers, not the CPU.
	c.EvaluatorConcurrency = num("EVALUATOR_CONCURRENCY", 128, 1, 512)
	c.RecorderConcurrency = num("RECORDER_CONCURRENCY", 2, 1, 64)
	c.RecorderBatch = num("RECORDER_BATCH", 200, 1, 1000)
	c.MinInterval = dur("MONITOR_MIN_INTERVAL", time.Minute)
	c.MaxFailures = num("MONITOR_MAX_FAILURES", 5, 1, 1000)
	c.ExtractionMisses = num("EXTRACTION_MISSES", 3, 1, 1000)
	// Retention periods are long: days are allowed ("400d") besides Go durations.
	days := func(key string, def time.Duration) time.Duration {
		raw := strings.TrimSpace(getenv(key))
		if n, ok := strings.CutSuffix(raw, "d"); ok {
			if d, err := strconv.Atoi(n); err == nil && d > 0 {
				return time.Duration(d) * 24 * time.Hour
			}
		}
		return dur(key, def)
	}
	c.FactsRetention = days("FACTS_RETENTION", 400*24*time.Hour)
	c.EvaluationsRetention = days("EVALUATIONS_RETENTION", 180*24*time.Hour)
	c.NotificationsRetention = days("NOTIFICATIONS_RETENTION", 180*24*time.Hour)
	c.ArchiveDir = env("VIGIL_ARCHIVE_DIR", "")
	c.AllowPrivateSources = boolean("VIGIL_ALLOW_PRIVATE_SOURCES", dev)
	c.Chromium = env("VIGIL_CHROMIUM", "")
	c.RenderTabs = num("RENDER_TABS", 2, 1, 64)
	c.RenderTimeout = dur("RENDER_TIMEOUT", 20*time.Second)
	c.SourceHostConcurrency = num("SOURCE_HOST_CONCURRENCY", 4, 0, 1000)
	c.SourceHostDelay = 250 * time.Millisecond
	if raw := strings.TrimSpace(getenv("SOURCE_HOST_DELAY")); raw != "" {
		// 0 turns the delay off, for hosts that are the operator's own.
		if d, err := time.ParseDuration(raw); err != nil || d < 0 {
			errs = append(errs, fmt.Errorf("SOURCE_HOST_DELAY: %q is not a duration such as 250ms, or 0", raw))
		} else {
			c.SourceHostDelay = d
		}
	}
	c.SourceRobots = boolean("SOURCE_ROBOTS", true)
	c.DemoSource = boolean("VIGIL_DEMO_SOURCE", dev)
	c.StreamReplicas = num("NATS_STREAM_REPLICAS", 1, 1, 5)
	c.StreamMaxAge = dur("NATS_STREAM_MAX_AGE", 7*24*time.Hour)

	c.AnthropicAPIKey = env("ANTHROPIC_API_KEY", "")
	c.AnthropicBaseURL = env("ANTHROPIC_BASE_URL", "https://api.anthropic.com")
	c.AnthropicModel = env("ANTHROPIC_MODEL", "claude-sonnet-4-5")
	c.OpenAIAPIKey = env("OPENAI_API_KEY", "")
	c.OpenAIBaseURL = env("OPENAI_BASE_URL", "https://api.openai.com/v1")
	c.OpenAIModel = env("OPENAI_MODEL", "gpt-4o-mini")
	c.AIPrices = env("AI_PRICES", "")
	c.MetricsAddr = env("METRICS_ADDR", "")
	c.TracesEndpoint = env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	if base := env("OTEL_EXPORTER_OTLP_ENDPOINT", ""); c.TracesEndpoint == "" && base != "" {
		c.TracesEndpoint = strings.TrimRight(base, "/") + "/v1/traces"
	}
	if c.TracesEndpoint != "" {
		if u, err := url.Parse(c.TracesEndpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("OTEL_EXPORTER_OTLP_ENDPOINT: %q is not an http(s) URL of an OTLP collector", c.TracesEndpoint))
		}
	}
	c.MonitorQuota = num("MONITOR_QUOTA", 100, 1, 1000000)
	c.RateLimits = boolean("VIGIL_RATE_LIMITS", true)
	if raw := getenv("CORS_ORIGINS"); raw != "" {
		for _, part := range strings.Split(raw, ",") {
			origin := strings.TrimSpace(part)
			u, err := url.Parse(origin)
			switch {
			case origin == "*":
				errs = append(errs, fmt.Errorf("CORS_ORIGINS: list the origins; * would let every site's pages use the API with a user's token"))
			case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.User != nil:
				errs = append(errs, fmt.Errorf("CORS_ORIGINS: %q is not an origin such as https://app.example", origin))
			case !dev && u.Scheme != "https":
				errs = append(errs, fmt.Errorf("CORS_ORIGINS: %q must be https when VIGIL_ENV=prod", origin))
			default:
				c.CORSOrigins = append(c.CORSOrigins, u.Scheme+"://"+strings.ToLower(u.Host))
			}
		}
	}
	if raw := getenv("VIGIL_TRUSTED_PROXIES"); raw != "" {
		for _, part := range strings.Split(raw, ",") {
			p, err := netip.ParsePrefix(strings.TrimSpace(part))
			if err != nil {
				errs = append(errs, fmt.Errorf("VIGIL_TRUSTED_PROXIES: %q is not a CIDR such as 10.0.0.0/8", strings.TrimSpace(part)))
				continue
			}
			c.TrustedProxies = append(c.TrustedProxies, p)
		}
	}
	if raw := getenv("AI_MONTHLY_BUDGET_USD"); raw != "" {
		b, err := strconv.ParseFloat(raw, 64)
		if err != nil || b < 0 {
			errs = append(errs, fmt.Errorf("AI_MONTHLY_BUDGET_USD: %q must be a non-negative amount in US dollars", raw))
		}
		c.AIMonthlyBudget = b
	}
	if raw := getenv("VIGIL_AI_PROVIDERS"); raw != "" {
		for _, p := range strings.Split(raw, ",") {
			p = strings.TrimSpace(strings.ToLower(p))
			switch p {
			case "claude", "openai", "fallback":
				c.AIProviders = append(c.AIProviders, p)
			default:
				errs = append(errs, fmt.Errorf("VIGIL_AI_PROVIDERS: unknown provider %q (claude, openai, fallback)", p))
			}
		}
	} else {
		if c.AnthropicAPIKey != "" {
			c.AIProviders = append(c.AIProviders, "claude")
		}
		if c.OpenAIAPIKey != "" {
			c.AIProviders = append(c.AIProviders, "openai")
		}
		c.AIProviders = append(c.AIProviders, "fallback")
	}
	for _, kv := range []struct{ key, val string }{{"ANTHROPIC_BASE_URL", c.AnthropicBaseURL}, {"OPENAI_BASE_URL", c.OpenAIBaseURL}} {
		if !hasScheme(kv.val, "http", "https") {
			errs = append(errs, fmt.Errorf("%s: must be an http(s) URL", kv.key))
		}
	}

	// --- accounts ---
	c.Beta = boolean("VIGIL_BETA", false)
	c.JWTPrivateKeys = env("VIGIL_JWT_PRIVATE_KEYS", "")
	c.JWTIssuer = env("VIGIL_JWT_ISSUER", c.PublicBaseURL)
	c.BotContact = env("VIGIL_BOT_CONTACT", c.PublicBaseURL)
	c.BcryptCost = num("BCRYPT_COST", 12, 10, 16)
	if c.JWTPrivateKeys == "" && !dev {
		errs = append(errs, fmt.Errorf("VIGIL_JWT_PRIVATE_KEYS: required when VIGIL_ENV=prod (Ed25519 private keys, PEM or base64; the first signs)"))
	}
	// --- end accounts ---

	// google sign-in
	c.GoogleClientID = env("GOOGLE_CLIENT_ID", "")
	c.GoogleClientSecret = env("GOOGLE_CLIENT_SECRET", "")
	c.GoogleRedirectURL = env("GOOGLE_REDIRECT_URL", strings.TrimRight(c.PublicBaseURL, "/")+"/api/auth/google/callback")
	c.GoogleIssuer = env("GOOGLE_ISSUER", "")
	c.GoogleAuthURL = env("GOOGLE_AUTH_URL", "")
	c.GoogleTokenURL = env("GOOGLE_TOKEN_URL", "")
	c.GoogleJWKSURL = env("GOOGLE_JWKS_URL", "")
	if (c.GoogleClientID == "") != (c.GoogleClientSecret == "") {
		errs = append(errs, fmt.Errorf("GOOGLE_CLIENT_ID, GOOGLE_CLIENT_SECRET: set both to enable Google sign-in, or neither"))
	}
	for _, kv := range []struct{ key, val string }{{"GOOGLE_REDIRECT_URL", c.GoogleRedirectURL}, {"GOOGLE_ISSUER", c.GoogleIssuer},
		{"GOOGLE_AUTH_URL", c.GoogleAuthURL}, {"GOOGLE_TOKEN_URL", c.GoogleTokenURL}, {"GOOGLE_JWKS_URL", c.GoogleJWKSURL}} {
		if kv.val != "" && c.GoogleEnabled() && !hasScheme(kv.val, "http", "https") {
			errs = append(errs, fmt.Errorf("%s: must be an http(s) URL", kv.key))
		}
	}

	required := map[string]string{"DATABASE_URL": c.DatabaseURL, "SMTP_URL": c.SMTPURL, "MAIL_FROM": c.MailFrom,
		"PUBLIC_BASE_URL": c.PublicBaseURL, "VIGIL_SECRET_KEY": c.SecretKey, "VIGIL_DATA_KEYS": c.DataKeys}
	for _, key := range []string{"DATABASE_URL", "SMTP_URL", "MAIL_FROM", "PUBLIC_BASE_URL", "VIGIL_SECRET_KEY", "VIGIL_DATA_KEYS"} {
		if required[key] == "" && !dev {
			errs = append(errs, fmt.Errorf("%s: required when VIGIL_ENV=prod", key))
		}
	}
	if c.SecretKey != "" && len(c.SecretKey) < 32 {
		errs = append(errs, fmt.Errorf("VIGIL_SECRET_KEY: must be at least 32 characters of random text"))
	}
	if c.DatabaseURL != "" && !hasScheme(c.DatabaseURL, "postgres", "postgresql") {
		errs = append(errs, fmt.Errorf("DATABASE_URL: must be a postgres:// URL"))
	}
	if c.NATSURL != "" && !hasScheme(c.NATSURL, "nats", "tls", "ws", "wss") {
		errs = append(errs, fmt.Errorf("NATS_URL: must be a nats:// URL, or empty to start the embedded server"))
	}
	if c.SMTPURL != "" && !hasScheme(c.SMTPURL, "smtp", "smtps") {
		errs = append(errs, fmt.Errorf("SMTP_URL: must be an smtp:// or smtps:// URL"))
	}
	if c.PublicBaseURL != "" && !hasScheme(c.PublicBaseURL, "http", "https") {
		errs = append(errs, fmt.Errorf("PUBLIC_BASE_URL: must be an http(s) URL"))
	}
	if !dev && hasScheme(c.PublicBaseURL, "http") && !c.TLSAtProxy {
		errs = append(errs, fmt.Errorf("PUBLIC_BASE_URL: must be https when VIGIL_ENV=prod (tokens and passwords would cross the network in clear), "+
			"or set TLS_TERMINATED_AT_PROXY=true when a trusted proxy in front serves it over https"))
	}
	if c.PublicAppURL != "" && !hasScheme(c.PublicAppURL, "http", "https") {
		errs = append(errs, fmt.Errorf("PUBLIC_APP_URL: must be an http(s) URL"))
	}
	if c.MailFrom != "" {
		if _, err := mail.ParseAddress(c.MailFrom); err != nil {
			errs = append(errs, fmt.Errorf("MAIL_FROM: %q is not an email address", c.MailFrom))
		}
	}
	if c.DatabaseMinConns > c.DatabaseMaxConns {
		errs = append(errs, fmt.Errorf("DATABASE_MIN_CONNS: %d exceeds DATABASE_MAX_CONNS %d", c.DatabaseMinConns, c.DatabaseMaxConns))
	}
	switch c.LogLevel {
	case "trace", "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("LOG_LEVEL: %q must be trace, debug, info, warn or error", c.LogLevel))
	}
	if c.LogFormat != "json" && c.LogFormat != "console" {
		errs = append(errs, fmt.Errorf("LOG_FORMAT: %q must be json or console", c.LogFormat))
	}
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("invalid configuration:\n%w", err)
	}
	return c, nil
}

// Dev reports whether Vigil runs in development mode.
func (c Config) Dev() bool { return c.Env == EnvDev }

// GoogleEnabled reports whether Google sign-in is configured (google sign-in).
func (c Config) GoogleEnabled() bool { return c.GoogleClientID != "" && c.GoogleClientSecret != "" }

func hasScheme(raw string, schemes ...string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	for _, s := range schemes {
		if u.Scheme == s {
			return true
		}
	}
	return false
}

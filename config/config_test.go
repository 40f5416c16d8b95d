package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/config"
)

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLoadDevDefaults(t *testing.T) {
	t.Parallel()
	c, err := config.Load(envOf(nil))
	if err != nil {
		t.Fatalf("dev defaults rejected: %v", err)
	}
	if c.Env != config.EnvDev || c.HTTPAddr != ":8080" || c.NATSURL != "" || c.NATSEmbeddedAddr != "127.0.0.1:4223" ||
		c.SMTPURL != "smtp://127.0.0.1:1025" || c.DataDir != "./data" || c.LogFormat != "console" ||
		c.MinInterval != time.Minute || !c.AllowPrivateSources || !c.DemoSource {
		t.Fatalf("unexpected dev defaults: %+v", c)
	}
}

func TestLoadReportsEveryError(t *testing.T) {
	t.Parallel()
	_, err := config.Load(envOf(map[string]string{
		"VIGIL_ENV":                   "prod",
		"LOG_LEVEL":                   "loud",
		"SCHEDULER_TICK":              "soon",
		"SCHEDULER_JITTER":            "-5s",
		"NATS_URL":                    "http://nats",
		"DATABASE_MAX_CONNS":          "0",
		"VIGIL_ALLOW_PRIVATE_SOURCES": "maybe",
	}))
	if err == nil {
		t.Fatal("invalid configuration accepted")
	}
	for _, key := range []string{"LOG_LEVEL", "SCHEDULER_TICK", "SCHEDULER_JITTER", "NATS_URL", "DATABASE_MAX_CONNS", "VIGIL_ALLOW_PRIVATE_SOURCES",
		"DATABASE_URL", "SMTP_URL", "MAIL_FROM", "PUBLIC_BASE_URL", "VIGIL_SECRET_KEY", "VIGIL_JWT_PRIVATE_KEYS", "VIGIL_DATA_KEYS"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("error does not mention %s:\n%v", key, err)
		}
	}
}

func TestLoadProd(t *testing.T) {
	t.Parallel()
	c, err := config.Load(envOf(map[string]string{
		"VIGIL_ENV": "prod", "DATABASE_URL": "postgres://db/vigil", "SMTP_URL": "smtps://relay:465",
		"MAIL_FROM": "alerts@vigil.example", "PUBLIC_BASE_URL": "https://vigil.example",
		"VIGIL_SECRET_KEY": strings.Repeat("s", 40), "NATS_URL": "nats://nats:4222",
		"VIGIL_JWT_PRIVATE_KEYS": "MC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF",
		"VIGIL_DATA_KEYS":        "2026=AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=",
	}))
	if err != nil {
		t.Fatalf("valid prod config rejected: %v", err)
	}
	if c.LogFormat != "json" || c.AllowPrivateSources || c.DemoSource {
		t.Fatalf("prod must default to json logs, no private sources, no demo: %+v", c)
	}
}

// TestProdRefusesPlainHTTP: ASVS 4.0.3 V9.1.1 (TLS for all client connectivity). In
// production a public URL on plain http is refused, unless the operator says a trusted
// proxy serves it over https; HSTS follows from either.
func TestProdRefusesPlainHTTP(t *testing.T) {
	t.Parallel()
	prod := func(extra map[string]string) map[string]string {
		env := map[string]string{
			"VIGIL_ENV": "prod", "DATABASE_URL": "postgres://db/vigil", "SMTP_URL": "smtps://relay:465",
			"MAIL_FROM": "alerts@vigil.example", "VIGIL_SECRET_KEY": strings.Repeat("s", 40), "NATS_URL": "nats://nats:4222",
			"VIGIL_JWT_PRIVATE_KEYS": "MC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF",
			"VIGIL_DATA_KEYS":        "2026=AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=",
		}
		for k, v := range extra {
			env[k] = v
		}
		return env
	}
	_, err := config.Load(envOf(prod(map[string]string{"PUBLIC_BASE_URL": "http://vigil.example"})))
	if err == nil || !strings.Contains(err.Error(), "PUBLIC_BASE_URL: must be https") || !strings.Contains(err.Error(), "TLS_TERMINATED_AT_PROXY") {
		t.Fatalf("plain http in prod: %v, want a refusal naming TLS_TERMINATED_AT_PROXY", err)
	}
	c, err := config.Load(envOf(prod(map[string]string{"PUBLIC_BASE_URL": "http://vigil.example", "TLS_TERMINATED_AT_PROXY": "true"})))
	if err != nil || !c.HTTPSOnly() {
		t.Fatalf("http behind a TLS proxy: %v, https only %v", err, c.HTTPSOnly())
	}
	c, err = config.Load(envOf(prod(map[string]string{"PUBLIC_BASE_URL": "https://vigil.example"})))
	if err != nil || !c.HTTPSOnly() {
		t.Fatalf("https: %v, https only %v", err, c.HTTPSOnly())
	}
	c, err = config.Load(envOf(nil))
	if err != nil || c.HTTPSOnly() {
		t.Fatalf("dev on http://localhost: %v, https only %v (want false)", err, c.HTTPSOnly())
	}
}

// TestCORSOrigins: ASVS 4.0.3 V14.5.3. CORS is off unless origins are listed; a wildcard, a
// URL with a path, or plain http in prod is refused.
func TestCORSOrigins(t *testing.T) {
	t.Parallel()
	c, err := config.Load(envOf(nil))
	if err != nil || len(c.CORSOrigins) != 0 {
		t.Fatalf("default: %v %v, want none", c.CORSOrigins, err)
	}
	c, err = config.Load(envOf(map[string]string{"CORS_ORIGINS": "https://App.Example, http://localhost:5173"}))
	if err != nil || strings.Join(c.CORSOrigins, " ") != "https://app.example http://localhost:5173" {
		t.Fatalf("two origins: %v %v", c.CORSOrigins, err)
	}
	for _, bad := range []string{"*", "https://app.example/path", "app.example", "ftp://app.example"} {
		if _, err := config.Load(envOf(map[string]string{"CORS_ORIGINS": bad})); err == nil || !strings.Contains(err.Error(), "CORS_ORIGINS") {
			t.Errorf("%q: %v, want a refusal naming CORS_ORIGINS", bad, err)
		}
	}
}

// TestTracesEndpoint: off by default; the traces URL as given, or the base URL's
// /v1/traces as OTLP specifies; anything but an http(s) URL is refused by name.
func TestTracesEndpoint(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{nil, ""},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/"}, "http://collector:4318/v1/traces"},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://otlp.example/traces"}, "https://otlp.example/traces"},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://b:4318/v1/traces"},
			"http://b:4318/v1/traces"},
	} {
		c, err := config.Load(envOf(tc.env))
		if err != nil || c.TracesEndpoint != tc.want {
			t.Errorf("%v: %q (%v), want %q", tc.env, c.TracesEndpoint, err, tc.want)
		}
	}
	for _, bad := range []string{"collector:4318", "grpc://collector:4317", "http://"} {
		if _, err := config.Load(envOf(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": bad})); err == nil ||
			!strings.Contains(err.Error(), "OTEL_EXPORTER_OTLP_ENDPOINT") {
			t.Errorf("%q: %v, want a refusal naming OTEL_EXPORTER_OTLP_ENDPOINT", bad, err)
		}
	}
}

func TestLoadAIProviders(t *testing.T) {
	t.Parallel()
	c, err := config.Load(envOf(nil))
	if err != nil || strings.Join(c.AIProviders, ",") != "fallback" {
		t.Fatalf("no keys: providers %v (%v), want fallback only", c.AIProviders, err)
	}
	c, err = config.Load(envOf(map[string]string{"ANTHROPIC_API_KEY": "k1", "OPENAI_API_KEY": "k2"}))
	if err != nil || strings.Join(c.AIProviders, ",") != "claude,openai,fallback" {
		t.Fatalf("both keys: providers %v (%v)", c.AIProviders, err)
	}
	c, err = config.Load(envOf(map[string]string{"VIGIL_AI_PROVIDERS": "openai, fallback", "AI_MONTHLY_BUDGET_USD": "2.5"}))
	if err != nil || strings.Join(c.AIProviders, ",") != "openai,fallback" || c.AIMonthlyBudget != 2.5 {
		t.Fatalf("explicit order: %v %v (%v)", c.AIProviders, c.AIMonthlyBudget, err)
	}
	_, err = config.Load(envOf(map[string]string{"VIGIL_AI_PROVIDERS": "gemini", "AI_MONTHLY_BUDGET_USD": "-1", "OPENAI_BASE_URL": "ollama"}))
	for _, key := range []string{"VIGIL_AI_PROVIDERS", "AI_MONTHLY_BUDGET_USD", "OPENAI_BASE_URL"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("error does not mention %s: %v", key, err)
		}
	}
}

func TestLoadAccountSettings(t *testing.T) {
	t.Parallel()
	c, err := config.Load(envOf(nil))
	if err != nil {
		t.Fatalf("dev defaults rejected: %v", err)
	}
	if c.Beta || c.BcryptCost != 12 || c.JWTPrivateKeys != "" || c.JWTIssuer != c.PublicBaseURL || c.JWTIssuer == "" {
		t.Fatalf("account defaults: beta %v cost %d keys %q issuer %q", c.Beta, c.BcryptCost, c.JWTPrivateKeys, c.JWTIssuer)
	}
	c, err = config.Load(envOf(map[string]string{"VIGIL_BETA": "on", "BCRYPT_COST": "14",
		"VIGIL_JWT_ISSUER": "https://auth.vigil.example", "VIGIL_JWT_PRIVATE_KEYS": " k1,k2 "}))
	if err != nil {
		t.Fatalf("valid account settings rejected: %v", err)
	}
	if !c.Beta || c.BcryptCost != 14 || c.JWTIssuer != "https://auth.vigil.example" || c.JWTPrivateKeys != "k1,k2" {
		t.Fatalf("account settings: %+v", c)
	}
	for key, bad := range map[string]string{"VIGIL_BETA": "perhaps", "BCRYPT_COST": "9"} {
		_, err := config.Load(envOf(map[string]string{key: bad}))
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%s=%s: error %v does not name the setting", key, bad, err)
		}
	}
	_, err = config.Load(envOf(map[string]string{"BCRYPT_COST": "17"}))
	if err == nil || !strings.Contains(err.Error(), "BCRYPT_COST") {
		t.Errorf("BCRYPT_COST=17 accepted: %v", err)
	}
}

func TestLoadSourceSettings(t *testing.T) {
	t.Parallel()
	c, err := config.Load(envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.SourceHostConcurrency != 4 || c.SourceHostDelay != 250*time.Millisecond || !c.SourceRobots || c.BotContact != c.PublicBaseURL ||
		c.Chromium != "" || c.RenderTabs != 2 || c.RenderTimeout != 20*time.Second {
		t.Fatalf("unexpected source defaults: %+v", c)
	}
	c, err = config.Load(envOf(map[string]string{"SOURCE_HOST_DELAY": "0", "SOURCE_HOST_CONCURRENCY": "0", "SOURCE_ROBOTS": "false",
		"VIGIL_BOT_CONTACT": "https://ops.example/bot", "VIGIL_CHROMIUM": "/opt/chromium", "RENDER_TABS": "8", "RENDER_TIMEOUT": "45s"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.SourceHostConcurrency != 0 || c.SourceHostDelay != 0 || c.SourceRobots || c.BotContact != "https://ops.example/bot" ||
		c.Chromium != "/opt/chromium" || c.RenderTabs != 8 || c.RenderTimeout != 45*time.Second {
		t.Fatalf("settings not read: %+v", c)
	}
	_, err = config.Load(envOf(map[string]string{"SOURCE_HOST_DELAY": "-1s", "RENDER_TABS": "0", "SOURCE_HOST_CONCURRENCY": "x"}))
	for _, key := range []string{"SOURCE_HOST_DELAY", "RENDER_TABS", "SOURCE_HOST_CONCURRENCY"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("error does not mention %s: %v", key, err)
		}
	}
}

func TestRetentionPeriods(t *testing.T) {
	t.Parallel()
	c, err := config.Load(envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.FactsRetention != 400*24*time.Hour || c.EvaluationsRetention != 180*24*time.Hour || c.NotificationsRetention != 180*24*time.Hour {
		t.Fatalf("retention defaults: %v %v %v", c.FactsRetention, c.EvaluationsRetention, c.NotificationsRetention)
	}
	c, err = config.Load(envOf(map[string]string{"FACTS_RETENTION": "30d", "EVALUATIONS_RETENTION": "72h", "VIGIL_ARCHIVE_DIR": "/tmp/a"}))
	if err != nil || c.FactsRetention != 30*24*time.Hour || c.EvaluationsRetention != 72*time.Hour || c.ArchiveDir != "/tmp/a" {
		t.Fatalf("retention settings: %v %v %q %v", c.FactsRetention, c.EvaluationsRetention, c.ArchiveDir, err)
	}
	if _, err := config.Load(envOf(map[string]string{"NOTIFICATIONS_RETENTION": "forever"})); err == nil {
		t.Fatal("a retention that is not a duration is accepted")
	}
}

package httpapi_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/ai/aitest"
	"github.com/vigilhq/vigil/adapters/ai/chain"
	"github.com/vigilhq/vigil/adapters/ai/claude"
	"github.com/vigilhq/vigil/adapters/ai/fallback"
	"github.com/vigilhq/vigil/adapters/google"
	"github.com/vigilhq/vigil/adapters/httpapi"
	"github.com/vigilhq/vigil/adapters/keyring"
	"github.com/vigilhq/vigil/adapters/password"
	"github.com/vigilhq/vigil/adapters/postgres"
	"github.com/vigilhq/vigil/adapters/postgres/pgtest"
	"github.com/vigilhq/vigil/adapters/sendgrid"
	"github.com/vigilhq/vigil/adapters/smtp"
	"github.com/vigilhq/vigil/adapters/smtp/smtptest"
	"github.com/vigilhq/vigil/adapters/source"
	"github.com/vigilhq/vigil/adapters/tokens"
	"github.com/vigilhq/vigil/adapters/webhook"
	"github.com/vigilhq/vigil/domain/account"
	"github.com/vigilhq/vigil/domain/app"
	"github.com/vigilhq/vigil/domain/event"
	"github.com/vigilhq/vigil/emailtpl"
)

// monitorsBundle is the real stack behind /api/monitors: Postgres stores, accounts with
// JWTs, and the AI chain with Claude (a fake server speaking its wire format, backed by the
// rules) failing over to the rules.
type monitorsBundle struct {
	pool      *pgxpool.Pool
	h         http.Handler
	claude    *aitest.FakeServer
	source    *httptest.Server
	ann, bob  string // access tokens
	annUserID string
	mail      *smtptest.Server  // receives recipient confirmation emails
	eventKey  *ecdsa.PrivateKey // signs email provider events
	links     *tokens.Links     // signs the tokens of page links
	welcome   *smtptest.Server  // receives welcome emails
}

func setupMonitorsAPI(t *testing.T) *monitorsBundle {
	t.Helper()
	return setupMonitorsAPIWith(t, stackOptions{})
}

// stackOptions vary the stack of a test.
type stackOptions struct {
	rulesOnly bool        // the rules alone as the AI: what a user without an AI key meets
	renderer  app.Fetcher // renders pages; nil: this Vigil has no browser
	// strictSources guards monitor sources as production does (no private addresses);
	// off, sources on loopback (the test servers) are allowed.
	strictSources bool
}

// setupMonitorsAPIWith is setupMonitorsAPI with opts.
func setupMonitorsAPIWith(t *testing.T, opts stackOptions) *monitorsBundle {
	t.Helper()
	b, cfg := newStackWith(t, opts)
	b.h = httpapi.New(cfg).Handler()
	for _, u := range []struct {
		email string
		token *string
	}{{"ann@example.com", &b.ann}, {"bob@example.com", &b.bob}} {
		rec := b.do(t, http.MethodPost, "/api/auth/register", fmt.Sprintf(`{"email":%q,"password":%q,"name":"N"}`, u.email, goodPassword), "", nil)
		require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
		resp := decode[httpapi.TokenResponse](t, rec)
		*u.token = resp.AccessToken
		if u.email == "ann@example.com" {
			b.annUserID = resp.User.ID
		}
	}
	return b
}

// fullServer is the server with every optional route enabled, for the OpenAPI tests.
func fullServer(t *testing.T) *httpapi.Server {
	t.Helper()
	_, cfg := newStack(t)
	cfg.DemoSource = true
	cfg.Metrics = http.NotFoundHandler()
	cfg.UnsubscribeTokens, cfg.Unsubscriber = fakeTokens{}, &recordingUnsubscriber{}
	// Routes only: these are never called here (their own tests exercise them).
	cfg.APIKeyManager, cfg.Admin = (*account.APIKeyService)(nil), (*account.AdminService)(nil)
	cfg.PasswordResets, cfg.GoogleAccounts = (*account.Service)(nil), (*account.Service)(nil)
	cfg.Google = (*google.Client)(nil)
	return httpapi.New(cfg)
}

// newStack builds the real dependencies of the API on a fresh database.
func newStack(t *testing.T) (*monitorsBundle, httpapi.Config) {
	t.Helper()
	return newStackWith(t, stackOptions{})
}

func newStackWith(t *testing.T, opts stackOptions) (*monitorsBundle, httpapi.Config) {
	t.Helper()
	pool := pgtest.New(t)
	hasher, err := password.New(password.CostMin)
	require.NoError(t, err)
	_, key, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	keys, err := tokens.NewKeySet([]ed25519.PrivateKey{key}, tokens.JWTConfig{Issuer: "https://vigil.test", Now: time.Now})
	require.NoError(t, err)
	welcomeBox := smtptest.Start(t)
	welcomeRenderer, err := emailtpl.New()
	require.NoError(t, err)
	welcomeSender, err := smtp.NewSender(smtp.Config{URL: welcomeBox.URL(), From: "Vigil <vigil@example.com>"})
	require.NoError(t, err)
	welcomeLinks, err := tokens.NewLinks([]byte(strings.Repeat("l", 32)))
	require.NoError(t, err)
	welcome, err := smtp.NewWelcomeMailer(welcomeRenderer, welcomeSender, welcomeLinks, "http://vigil.test", time.Now, zerolog.Nop())
	require.NoError(t, err)
	t.Cleanup(func() { welcome.Wait(context.Background()) })
	accounts, err := account.NewService(account.Deps{
		Users: postgres.NewAccountStore(pool, "vigil/test"), Sessions: postgres.NewSessionStore(pool),
		Audit: postgres.NewAuditStore(pool), Allowlist: postgres.NewAllowlistStore(pool),
		Hasher: hasher, Tokens: keys, Clock: clockFunc(time.Now),
		Welcome: welcome, Verifications: postgres.NewAccountStore(pool, "vigil/test"),
	}, account.Config{})
	require.NoError(t, err)

	b := &monitorsBundle{pool: pool, claude: aitest.NewClaudeServer(t, fallback.New(time.Now)), welcome: welcomeBox}
	cp, err := claude.New(claude.Config{APIKey: "sk-ant-test", BaseURL: b.claude.URL()}, time.Now)
	require.NoError(t, err)
	members := []chain.Named{{Name: "claude", Label: "Claude", Provider: cp}, {Name: "fallback", Label: "rules", Provider: fallback.New(time.Now)}}
	if opts.rulesOnly {
		members = members[1:]
	}
	ai, err := chain.New(members,
		chain.Config{BackoffBase: time.Millisecond, BackoffMax: 5 * time.Millisecond, Logger: zerolog.Nop(), Exact: fallback.New(time.Now)})
	require.NoError(t, err)
	audit := postgres.NewAuditStore(pool)
	backtests := app.NewBacktestService(postgres.NewMonitorStore(pool, "vigil/test"), postgres.NewStatsStore(pool),
		app.NewTriggerService(postgres.NewTriggerStore(pool, "vigil/test"), audit, time.Now), fallback.New(time.Now), fallback.New(time.Now), time.Now)
	svc := app.NewMonitorService(postgres.NewMonitorStore(pool, "vigil/test"), ai, source.New(source.Config{AllowPrivate: true}, time.Now),
		ai, time.Now, app.MonitorConfig{MinInterval: time.Minute, Quota: 50, Audit: audit, CheckSelector: fallback.CheckSelector,
			Renderer: opts.renderer, Backtests: backtests, Guard: source.NewGuard(source.Config{AllowPrivate: !opts.strictSources})})
	actions, mail, box, links := newActionService(t, pool, audit)
	b.links = links
	b.mail = mail
	eventKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	b.eventKey = eventKey
	der, err := x509.MarshalPKIXPublicKey(&eventKey.PublicKey)
	require.NoError(t, err)
	verifier, err := sendgrid.NewVerifier(base64.StdEncoding.EncodeToString(der))
	require.NoError(t, err)
	suppressions := postgres.NewSuppressionStore(pool)
	cfg := httpapi.Config{Logger: zerolog.Nop(), TranslateError: postgres.Translate,
		Accounts: accounts, AccessTokens: keys, Monitors: svc, PromptExamples: fallback.Examples,
		Series:    app.NewSeriesService(postgres.NewMonitorStore(pool, "vigil/test"), postgres.NewFactStore(pool), time.Now),
		Stats:     app.NewStatsService(postgres.NewMonitorStore(pool, "vigil/test"), postgres.NewStatsStore(pool), time.Now),
		Overviews: app.NewOverviewService(postgres.NewStatsStore(pool), adminService(t, pool), time.Now),
		Exports:   app.NewExportService(postgres.NewMonitorStore(pool, "vigil/test"), postgres.NewExportStore(pool), time.Now),
		Backtests: backtests,
		Actions:   actions, Triggers: app.NewTriggerService(postgres.NewTriggerStore(pool, "vigil/test"), audit, time.Now),
		Notifications:    app.NewNotificationService(postgres.NewNotificationStore(pool, box, "vigil/test"), time.Now),
		EmailEventSource: sendgrid.Source{Verifier: verifier}, EmailEvents: app.NewEmailEvents(suppressions),
		Suppressions: app.NewSuppressionService(suppressions, postgres.NewAccountStore(pool, "vigil/test"), audit, time.Now),
		PageTokens:   links, EmailVerifier: accounts}

	b.source = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"price": 64.5}`)
	}))
	t.Cleanup(b.source.Close)
	return b, cfg
}

// newActionService builds the actions use cases as production does, with an in-process
// SMTP server for confirmation emails and the SSRF guard on (private targets refused).
func newActionService(t *testing.T, pool *pgxpool.Pool, audit *postgres.AuditStore) (*app.ActionService, *smtptest.Server, *keyring.Keyring, *tokens.Links) {
	t.Helper()
	mail := smtptest.Start(t)
	renderer, err := emailtpl.New()
	require.NoError(t, err)
	sender, err := smtp.NewSender(smtp.Config{URL: mail.URL(), From: "Vigil <vigil@example.com>"})
	require.NoError(t, err)
	mailer, err := smtp.NewRecipientMailer(renderer, sender, "http://vigil.test", zerolog.Nop())
	require.NoError(t, err)
	t.Cleanup(func() { mailer.Wait(context.Background()) })
	links, err := tokens.NewLinks([]byte(strings.Repeat("l", 32)))
	require.NoError(t, err)
	dataKey := make([]byte, keyring.KeySize)
	_, err = rand.Read(dataKey)
	require.NoError(t, err)
	box, err := keyring.New([]keyring.Key{{ID: "test", Secret: dataKey}})
	require.NoError(t, err)
	store := postgres.NewActionStore(pool, box)
	signer, err := tokens.NewUnsubscribe([]byte(strings.Repeat("u", 32)))
	require.NoError(t, err)
	senders := map[string]app.NotificationSender{
		app.ChannelEmail:   smtp.NewNotifier(renderer, sender, tokens.NewPageLinks(links, signer, "http://vigil.test", time.Now)),
		app.ChannelWebhook: webhook.New(webhook.Config{BaseURL: "http://vigil.test"}),
	}
	svc, err := app.NewActionService(app.ActionDeps{Store: store, Recipients: store, Mailer: mailer, Tokens: links,
		Guard: source.NewGuard(source.Config{}), Audit: audit, Now: time.Now, Secrets: store, Senders: senders})
	require.NoError(t, err)
	return svc, mail, box, links
}

type clockFunc func() time.Time

func (f clockFunc) Now() time.Time { return f() }

func (b *monitorsBundle) do(t *testing.T, method, path, body, token string, header map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	var req *http.Request
	if body == "" {
		req = httptest.NewRequest(method, path, nil)
	} else {
		req = httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	b.h.ServeHTTP(rec, req)
	checkResponseAgainstSpec(t, req, rec)
	return rec
}

func (b *monitorsBundle) create(t *testing.T, token, body string) httpapi.MonitorJSON {
	t.Helper()
	rec := b.do(t, http.MethodPost, "/api/monitors", body, token, nil)
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	return decode[httpapi.MonitorJSON](t, rec)
}

func (b *monitorsBundle) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, b.pool.QueryRow(context.Background(), sql, args...).Scan(&n))
	return n
}

func TestCreateMonitorClassifiesInTheRequest(t *testing.T) {
	t.Parallel()
	b := setupMonitorsAPI(t)
	rec := b.do(t, http.MethodPost, "/api/monitors", fmt.Sprintf(`{"prompt":"Tell me when the price drops below $80","source_url":%q,"interval":"15m"}`, b.source.URL), b.ann, nil)
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	m := decode[httpapi.MonitorJSON](t, rec)
	require.Equal(t, "/api/monitors/"+m.ID, rec.Header().Get("Location"))
	require.Equal(t, `"1"`, rec.Header().Get("ETag"))
	require.Equal(t, "claude", m.ClassifiedBy.Provider)
	require.Equal(t, "current_state", m.Kind)
	require.Contains(t, m.Spec.Condition, "price")
	require.Equal(t, "unknown", m.State)
	require.Equal(t, "active", m.Status)
	require.Equal(t, "15m", m.Interval)
	require.WithinDuration(t, time.Now(), m.NextRunAt, time.Minute, "evaluated at once")
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM outbox WHERE type = $1 AND subject = $2`, event.TypeMonitorCreated, "vigil.monitors."+m.ID+".created"))

	// Claude down: the rules classify instead, and say so.
	b.claude.FailNext(10, 529, nil, aitest.ClaudeErrorBody(529, "Overloaded"))
	m = b.create(t, b.ann, fmt.Sprintf(`{"prompt":"price above 100","source_url":%q}`, b.source.URL))
	require.Equal(t, "fallback", m.ClassifiedBy.Provider)
	require.Contains(t, strings.Join(m.Spec.Warnings, " "), "Claude is unavailable")
	require.Equal(t, "1h", m.Interval, "the suggested interval when none is given")

	// A prompt nobody can monitor: 422 naming what was not understood, with examples.
	rec = b.do(t, http.MethodPost, "/api/monitors", `{"prompt":"Write me a poem about the sea"}`, b.ann, nil)
	p := requireProblem(t, rec, http.StatusUnprocessableEntity, "invalid")
	require.NotEmpty(t, p.Errors["prompt"])
	require.Equal(t, fallback.Examples, p.Examples)
}

func TestCreateMonitorValidation(t *testing.T) {
	t.Parallel()
	b := setupMonitorsAPI(t)
	long := strings.Repeat("x", 2001)
	for body, field := range map[string]string{
		`{"prompt":"hi"}`:                  "prompt",
		fmt.Sprintf(`{"prompt":%q}`, long): "prompt",
		`{"prompt":"price below 80","name":"` + strings.Repeat("n", 201) + `"}`: "name",
		`{"prompt":"price below 80","interval":"10s"}`:                          "interval",
		`{"prompt":"price below 80","interval":"31d"}`:                          "interval",
		`{"prompt":"price below 80","interval":"soon"}`:                         "interval",
		`{"prompt":"price below 80","cron":"every day"}`:                        "cron",
		`{"prompt":"price below 80","timezone":"Mars/Olympus"}`:                 "timezone",
		`{"prompt":"price below 80","source_url":"ftp://x.example"}`:            "source_url",
		`{"prompt":"price below 80","status":"paused"}`:                         "status",
		`{"name":"no prompt"}`:                                                  "prompt",
	} {
		rec := b.do(t, http.MethodPost, "/api/monitors", body, b.ann, nil)
		p := requireProblem(t, rec, http.StatusUnprocessableEntity, "invalid")
		require.NotEmpty(t, p.Errors[field], "%s: errors %v", body, p.Errors)
	}
	rec := b.do(t, http.MethodPost, "/api/monitors", `{"prompt":"price below 80","colour":"red"}`, b.ann, nil)
	p := requireProblem(t, rec, http.StatusBadRequest, "invalid")
	require.Contains(t, p.Detail, "colour")
	rec = b.do(t, http.MethodPost, "/api/monitors", `{"prompt":80}`, b.ann, nil)
	p = requireProblem(t, rec, http.StatusBadRequest, "invalid")
	require.Contains(t, p.Detail, `"prompt" must be a JSON string`)
	rec = b.do(t, http.MethodPatch, "/api/monitors/x", `{"status":["paused"]}`, b.ann, nil)
	p = requireProblem(t, rec, http.StatusBadRequest, "invalid")
	require.Contains(t, p.Detail, `"status"`)
	rec = b.do(t, http.MethodPost, "/api/monitors", `{"prompt":"price below 80"}`, "", nil)
	require.Equal(t, http.StatusUnauthorized, rec.Code)
	require.Equal(t, 0, b.count(t, `SELECT count(*) FROM monitors`))
}

func TestMonitorLifecycleOverHTTP(t *testing.T) {
	t.Parallel()
	b := setupMonitorsAPI(t)
	m := b.create(t, b.ann, fmt.Sprintf(`{"prompt":"Tell me when the price drops below $80","name":"Widget","source_url":%q}`, b.source.URL))
	path := "/api/monitors/" + m.ID

	rec := b.do(t, http.MethodGet, path, "", b.ann, nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	detail := decode[httpapi.MonitorDetailJSON](t, rec)
	require.Equal(t, "Widget", detail.Name)
	require.Nil(t, detail.LastEvaluation)
	etag := rec.Header().Get("ETag")

	// PUT with the current ETag, then a stale one.
	rec = b.do(t, http.MethodPut, path, fmt.Sprintf(`{"prompt":"price below 70","name":"Widget","source_url":%q,"interval":"30m"}`, b.source.URL), b.ann,
		map[string]string{"If-Match": etag})
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	updated := decode[httpapi.MonitorJSON](t, rec)
	require.Equal(t, "price < 70", updated.Spec.Condition)
	require.Equal(t, `"2"`, rec.Header().Get("ETag"))
	rec = b.do(t, http.MethodPatch, path, `{"name":"late"}`, b.ann, map[string]string{"If-Match": etag})
	requireProblem(t, rec, http.StatusPreconditionFailed, "invalid")
	rec = b.do(t, http.MethodPatch, path, `{"status":"paused"}`, b.ann, nil)
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, "paused", decode[httpapi.MonitorJSON](t, rec).Status)
	require.Equal(t, 2, b.count(t, `SELECT count(*) FROM outbox WHERE type = $1`, event.TypeMonitorUpdated))

	// List, filtered and paginated.
	for i := 0; i < 3; i++ {
		b.create(t, b.ann, fmt.Sprintf(`{"prompt":"price above %d","source_url":%q}`, 100+i, b.source.URL))
	}
	rec = b.do(t, http.MethodGet, "/api/monitors?status=paused", "", b.ann, nil)
	require.Len(t, decode[httpapi.MonitorListJSON](t, rec).Monitors, 1)
	seen := 0
	next := ""
	for {
		q := url.Values{"limit": {"2"}, "sort": {"name"}}
		if next != "" {
			q.Set("cursor", next)
		}
		rec = b.do(t, http.MethodGet, "/api/monitors?"+q.Encode(), "", b.ann, nil)
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		page := decode[httpapi.MonitorListJSON](t, rec)
		seen += len(page.Monitors)
		if page.NextCursor == nil {
			break
		}
		next = *page.NextCursor
	}
	require.Equal(t, 4, seen)
	rec = b.do(t, http.MethodGet, "/api/monitors?sort=-name&cursor="+next, "", b.ann, nil)
	requireProblem(t, rec, http.StatusUnprocessableEntity, "invalid") // a cursor of another sort
	rec = b.do(t, http.MethodGet, "/api/monitors?limit=500", "", b.ann, nil)
	requireProblem(t, rec, http.StatusUnprocessableEntity, "invalid")

	// Validate (changes nothing), evaluate now, history.
	before := b.count(t, `SELECT count(*) FROM outbox`)
	rec = b.do(t, http.MethodPost, path+"/validate", `{"prompt":"price below 60"}`, b.ann, nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	v := decode[httpapi.ValidationJSON](t, rec)
	require.Equal(t, "inactive", v.Verdict.State)
	require.Equal(t, 64.5, v.Facts[0].Value)
	rec = b.do(t, http.MethodPost, "/api/monitors/validate", fmt.Sprintf(`{"prompt":"price below 80","source_url":%q}`, b.source.URL), b.ann, nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Equal(t, "active", decode[httpapi.ValidationJSON](t, rec).Verdict.State)
	require.Equal(t, before, b.count(t, `SELECT count(*) FROM outbox`))
	rec = b.do(t, http.MethodPost, path+"/evaluate", "", b.ann, nil)
	require.Equal(t, http.StatusAccepted, rec.Code)
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM outbox WHERE type = $1`, event.TypeEvaluationDue))
	rec = b.do(t, http.MethodGet, path+"/history?changed=true&limit=10", "", b.ann, nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Empty(t, decode[httpapi.HistoryJSON](t, rec).Evaluations)
	rec = b.do(t, http.MethodGet, path+"/history?from=yesterday", "", b.ann, nil)
	requireProblem(t, rec, http.StatusUnprocessableEntity, "invalid")

	// Delete: 204, then gone.
	rec = b.do(t, http.MethodDelete, path, "", b.ann, nil)
	require.Equal(t, http.StatusNoContent, rec.Code)
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM outbox WHERE type = $1`, event.TypeMonitorDeleted))
	rec = b.do(t, http.MethodGet, path, "", b.ann, nil)
	requireProblem(t, rec, http.StatusNotFound, "not_found")
}

// TestMonitorIsolation checks every route with another user's monitor: always 404.
func TestMonitorIsolation(t *testing.T) {
	t.Parallel()
	b := setupMonitorsAPI(t)
	m := b.create(t, b.ann, fmt.Sprintf(`{"prompt":"price below 80","source_url":%q}`, b.source.URL))
	path := "/api/monitors/" + m.ID
	for _, r := range []struct{ method, path, body string }{
		{http.MethodGet, path, ""},
		{http.MethodPut, path, `{"prompt":"price below 1"}`},
		{http.MethodPatch, path, `{"status":"paused"}`},
		{http.MethodDelete, path, ""},
		{http.MethodPost, path + "/validate", `{}`},
		{http.MethodGet, path + "/history", ""},
		{http.MethodPost, path + "/evaluate", ""},
	} {
		rec := b.do(t, r.method, r.path, r.body, b.bob, nil)
		requireProblem(t, rec, http.StatusNotFound, "not_found")
	}
	rec := b.do(t, http.MethodGet, "/api/monitors", "", b.bob, nil)
	require.Empty(t, decode[httpapi.MonitorListJSON](t, rec).Monitors)
	rec = b.do(t, http.MethodGet, path, "", b.ann, nil)
	require.Equal(t, "active", decode[httpapi.MonitorDetailJSON](t, rec).Status, "bob changed nothing")
}

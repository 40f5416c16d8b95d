package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/postgres"
	"github.com/vigilhq/vigil/adapters/postgres/pgtest"
	"github.com/vigilhq/vigil/adapters/smtp/smtptest"
	"github.com/vigilhq/vigil/domain/monitor"
	"github.com/vigilhq/vigil/emailtpl"
	"github.com/vigilhq/vigil/streams/natstest"
)

// syncBuffer collects a process's output for the failure report.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "vigil")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Run(), "build vigil")
	return bin
}

// TestEndToEnd runs two replicas of each of the real binary's six roles as separate
// processes against an embedded
// NATS server, a fresh database, a recording SMTP server, a webhook receiver and a test
// source. Through the HTTP API only, it registers, creates a webhook action and a monitor
// with two triggers (email and webhook), then flips the source value twice and checks
// exactly one email and one signed webhook per state change.
func TestEndToEnd(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bin := buildBinary(t)
	natsURL, _ := natstest.Start(t)
	dbURL := pgtest.NewURL(t)
	mail := smtptest.Start(t)

	src, price := priceSource(t)
	hooks := newHookReceiver(t)

	apiAddr := freeAddr(t)
	env := pipelineEnv(t, dbURL, natsURL, mail.URL(), "LOG_LEVEL=info", "HTTP_ADDR="+apiAddr, "VIGIL_RATE_LIMITS=off")
	// Two replicas of every role: nothing may be scheduled, evaluated or sent twice.
	roles := newRoles(t, bin, env)
	var procs []*exec.Cmd
	for replica := range 2 {
		for _, role := range []string{"api", "scheduler", "evaluator", "recorder", "matcher", "mailer"} {
			var extra []string
			if role == "api" && replica == 1 {
				extra = []string{"HTTP_ADDR=" + freeAddr(t)}
			}
			procs = append(procs, roles.start(role, extra...))
		}
	}
	pool, err := postgres.Open(ctx, postgres.PoolConfig{URL: dbURL, AppName: "vigil-e2e"})
	require.NoError(t, err)
	t.Cleanup(pool.Close)

	api := newAPIClient(t, "http://"+apiAddr)
	api.waitReady(t)
	api.register(t, "ann@example.com")
	var actions struct {
		Actions []struct {
			ID        string `json:"id"`
			IsDefault bool   `json:"is_default"`
		} `json:"actions"`
	}
	api.call(t, http.MethodGet, "/api/actions", "", http.StatusOK, &actions)
	require.Len(t, actions.Actions, 1)
	require.True(t, actions.Actions[0].IsDefault)
	var hook struct {
		ID     string `json:"id"`
		Secret string `json:"secret"`
	}
	api.call(t, http.MethodPost, "/api/actions", fmt.Sprintf(`{"name":"Receiver","type":"webhook","config":{"url":%q}}`, hooks.URL+"/hook"), http.StatusCreated, &hook)
	require.NotEmpty(t, hook.Secret)
	hooks.setSecret(t, hook.Secret)
	var m struct {
		ID       string `json:"id"`
		Triggers []struct {
			ActionID string `json:"action_id"`
		} `json:"triggers"`
	}
	api.call(t, http.MethodPost, "/api/monitors", fmt.Sprintf(`{"prompt":"Tell me when the price drops below $80","source_url":%q,"interval":"1s",
		"triggers":[{"action_id":%q,"condition":"state_change"},{"action_id":%q,"condition":"state_change"}]}`,
		src.URL+"/price", actions.Actions[0].ID, hook.ID), http.StatusCreated, &m)
	require.Len(t, m.Triggers, 2)

	waitState := func(want monitor.State) {
		t.Helper()
		deadline := time.Now().Add(45 * time.Second)
		for {
			var state string
			require.NoError(t, pool.QueryRow(ctx, `SELECT state FROM monitors WHERE id = $1`, m.ID).Scan(&state))
			if state == string(want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("monitor state is %s, want %s", state, want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// The first email is the welcome: registration confirms the address.
	welcome := mail.WaitFor(t, 1, 30*time.Second)[0]
	require.Equal(t, emailtpl.WelcomeSubject, welcome.Subject)
	require.Contains(t, welcome.Text, "http://vigil.example/verify-email?token=")

	waitState(monitor.StateInactive) // 100 is not below 80; unknown -> inactive fires no state_change trigger
	price.Store(50)
	waitState(monitor.StateActive)
	first := mail.WaitFor(t, 2, 30*time.Second)[1:]
	hooks.waitFor(t, 1, 30*time.Second)
	price.Store(100)
	waitState(monitor.StateInactive)
	mail.WaitFor(t, 3, 30*time.Second)
	hooks.waitFor(t, 2, 30*time.Second)

	// Let several more evaluations run: no state change, so no more mail.
	evaluationsAfter := countRows(t, pool, `SELECT count(*) FROM evaluations WHERE monitor_id = $1`, m.ID) + 3
	deadline := time.Now().Add(30 * time.Second)
	for countRows(t, pool, `SELECT count(*) FROM evaluations WHERE monitor_id = $1`, m.ID) < evaluationsAfter {
		require.True(t, time.Now().Before(deadline), "evaluations stopped")
		time.Sleep(100 * time.Millisecond)
	}
	msgs := mail.Messages()[1:]
	var sent []string
	for _, m := range mail.Messages() {
		sent = append(sent, m.Subject+" "+m.Header.Get("Message-ID"))
	}
	require.Len(t, msgs, 2, "exactly one email per state change; sent: %q", sent)
	require.Equal(t, []string{"ann@example.com"}, first[0].To)
	require.Contains(t, msgs[0].Text+msgs[0].HTML, "50")
	require.Contains(t, msgs[1].Text+msgs[1].HTML, "100")
	got := hooks.deliveries()
	require.Len(t, got, 2, "exactly one webhook per state change")
	for i, want := range [][2]string{{"inactive", "active"}, {"active", "inactive"}} {
		require.Empty(t, got[i].verifyErr, "signature verified by the Standard Webhooks reference library")
		require.Equal(t, want[0], got[i].from)
		require.Equal(t, want[1], got[i].to)
		require.Equal(t, m.ID, got[i].monitorID)
	}
	require.NotEqual(t, got[0].id, got[1].id)

	// Two schedulers never claimed two slots within one interval (the first run, at
	// creation, comes before the monitor's phase in its interval).
	require.Zero(t, countRows(t, pool, `
		SELECT count(*) FROM (SELECT scheduled_for - lag(scheduled_for) OVER (ORDER BY scheduled_for) AS gap,
		                             row_number() OVER (ORDER BY scheduled_for) AS n
		                      FROM evaluations WHERE monitor_id = $1) g WHERE n > 2 AND gap < interval '900 milliseconds'`, m.ID),
		"a slot scheduled twice")

	// The history: three transitions (unknown->inactive->active->inactive), one fact per
	// successful evaluation with the value seen, and four sent notifications.
	require.Equal(t, 3, countRows(t, pool, `SELECT count(*) FROM evaluations WHERE monitor_id = $1 AND changed`, m.ID))
	require.Equal(t, 0, countRows(t, pool, `SELECT count(*) FROM evaluations WHERE monitor_id = $1 AND status <> 'succeeded'`, m.ID))
	require.Equal(t,
		countRows(t, pool, `SELECT count(*) FROM evaluations WHERE monitor_id = $1`, m.ID),
		countRows(t, pool, `SELECT count(*) FROM facts WHERE monitor_id = $1 AND key = 'price'`, m.ID))
	require.Equal(t, 0, countRows(t, pool, `
		SELECT count(*) FROM evaluations e JOIN facts f ON f.evaluation_id = e.id
		WHERE e.monitor_id = $1 AND (e.state = 'active') <> (f.value_number < 80)`, m.ID))
	require.Equal(t, 4, countRows(t, pool, `SELECT count(*) FROM notifications WHERE monitor_id = $1 AND status = 'sent'`, m.ID))
	require.Equal(t, 0, countRows(t, pool, `SELECT count(*) FROM notifications WHERE monitor_id = $1 AND status <> 'sent'`, m.ID))
	var list struct {
		Notifications []struct {
			Status string `json:"status"`
		} `json:"notifications"`
	}
	api.call(t, http.MethodGet, "/api/notifications?monitor_id="+m.ID, "", http.StatusOK, &list)
	require.Len(t, list.Notifications, 4, "the delivery status API shows them")
	outboxDeadline := time.Now().Add(10 * time.Second)
	for countRows(t, pool, `SELECT count(*) FROM outbox WHERE published_at IS NULL`) > 0 {
		require.True(t, time.Now().Before(outboxDeadline), "outbox not drained")
		time.Sleep(100 * time.Millisecond)
	}

	// Forgot-password requests are queued and handled by an API process's worker: one
	// email, for the account that exists, and an empty queue.
	api.call(t, http.MethodPost, "/api/auth/password/forgot", `{"email":"ann@example.com"}`, http.StatusAccepted, nil)
	api.call(t, http.MethodPost, "/api/auth/password/forgot", `{"email":"nobody@example.com"}`, http.StatusAccepted, nil)
	reset := mail.WaitFor(t, 4, 30*time.Second)[3]
	require.Equal(t, []string{"ann@example.com"}, reset.To)
	require.Contains(t, reset.Text, "http://vigil.example/reset-password?token=")
	queueDeadline := time.Now().Add(10 * time.Second)
	for countRows(t, pool, `SELECT count(*) FROM password_reset_requests`) > 0 {
		require.True(t, time.Now().Before(queueDeadline), "forgot-password queue not drained")
		time.Sleep(100 * time.Millisecond)
	}
	require.Equal(t, 2, countRows(t, pool, `SELECT count(*) FROM audit_log WHERE action = 'password_reset_requested'`))
	time.Sleep(500 * time.Millisecond)
	require.Len(t, mail.Messages(), 4, "no email for the unknown address, none twice")

	// Every role stops cleanly on SIGTERM.
	for _, p := range procs {
		require.NoError(t, p.Process.Signal(syscall.SIGTERM))
	}
	for i, p := range procs {
		done := make(chan error, 1)
		go func() { done <- p.Wait() }()
		select {
		case err := <-done:
			require.NoError(t, err, "role %d exit", i)
		case <-time.After(20 * time.Second):
			t.Fatalf("role %s did not stop within 20s of SIGTERM", p.Args[1])
		}
	}
	for role, out := range roles.logs {
		require.NotContains(t, strings.ToLower(out.String()), `"level":"error"`, "%s logged an error", role)
	}
}

// roles runs roles of the real binary as separate processes, keeps each one's output for
// the failure report and kills what is still running when the test ends.
type roles struct {
	t    *testing.T
	bin  string
	env  []string
	logs map[string]*syncBuffer
}

func newRoles(t *testing.T, bin string, env []string) *roles {
	// The package's process tests run side by side, a dozen roles each, against one server
	// whose max_connections is 100: each role keeps to a few connections, as a small
	// deployment would, and the settings given after these still win.
	env = append([]string{"DATABASE_MAX_CONNS=3", "DATABASE_MIN_CONNS=0"}, env...)
	r := &roles{t: t, bin: bin, env: env, logs: map[string]*syncBuffer{}}
	t.Cleanup(func() {
		if t.Failed() {
			for name, out := range r.logs {
				t.Logf("---- %s output ----\n%s", name, out)
			}
		}
	})
	return r
}

// pipelineEnv is the environment of role processes running a pipeline in these tests: dev
// settings on the given database, NATS and SMTP server, a fresh data directory, monitors
// evaluated every second on local sources polled as often (faster than the polite default
// allows), then extra settings, which win over these.
func pipelineEnv(t *testing.T, dbURL, natsURL, smtpURL string, extra ...string) []string {
	return append(append(os.Environ(),
		"VIGIL_ENV=dev", "DATABASE_URL="+dbURL, "NATS_URL="+natsURL, "SMTP_URL="+smtpURL,
		"MAIL_FROM=Vigil <vigil@example.com>", "PUBLIC_BASE_URL=http://vigil.example", "LOG_FORMAT=json",
		"SCHEDULER_TICK=100ms", "MONITOR_MIN_INTERVAL=1s", "VIGIL_DATA_DIR="+t.TempDir(), "VIGIL_ALLOW_PRIVATE_SOURCES=true",
		"SOURCE_HOST_DELAY=0"), extra...)
}

// start runs one role with the environment plus extra settings.
func (r *roles) start(role string, extra ...string) *exec.Cmd {
	r.t.Helper()
	out := &syncBuffer{}
	r.logs[fmt.Sprintf("%s-%d", role, len(r.logs))] = out
	cmd := exec.Command(r.bin, role)
	cmd.Env, cmd.Stdout, cmd.Stderr = append(append([]string(nil), r.env...), extra...), out, out
	require.NoError(r.t, cmd.Start(), "start %s", role)
	r.t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}

// freeAddr returns a loopback address with a port nobody listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// apiClient calls the API of the api role, as the caller of traceparent's trace when set.
type apiClient struct {
	base, token, traceparent string
}

func newAPIClient(t *testing.T, base string) *apiClient { return &apiClient{base: base} }

func (c *apiClient) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(c.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		require.True(t, time.Now().Before(deadline), "the API did not become ready: %v", err)
		time.Sleep(100 * time.Millisecond)
	}
}

// register signs up a user with the address, named Ann, and calls as that user from then on.
func (c *apiClient) register(t *testing.T, email string) {
	t.Helper()
	var auth struct {
		AccessToken string `json:"access_token"`
	}
	c.call(t, http.MethodPost, "/api/auth/register", fmt.Sprintf(`{"email":%q,"password":"a long passphrase for tests","name":"Ann"}`, email),
		http.StatusCreated, &auth)
	c.token = auth.AccessToken
}

func (c *apiClient) call(t *testing.T, method, path, body string, want int, out any) {
	t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	require.NoError(t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.traceparent != "" {
		req.Header.Set("traceparent", c.traceparent)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, want, resp.StatusCode, "%s %s: %s", method, path, raw)
	if out != nil {
		require.NoError(t, json.Unmarshal(raw, out), string(raw))
	}
}

// priceSource serves {"product":"widget","price":N} with N from price, 100 at first, until
// the test ends.
func priceSource(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	price := &atomic.Int64{}
	price.Store(100)
	src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"product":"widget","price":%d}`, price.Load())
	}))
	t.Cleanup(src.Close)
	return src, price
}

// hookReceiver records webhook deliveries, verified with the Standard Webhooks reference
// library once the secret is known.
type hookReceiver struct {
	*httptest.Server
	mu       sync.Mutex
	verifier *standardwebhooks.Webhook
	got      []hookDelivery
	arrived  chan struct{}
}

type hookDelivery struct {
	id, verifyErr, from, to, monitorID string
}

func newHookReceiver(t *testing.T) *hookReceiver {
	t.Helper()
	h := &hookReceiver{arrived: make(chan struct{}, 100)}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		payload, _ := io.ReadAll(r.Body)
		var body struct {
			Data struct {
				Monitor struct {
					ID string `json:"id"`
				} `json:"monitor"`
				Transition struct {
					From string `json:"from"`
					To   string `json:"to"`
				} `json:"transition"`
			} `json:"data"`
		}
		_ = json.Unmarshal(payload, &body)
		d := hookDelivery{id: r.Header.Get("webhook-id"), from: body.Data.Transition.From, to: body.Data.Transition.To, monitorID: body.Data.Monitor.ID}
		h.mu.Lock()
		if h.verifier == nil {
			d.verifyErr = "no secret yet"
		} else if err := h.verifier.Verify(payload, r.Header); err != nil {
			d.verifyErr = err.Error()
		}
		h.got = append(h.got, d)
		h.mu.Unlock()
		h.arrived <- struct{}{}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hookReceiver) setSecret(t *testing.T, secret string) {
	t.Helper()
	v, err := standardwebhooks.NewWebhook(secret)
	require.NoError(t, err)
	h.mu.Lock()
	h.verifier = v
	h.mu.Unlock()
}

func (h *hookReceiver) deliveries() []hookDelivery {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hookDelivery(nil), h.got...)
}

func (h *hookReceiver) waitFor(t *testing.T, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for len(h.deliveries()) < n {
		select {
		case <-h.arrived:
		case <-deadline:
			t.Fatalf("got %d webhook deliveries within %s, want %d", len(h.deliveries()), timeout, n)
		}
	}
}

func countRows(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(context.Background(), sql, args...).Scan(&n))
	return n
}

package main_test

import (
	"bytes"
	"context"
	"fmt"
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
	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/ai/fallback"
	"github.com/vigilhq/vigil/adapters/postgres"
	"github.com/vigilhq/vigil/adapters/postgres/pgtest"
	"github.com/vigilhq/vigil/adapters/smtp/smtptest"
	"github.com/vigilhq/vigil/domain/app"
	"github.com/vigilhq/vigil/domain/monitor"
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

// TestEndToEnd runs the real binary's five pipeline roles as separate processes against an
// embedded NATS server, a fresh database, a recording SMTP server and a test source, flips
// the source value twice and checks exactly one email per state change.
func TestEndToEnd(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bin := buildBinary(t)
	natsURL, _ := natstest.Start(t)
	dbURL := pgtest.NewURL(t)
	mail := smtptest.Start(t)

	var price atomic.Int64
	price.Store(100)
	src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"product":"widget","price":%d}`, price.Load())
	}))
	t.Cleanup(src.Close)

	env := append(os.Environ(),
		"VIGIL_ENV=dev", "DATABASE_URL="+dbURL, "NATS_URL="+natsURL, "SMTP_URL="+mail.URL(),
		"MAIL_FROM=Vigil <vigil@example.com>", "PUBLIC_BASE_URL=http://vigil.example",
		"LOG_FORMAT=json", "LOG_LEVEL=info", "SCHEDULER_TICK=100ms", "MONITOR_MIN_INTERVAL=1s",
		"HTTP_ADDR=127.0.0.1:0", "VIGIL_DATA_DIR="+t.TempDir(), "VIGIL_ALLOW_PRIVATE_SOURCES=true",
	)
	logs := map[string]*syncBuffer{}
	var procs []*exec.Cmd
	for _, role := range []string{"scheduler", "evaluator", "recorder", "matcher", "mailer"} {
		out := &syncBuffer{}
		logs[role] = out
		cmd := exec.Command(bin, role)
		cmd.Env, cmd.Stdout, cmd.Stderr = env, out, out
		require.NoError(t, cmd.Start(), "start %s", role)
		procs = append(procs, cmd)
	}
	t.Cleanup(func() {
		for _, p := range procs {
			p.Process.Kill()
		}
	})
	defer func() {
		if t.Failed() {
			for role, out := range logs {
				t.Logf("---- %s output ----\n%s", role, out)
			}
		}
	}()

	pool, err := postgres.Open(ctx, postgres.PoolConfig{URL: dbURL, AppName: "vigil-e2e"})
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	seed := postgres.NewSeedStore(pool)
	userID, _, err := seed.EnsureUser(ctx, "ann@example.com", "Ann", "user", "")
	require.NoError(t, err)
	actionID, err := seed.EnsureEmailAction(ctx, userID, "Email me")
	require.NoError(t, err)
	monitors := app.NewMonitors(postgres.NewMonitorStore(pool, "vigil/e2e"), fallback.New(time.Now), time.Now, time.Second)
	m, err := monitors.Create(ctx, monitor.Draft{UserID: userID, Prompt: "Tell me when the price drops below $80",
		SourceURL: src.URL + "/price", Interval: time.Second})
	require.NoError(t, err)
	require.NoError(t, seed.EnsureTrigger(ctx, m.ID, actionID, "state_change", "every_time"))

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

	waitState(monitor.StateInactive) // 100 is not below 80; unknown -> inactive fires no state_change trigger
	price.Store(50)
	waitState(monitor.StateActive)
	first := mail.WaitFor(t, 1, 30*time.Second)
	price.Store(100)
	waitState(monitor.StateInactive)
	mail.WaitFor(t, 2, 30*time.Second)

	// Let several more evaluations run: no state change, so no more mail.
	evaluationsAfter := countRows(t, pool, `SELECT count(*) FROM evaluations WHERE monitor_id = $1`, m.ID) + 3
	deadline := time.Now().Add(30 * time.Second)
	for countRows(t, pool, `SELECT count(*) FROM evaluations WHERE monitor_id = $1`, m.ID) < evaluationsAfter {
		require.True(t, time.Now().Before(deadline), "evaluations stopped")
		time.Sleep(100 * time.Millisecond)
	}
	msgs := mail.Messages()
	require.Len(t, msgs, 2, "exactly one email per state change")
	require.Equal(t, []string{"ann@example.com"}, first[0].To)
	require.Contains(t, msgs[0].Text+msgs[0].HTML, "50")
	require.Contains(t, msgs[1].Text+msgs[1].HTML, "100")

	// The history: three transitions (unknown->inactive->active->inactive), one fact per
	// successful evaluation with the value seen, and two sent notifications.
	require.Equal(t, 3, countRows(t, pool, `SELECT count(*) FROM evaluations WHERE monitor_id = $1 AND changed`, m.ID))
	require.Equal(t, 0, countRows(t, pool, `SELECT count(*) FROM evaluations WHERE monitor_id = $1 AND status <> 'succeeded'`, m.ID))
	require.Equal(t,
		countRows(t, pool, `SELECT count(*) FROM evaluations WHERE monitor_id = $1`, m.ID),
		countRows(t, pool, `SELECT count(*) FROM facts WHERE monitor_id = $1 AND key = 'price'`, m.ID))
	require.Equal(t, 0, countRows(t, pool, `
		SELECT count(*) FROM evaluations e JOIN facts f ON f.evaluation_id = e.id
		WHERE e.monitor_id = $1 AND (e.state = 'active') <> (f.value_number < 80)`, m.ID))
	require.Equal(t, 2, countRows(t, pool, `SELECT count(*) FROM notifications WHERE monitor_id = $1 AND status = 'sent'`, m.ID))
	require.Equal(t, 0, countRows(t, pool, `SELECT count(*) FROM notifications WHERE monitor_id = $1 AND status <> 'sent'`, m.ID))
	require.Equal(t, 0, countRows(t, pool, `SELECT count(*) FROM outbox WHERE published_at IS NULL`))

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
	for role, out := range logs {
		require.NotContains(t, strings.ToLower(out.String()), `"level":"error"`, "%s logged an error", role)
	}
}

func countRows(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(context.Background(), sql, args...).Scan(&n))
	return n
}

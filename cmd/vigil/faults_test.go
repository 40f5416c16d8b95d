package main_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/postgres"
	"github.com/vigilhq/vigil/adapters/postgres/pgtest"
	"github.com/vigilhq/vigil/adapters/smtp/smtptest"
	"github.com/vigilhq/vigil/streams"
	"github.com/vigilhq/vigil/streams/natstest"
)

// faultsEnabled gates the fault tests: they stop and start servers of their own and take
// minutes, so `make test-faults` runs them, not `make test`.
func faultsEnabled(t *testing.T) {
	t.Helper()
	if os.Getenv("VIGIL_FAULTS") != "1" {
		t.Skip("fault test: run with make test-faults (VIGIL_FAULTS=1)")
	}
}

// privatePostgres is a PostgreSQL cluster of the test's own, which it may stop and start.
type privatePostgres struct {
	t            *testing.T
	bin, dir     string
	port         int
	asPostgresOS bool // root: run the server as the postgres OS user, which it requires
}

func startPrivatePostgres(t *testing.T) *privatePostgres {
	t.Helper()
	out, err := exec.Command("pg_config", "--bindir").Output()
	bin := strings.TrimSpace(string(out))
	if err != nil || bin == "" {
		matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
		require.NotEmpty(t, matches, "no PostgreSQL server binaries (pg_config --bindir, /usr/lib/postgresql/*/bin)")
		bin = filepath.Dir(matches[len(matches)-1])
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	base, err := os.MkdirTemp("", "vigil-faults-pg-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(base) })
	p := &privatePostgres{t: t, bin: bin, dir: filepath.Join(base, "data"), port: port, asPostgresOS: os.Getuid() == 0}
	if p.asPostgresOS {
		require.NoError(t, exec.Command("chown", "postgres", base).Run())
		require.NoError(t, os.Chmod(base, 0o755))
	}
	p.run("initdb", "-D", p.dir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
	p.start()
	t.Cleanup(func() { _ = p.exec("pg_ctl", "-D", p.dir, "-m", "immediate", "stop") })
	return p
}

func (p *privatePostgres) exec(tool string, args ...string) error {
	name := filepath.Join(p.bin, tool)
	var cmd *exec.Cmd
	if p.asPostgresOS {
		cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--", name}, args...)...)
	} else {
		cmd = exec.Command(name, args...)
	}
	cmd.Dir = "/"
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %v: %w: %s", tool, args, err, out)
	}
	return nil
}

func (p *privatePostgres) run(tool string, args ...string) {
	p.t.Helper()
	require.NoError(p.t, p.exec(tool, args...))
}

func (p *privatePostgres) start() {
	p.t.Helper()
	p.run("pg_ctl", "-D", p.dir, "-w", "-l", filepath.Join(filepath.Dir(p.dir), "server.log"), "-o",
		fmt.Sprintf("-p %d -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off", p.port), "start")
}

func (p *privatePostgres) stop() {
	p.t.Helper()
	p.run("pg_ctl", "-D", p.dir, "-m", "fast", "-w", "stop")
}

func (p *privatePostgres) url(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", p.port, db)
}

// TestPostgresOutage: with the database stopped, the API answers 503 with Retry-After, never
// 500, within 2 s; once it is back, the pipeline records evaluations again within 30 s.
func TestPostgresOutage(t *testing.T) {
	faultsEnabled(t)
	ctx := context.Background()
	pg := startPrivatePostgres(t)
	bin := buildBinary(t)
	natsURL, _ := natstest.Start(t)
	admin, err := postgres.Open(ctx, postgres.PoolConfig{URL: pg.url("postgres"), MaxConns: 2})
	require.NoError(t, err)
	_, err = admin.Exec(ctx, `CREATE DATABASE vigil`)
	require.NoError(t, err)
	admin.Close()
	dbURL := pg.url("vigil")
	src, _ := priceSource(t)
	apiAddr := freeAddr(t)
	env := append(os.Environ(), "VIGIL_ENV=dev", "DATABASE_URL="+dbURL, "NATS_URL="+natsURL, "HTTP_ADDR="+apiAddr,
		"VIGIL_DATA_DIR="+t.TempDir(), "VIGIL_ALLOW_PRIVATE_SOURCES=true", "VIGIL_RATE_LIMITS=off", "SCHEDULER_TICK=100ms",
		"MONITOR_MIN_INTERVAL=1s", "SOURCE_HOST_DELAY=0", "LOG_FORMAT=json", "SMTP_URL=smtp://127.0.0.1:1", "MAIL_FROM=v@example.com")
	migrate := exec.Command(bin, "migrate", "up")
	migrate.Env = env
	out, err := migrate.CombinedOutput()
	require.NoError(t, err, "%s", out)
	roles := newRoles(t, bin, env)
	for _, role := range []string{"api", "scheduler", "evaluator", "recorder", "matcher", "mailer"} {
		roles.start(role)
	}
	api := newAPIClient(t, "http://"+apiAddr)
	api.waitReady(t)
	api.register(t, "ann@example.com")
	var m struct {
		ID string `json:"id"`
	}
	api.call(t, http.MethodPost, "/api/monitors", fmt.Sprintf(`{"prompt":"Tell me when the price drops below $80","source_url":%q,"interval":"1s"}`, src.URL+"/price"),
		http.StatusCreated, &m)
	pool, err := postgres.Open(ctx, postgres.PoolConfig{URL: dbURL, MaxConns: 2})
	require.NoError(t, err)
	evaluations := func() int {
		var n int
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM evaluations WHERE monitor_id = $1`, m.ID).Scan(&n))
		return n
	}
	require.Eventually(t, func() bool { return evaluations() >= 2 }, 30*time.Second, 200*time.Millisecond, "evaluations before the outage")
	pool.Close()

	pg.stop()
	stopped := time.Now()
	client := &http.Client{Timeout: 5 * time.Second}
	var got503 time.Duration
	for time.Since(stopped) < 10*time.Second {
		req, _ := http.NewRequest(http.MethodGet, "http://"+apiAddr+"/api/monitors/"+m.ID, nil)
		req.Header.Set("Authorization", "Bearer "+api.token)
		resp, err := client.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.NotEqual(t, http.StatusInternalServerError, resp.StatusCode, "a 500 during the outage")
		if resp.StatusCode == http.StatusServiceUnavailable {
			require.NotEmpty(t, resp.Header.Get("Retry-After"))
			require.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
			got503 = time.Since(stopped)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	require.NotZero(t, got503, "no 503 within 10 s of the outage")
	require.Less(t, got503, 2*time.Second, "the API answered 503 only after %s", got503)
	t.Logf("503 with Retry-After %s after PostgreSQL stopped", got503.Round(time.Millisecond))
	// An outage, not a blip: for 3 s every route that needs the database answers 503.
	statuses := map[int]int{}
	for time.Since(stopped) < got503+3*time.Second {
		for _, path := range []string{"/api/monitors", "/api/monitors/" + m.ID + "/history", "/api/me", "/api/notifications"} {
			req, _ := http.NewRequest(http.MethodGet, "http://"+apiAddr+path, nil)
			req.Header.Set("Authorization", "Bearer "+api.token)
			resp, err := client.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			statuses[resp.StatusCode]++
			require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "%s during the outage", path)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("during the outage: %v", statuses)

	pg.start()
	restarted := time.Now()
	pool, err = postgres.Open(ctx, postgres.PoolConfig{URL: dbURL, MaxConns: 2})
	require.NoError(t, err)
	defer pool.Close()
	before := evaluations()
	require.Eventually(t, func() bool { return evaluations() >= before+2 }, 30*time.Second, 200*time.Millisecond,
		"the pipeline did not resume within 30 s of the restart")
	t.Logf("pipeline recording again %s after PostgreSQL restarted", time.Since(restarted).Round(time.Millisecond))
	api.call(t, http.MethodGet, "/api/monitors/"+m.ID, "", http.StatusOK, nil)
}

// flipPrice flips the price at a source between 100 and 50 every period until the returned
// stop is called.
func flipPrice(price interface {
	Load() int64
	Store(int64)
}, period time.Duration) (stop func()) {
	done, flipped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(flipped)
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				price.Store(150 - price.Load())
			}
		}
	}()
	return func() { close(done); <-flipped }
}

// TestRolesKilledAtRandom: two replicas of every pipeline role run while ten monitors flip
// state every 1.5 s, and a random role process is killed (SIGKILL) every second or two,
// then started again. Once the pipeline drains: no evaluation lost (every due slot in the
// stream evaluated and recorded, no claimed slot left unpublished), no slot scheduled twice,
// every state change notified exactly once, one email each.
func TestRolesKilledAtRandom(t *testing.T) {
	faultsEnabled(t)
	ctx := context.Background()
	bin := buildBinary(t)
	natsURL, _ := natstest.Start(t)
	dbURL := pgtest.NewURL(t)
	mail := smtptest.Start(t)
	src, price := priceSource(t)
	env := pipelineEnv(t, dbURL, natsURL, mail.URL(),
		"MAILER_LEASE=3s") // a killed mailer's claims are taken over within seconds
	roles := newRoles(t, bin, env)
	names := []string{"scheduler", "evaluator", "recorder", "matcher", "mailer"}
	procs := map[int]*exec.Cmd{}
	for i := range 2 * len(names) {
		procs[i] = roles.start(names[i%len(names)])
	}
	pool, err := postgres.Open(ctx, postgres.PoolConfig{URL: dbURL, AppName: "vigil-chaos-test", MaxConns: 3})
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	const monitors = 10
	seedFlippingMonitors(t, pool, src.URL, monitors)
	stopFlipping := flipPrice(price, 1500*time.Millisecond)

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1)) // #nosec G404 -- which process dies, not a secret
	killed, kills := map[string]int{}, 0
	for end := time.Now().Add(40 * time.Second); time.Now().Before(end); {
		time.Sleep(time.Duration(1000+rng.IntN(1000)) * time.Millisecond)
		i := rng.IntN(len(procs))
		role := names[i%len(names)]
		require.NoError(t, procs[i].Process.Signal(syscall.SIGKILL))
		_ = procs[i].Wait()
		killed[role]++
		kills++
		time.Sleep(time.Duration(rng.IntN(500)) * time.Millisecond)
		procs[i] = roles.start(role)
	}
	before := stateChanges(t, pool)
	require.Eventually(t, func() bool { return stateChanges(t, pool) >= before+monitors }, time.Minute, 100*time.Millisecond,
		"state changes go on after the kills")
	stopFlipping()

	_, js := natstest.Connect(t, natsURL)
	// A killed evaluator's message comes back after its ack wait (a minute).
	requireDrained(t, js, pool, 3*time.Minute)
	notified := requireEachChangeNotifiedOnce(t, pool, mail)
	slots := requireEveryDueEvaluated(t, js, pool)
	t.Logf("%d processes killed (%v); %d due slots, all evaluated once; %d state changes, each notified once",
		kills, killed, slots, notified)
}

// TestNATSKilledAndRestarted: the NATS server runs as a process of its own (`vigil nats`,
// file storage) and is killed (SIGKILL) twice under a running pipeline, then started again
// on the same storage. No message JetStream acknowledged is lost: every event the outbox
// marked published is in its stream afterwards, every due slot was evaluated and recorded,
// and every state change was notified exactly once.
func TestNATSKilledAndRestarted(t *testing.T) {
	faultsEnabled(t)
	ctx := context.Background()
	bin := buildBinary(t)
	dbURL := pgtest.NewURL(t)
	mail := smtptest.Start(t)
	src, price := priceSource(t)
	natsAddr := freeAddr(t)
	env := pipelineEnv(t, dbURL, "nats://"+natsAddr, mail.URL(), "MAILER_LEASE=3s")
	roles := newRoles(t, bin, env)
	startNATS := func() *exec.Cmd {
		// The server role listens on NATS_EMBEDDED_ADDR when NATS_URL is empty.
		return roles.start("nats", "NATS_URL=", "NATS_EMBEDDED_ADDR="+natsAddr)
	}
	server := startNATS()
	require.Eventually(t, func() bool {
		c, err := net.Dial("tcp", natsAddr)
		if err == nil {
			_ = c.Close()
		}
		return err == nil
	}, 30*time.Second, 50*time.Millisecond, "the NATS process did not listen")
	nc, js := natstest.Connect(t, "nats://"+natsAddr)
	require.Eventually(t, func() bool { return nc.IsConnected() }, 30*time.Second, 50*time.Millisecond)
	for _, role := range []string{"scheduler", "evaluator", "recorder", "matcher", "mailer"} {
		roles.start(role)
	}
	pool, err := postgres.Open(ctx, postgres.PoolConfig{URL: dbURL, AppName: "vigil-nats-kill-test", MaxConns: 3})
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	const monitors = 5
	seedFlippingMonitors(t, pool, src.URL, monitors)
	stopFlipping := flipPrice(price, 1500*time.Millisecond)
	waitProgress := func(what string) {
		t.Helper()
		before := stateChanges(t, pool)
		require.Eventually(t, func() bool { return stateChanges(t, pool) >= before+monitors }, 90*time.Second, 100*time.Millisecond,
			"no state changes %s", what)
	}
	var down time.Duration
	for round := range 2 {
		waitProgress(fmt.Sprintf("before kill %d", round+1))
		require.NoError(t, server.Process.Signal(syscall.SIGKILL))
		_ = server.Wait()
		killedAt := time.Now()
		time.Sleep(2 * time.Second)
		server = startNATS()
		require.Eventually(t, func() bool { return nc.IsConnected() }, 30*time.Second, 50*time.Millisecond)
		down += time.Since(killedAt)
		waitProgress(fmt.Sprintf("after restart %d", round+1))
	}
	stopFlipping()

	requireDrained(t, js, pool, 3*time.Minute)
	// Every event JetStream acknowledged to the outbox relay is in its stream.
	published := map[string]bool{}
	rows, err := pool.Query(ctx, `SELECT event_id FROM outbox WHERE published_at IS NOT NULL`)
	require.NoError(t, err)
	for rows.Next() {
		var id string
		require.NoError(t, rows.Scan(&id))
		published[id] = true
	}
	require.NoError(t, rows.Err())
	require.NotEmpty(t, published)
	stored := map[string]bool{}
	for _, name := range []string{streams.StreamMonitors, streams.StreamStates, streams.StreamNotifications} {
		readStream(t, js, name, nil, func(msg jetstream.Msg) { stored[msg.Headers().Get(streams.HeaderID)] = true })
	}
	var lost []string
	for id := range published {
		if !stored[id] {
			lost = append(lost, id)
		}
	}
	require.Empty(t, lost, "acknowledged events missing from the streams (of %d)", len(published))
	notified := requireEachChangeNotifiedOnce(t, pool, mail)
	slots := requireEveryDueEvaluated(t, js, pool)
	t.Logf("NATS killed twice (down %s in all); %d acknowledged outbox events all stored; %d due slots all evaluated; %d state changes each notified once",
		down.Round(100*time.Millisecond), len(published), slots, notified)
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigilhq/vigil/adapters/postgres"
	"github.com/vigilhq/vigil/config"
)

// benchTarget is one operation's latency goal at the 95th percentile.
type benchTarget struct {
	name string
	p95  time.Duration
}

// runBench implements `vigil bench api`: it creates a scratch database next to
// DATABASE_URL's, loads monitors and evaluations, starts the API in this process with the
// rule-based provider, and measures each monitor operation over real HTTP on loopback.
func runBench(ctx context.Context, cfg config.Config, args []string, out io.Writer) error {
	if len(args) > 0 && args[0] == "notify" {
		return runBenchNotify(ctx, cfg, args[1:], out)
	}
	if len(args) > 0 && args[0] == "pipeline" {
		return runBenchPipeline(ctx, cfg, args[1:], out)
	}
	if len(args) > 0 && args[0] == "scheduler" {
		return runBenchScheduler(ctx, cfg, args[1:], out)
	}
	if len(args) > 0 && args[0] == "history" {
		return runBenchHistory(ctx, cfg, args[1:], out)
	}
	if len(args) > 0 && args[0] == "http" {
		return runBenchHTTP(ctx, cfg, args[1:], out)
	}
	if len(args) == 0 || args[0] != "api" {
		return errors.New("usage: vigil bench api [-monitors N] [-evaluations N] [-requests N] [-keep]\n" +
			"       vigil bench notify [-changes 1000,5000] [-timeout 10m] [-keep]\n" +
			"       vigil bench pipeline [-monitors 10000,100000] [-rounds 3] [-changes] [-cpuprofile F] [-keep]\n" +
			"       vigil bench scheduler [-monitors 1000000] [-batch N] [-replicas 4] [-rounds 3] [-keep]\n" +
			"       vigil bench history [-facts 10000000,50000000] [-monitors 1000] [-requests 500] [-rounds 3] [-keep]\n" +
			"       vigil bench http [-users 1000] [-connections 1000] [-duration 15s] [-rounds 3] [-loads 25,50,75 | -rate N] [-keep]")
	}
	fs := flag.NewFlagSet("bench api", flag.ContinueOnError)
	monitors := fs.Int("monitors", 10000, "monitors in the database")
	evaluations := fs.Int("evaluations", 1000000, "evaluations in the database")
	requests := fs.Int("requests", 500, "requests per operation")
	keep := fs.Bool("keep", false, "keep the scratch database")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	dbURL, drop, err := scratchDatabase(ctx, cfg.DatabaseURL, *keep)
	if err != nil {
		return err
	}
	defer drop()
	fmt.Fprintf(out, "scratch database ready; loading %d monitors and %d evaluations…\n", *monitors, *evaluations)

	cfg.DatabaseURL = dbURL
	cfg.NATSURL = ""
	cfg.NATSEmbeddedAddr = "127.0.0.1:-1"
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.DataDir = fmt.Sprintf("%s/bench-%d", strings.TrimRight(cfg.DataDir, "/"), time.Now().UnixNano())
	cfg.AIProviders = []string{"fallback"}
	cfg.MonitorQuota = 1 << 30
	cfg.RateLimits = false                  // one client making thousands of requests is the point here
	cfg.StatementTimeout = 10 * time.Minute // the bulk load, on a busy machine
	cfg.LogLevel = "warn"

	if err := migrateScratch(ctx, dbURL); err != nil {
		return err
	}

	api, stop, err := startBenchAPI(ctx, cfg)
	if err != nil {
		return err
	}
	defer stop()
	m, base, client, tok := api.m, api.base, api.client, api.tok
	loadStart := time.Now()
	ids, err := loadBenchData(ctx, m, tok.User.ID, *monitors, *evaluations)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "loaded in %s; the bench user owns %d monitors; %d requests per operation\n",
		time.Since(loadStart).Round(time.Second), len(ids), *requests)

	results := map[string][]time.Duration{}
	measure := func(name string, fn func(i int) error) error {
		for i := 0; i < *requests; i++ {
			start := time.Now()
			if err := fn(i); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			results[name] = append(results[name], time.Since(start))
		}
		return nil
	}
	auth := tok.AccessToken
	pick := func(i int) string { return ids[i%len(ids)] }
	var created []string // create makes the monitors delete then removes
	steps := []struct {
		name string
		fn   func(i int) error
	}{
		{"list", func(i int) error {
			sorts := []string{"-created_at", "name", "-last_evaluated_at"}
			return call(client, http.MethodGet, base+"/api/monitors?limit=20&sort="+url.QueryEscape(sorts[i%3]), auth, "", http.StatusOK, nil)
		}},
		{"get", func(i int) error {
			return call(client, http.MethodGet, base+"/api/monitors/"+pick(i), auth, "", http.StatusOK, nil)
		}},
		{"history", func(i int) error {
			return call(client, http.MethodGet, base+"/api/monitors/"+pick(i)+"/history?limit=50", auth, "", http.StatusOK, nil)
		}},
		{"update", func(i int) error {
			return call(client, http.MethodPatch, base+"/api/monitors/"+pick(i), auth, fmt.Sprintf(`{"name":"renamed %d"}`, i), http.StatusOK, nil)
		}},
		{"create", func(i int) error {
			var m struct {
				ID string `json:"id"`
			}
			err := call(client, http.MethodPost, base+"/api/monitors", auth,
				fmt.Sprintf(`{"prompt":"Tell me when the price drops below $%d","source_url":"https://shop.example/item/%d"}`, 50+i%50, i), http.StatusCreated, &m)
			created = append(created, m.ID)
			return err
		}},
		{"delete", func(i int) error {
			return call(client, http.MethodDelete, base+"/api/monitors/"+created[i], auth, "", http.StatusNoContent, nil)
		}},
	}
	for _, s := range steps {
		if err := measure(s.name, s.fn); err != nil {
			return err
		}
	}
	targets := []benchTarget{{"list", 25 * time.Millisecond}, {"get", 25 * time.Millisecond}, {"history", 25 * time.Millisecond},
		{"update", 25 * time.Millisecond}, {"delete", 25 * time.Millisecond}, {"create", 50 * time.Millisecond}}
	fmt.Fprintf(out, "%-8s %9s %9s %9s %9s  %s\n", "op", "p50", "p95", "p99", "max", "target p95")
	for _, tg := range targets {
		d := results[tg.name]
		slices.Sort(d)
		p := func(q float64) time.Duration { return d[min(len(d)-1, int(q*float64(len(d))))] }
		verdict := "ok"
		if p(0.95) > tg.p95 {
			verdict = "MISSED"
		}
		fmt.Fprintf(out, "%-8s %9s %9s %9s %9s  < %s %s\n", tg.name, p(0.5).Round(10*time.Microsecond), p(0.95).Round(10*time.Microsecond),
			p(0.99).Round(10*time.Microsecond), d[len(d)-1].Round(10*time.Microsecond), tg.p95, verdict)
	}
	return nil
}

// call makes one request and checks its status; out, when set, receives the JSON body.
func call(client *http.Client, method, url, token, body string, want int, out any) error {
	req, err := http.NewRequest(method, url, bytes.NewBufferString(body))
	if err != nil {
		return err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: status %d, want %d: %s", method, url, resp.StatusCode, want, raw)
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

// loadBenchData gives the bench user 1% of the monitors (at least 100) and spreads the
// rest over other users, with the evaluations spread over every monitor, in set-based SQL.
// It returns the bench user's monitor ids.
func loadBenchData(ctx context.Context, m *Main, userID string, monitors, evaluations int) ([]string, error) {
	mine := max(100, monitors/100)
	perMonitor := max(1, evaluations/monitors)
	stmts := []string{
		`INSERT INTO users (email, name) SELECT 'user' || i || '@bench.example', 'User ' || i FROM generate_series(1, 99) AS i`,
		fmt.Sprintf(`INSERT INTO monitors (user_id, name, prompt, kind, spec, source_url, interval_seconds, next_run_at, created_at)
			SELECT CASE WHEN i <= %d THEN '%s'::uuid ELSE (SELECT id FROM users WHERE email = 'user' || (1 + i %% 99) || '@bench.example') END,
			       'Monitor ' || i, 'Tell me when the price drops below $80', 'current_state',
			       '{"kind":"current_state","summary":"price below 80","facts":[{"name":"price","type":"number"}],"condition":"price < 80","needs_source":true,"confidence":1}',
			       'https://shop.example/item/' || i, 3600, now() + interval '1 day', now() - (i || ' seconds')::interval
			FROM generate_series(1, %d) AS i`, mine, userID, monitors),
		fmt.Sprintf(`INSERT INTO evaluations (monitor_id, scheduled_for, started_at, finished_at, status, state, explanation, provider, model, latency_ms)
			SELECT m.id, now() - (j || ' hours')::interval, now() - (j || ' hours')::interval, now() - (j || ' hours')::interval + interval '1 second',
			       'succeeded', CASE WHEN j %% 7 = 0 THEN 'active' ELSE 'inactive' END, 'The price is 90.', 'fallback', 'rules-v1', 12
			FROM monitors m CROSS JOIN generate_series(1, %d) AS j`, perMonitor),
		`ANALYZE`,
	}
	for _, s := range stmts {
		if _, err := m.pool.Exec(ctx, s); err != nil {
			return nil, fmt.Errorf("load bench data: %w", err)
		}
	}
	rows, err := m.pool.Query(ctx, `SELECT id::text FROM monitors WHERE user_id = $1 ORDER BY id`, userID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// scratchDatabase creates an empty database on DATABASE_URL's server and returns its URL
// and a function that drops it (unless keep).
func scratchDatabase(ctx context.Context, dbURL string, keep bool) (string, func(), error) {
	u, err := url.Parse(dbURL)
	if err != nil {
		return "", nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	name := fmt.Sprintf("vigil_bench_%d", time.Now().Unix())
	admin, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return "", nil, fmt.Errorf("connect to %s: %w", u.Redacted(), err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", nil, fmt.Errorf("create %s: %w", name, err)
	}
	u.Path = "/" + name
	drop := func() {
		if keep {
			return
		}
		c, err := pgx.Connect(context.Background(), dbURL)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)") //nolint:errcheck // best effort
	}
	return u.String(), drop, nil
}

// migrateScratch applies every migration to a scratch database.
func migrateScratch(ctx context.Context, dbURL string) error {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(ctx)
	mig, err := postgres.NewMigrator(ctx, conn)
	if err != nil {
		return err
	}
	return mig.Up(ctx)
}

// benchRoles points cfg at the scratch database dbURL and runs roles in this process
// against it: an embedded NATS on a random port, a data dir of their own, sources and
// receivers on loopback allowed, warnings only. It returns once they had time to declare
// their streams and consumers; stop ends them.
func benchRoles(ctx context.Context, cfg config.Config, dbURL string, roles []string, tune func(*Main)) (m *Main, stop func(), err error) {
	cfg.DatabaseURL = dbURL
	cfg.NATSURL = ""
	cfg.NATSEmbeddedAddr = "127.0.0.1:-1"
	cfg.DataDir = filepath.Join(strings.TrimRight(cfg.DataDir, "/"), fmt.Sprintf("bench-%d", time.Now().UnixNano()))
	cfg.AllowPrivateSources = true // the bench's sources and receivers are on loopback
	// Every bench monitor watches one local host, which is no site to be polite to.
	cfg.SourceHostConcurrency, cfg.SourceHostDelay, cfg.SourceRobots = 0, 0, false
	cfg.LogLevel = "warn"
	m = NewMain(cfg, "bench", roles, io.Discard)
	if tune != nil {
		tune(m)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- m.Run(runCtx) }()
	stop = func() { cancel(); <-done; m.Close() }
	select {
	case err := <-done:
		cancel()
		m.Close()
		return nil, nil, fmt.Errorf("start roles: %w", err)
	case <-time.After(2 * time.Second):
	}
	return m, stop, nil
}

// startCPUProfile writes a CPU profile of what runs until stop to path; "" profiles nothing.
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(filepath.Clean(path)) // where the operator asked for the profile
	if err != nil {
		return nil, fmt.Errorf("-cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("-cpuprofile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// positiveInts parses the comma-separated positive numbers of flag -name.
func positiveInts(name, raw string) ([]int, error) {
	var out []int
	for _, s := range strings.Split(raw, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-%s: %q is not a positive number", name, s)
		}
		out = append(out, n)
	}
	return out, nil
}

// benchAPI is the API role running in this process for a bench, with a registered user.
type benchAPI struct {
	m      *Main
	base   string
	client *http.Client
	tok    struct {
		AccessToken string `json:"access_token"`
		User        struct {
			ID string `json:"id"`
		} `json:"user"`
	}
}

// startBenchAPI runs the API (and an embedded NATS) on cfg's database and registers the
// bench user; stop shuts it down.
func startBenchAPI(ctx context.Context, cfg config.Config) (*benchAPI, func(), error) {
	m := NewMain(cfg, "bench", []string{roleNATS, roleAPI}, io.Discard)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- m.Run(runCtx) }()
	stop := func() { cancel(); <-done; m.Close() }
	var addr string
	select {
	case addr = <-m.HTTPAddr:
	case err := <-done:
		cancel()
		m.Close()
		return nil, nil, fmt.Errorf("start api: %w", err)
	}
	a := &benchAPI{m: m, base: "http://" + addr, client: &http.Client{Timeout: time.Minute}}
	if err := call(a.client, http.MethodPost, a.base+"/api/auth/register", "", `{"email":"bench@vigil.localhost","password":"bench password 2026","name":"Bench"}`, http.StatusCreated, &a.tok); err != nil {
		stop()
		return nil, nil, err
	}
	return a, stop, nil
}

// relogin signs the bench user in again: a load that outlasts the access token's 15
// minutes would otherwise measure nothing but 401s.
func (a *benchAPI) relogin() error {
	return call(a.client, http.MethodPost, a.base+"/api/auth/login", "", `{"email":"bench@vigil.localhost","password":"bench password 2026"}`,
		http.StatusOK, &a.tok)
}

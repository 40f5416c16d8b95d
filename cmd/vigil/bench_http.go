package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/labstack/echo/v4"
	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/vigilhq/vigil/adapters/postgres"
	"github.com/vigilhq/vigil/adapters/tokens"
	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/domain/account"
)

// runBenchHTTP implements `vigil bench http`: vegeta drives the API with a number of
// connections at once, each request a user's own (so the per-user rate limits, which stay
// on, see legitimate traffic), over GET monitor, the list and the history; then, in the
// same run, a minimal Echo and pgx server doing one primary-key query, the ceiling of this
// machine. Rounds alternate the two; the summary gives each figure's median.
func runBenchHTTP(ctx context.Context, cfg config.Config, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("bench http", flag.ContinueOnError)
	users := fs.Int("users", 1000, "users, each with a monitor and its history; each request is one user's")
	conns := fs.Int("connections", 1000, "connections (and requests in flight) at once")
	duration := fs.Duration("duration", 15*time.Second, "length of each attack")
	rounds := fs.Int("rounds", 3, "rounds of both attacks")
	keep := fs.Bool("keep", false, "keep the scratch database")
	limits := fs.Bool("rate-limits", true, "enforce the API's rate limits, as production does (false: measure without them)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the API's attacks to this file")
	rate := fs.Int("rate", 0, "requests per second of one latency attack instead of -loads (0: use -loads)")
	loadsFlag := fs.String("loads", "25,50,75", "loads of the latency attacks, in percent of the API's closed-loop throughput of the round")
	routesFlag := fs.String("routes", "get,list,history", "API routes the attacks take turns on: get, list, history (one alone measures and profiles that route)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *users < 1 || *conns < 1 || *rounds < 1 || *rate < 0 {
		return fmt.Errorf("-users, -connections and -rounds must be positive, -rate not negative")
	}
	loads, err := positiveInts("loads", *loadsFlag)
	if err != nil {
		return err
	}
	if *rate > 0 {
		loads = []int{0}
	}
	routes, err := benchRoutes(*routesFlag)
	if err != nil {
		return err
	}
	dbURL, drop, err := scratchDatabase(ctx, cfg.DatabaseURL, *keep)
	if err != nil {
		return err
	}
	defer drop()
	if err := migrateScratch(ctx, dbURL); err != nil {
		return err
	}
	cfg.DatabaseURL, cfg.NATSURL, cfg.NATSEmbeddedAddr, cfg.HTTPAddr = dbURL, "", "127.0.0.1:-1", "127.0.0.1:0"
	cfg.DataDir = fmt.Sprintf("%s/bench-%d", filepath.Clean(cfg.DataDir), time.Now().UnixNano())
	cfg.AIProviders, cfg.MonitorQuota, cfg.LogLevel = []string{"fallback"}, 1<<30, "warn"
	cfg.RateLimits = *limits // on: legitimate traffic must never meet them
	api, stop, err := startBenchAPI(ctx, cfg)
	if err != nil {
		return err
	}
	defer stop()

	monitorIDs, bearer, err := loadHTTPBench(ctx, api.m, cfg.DataDir, *users)
	if err != nil {
		return err
	}
	ceiling, stopCeiling, err := startCeiling(ctx, dbURL, cfg.DatabaseMaxConns)
	if err != nil {
		return err
	}
	defer stopCeiling()
	fmt.Fprintf(out, "bench http: %d users, %d connections, %s per attack, %d rounds, routes %s\n", *users, *conns, *duration, *rounds, strings.Join(routes, ","))

	var next atomic.Uint64
	n := uint64(*users) // #nosec G115 -- checked positive
	apiTargets := func(t *vegeta.Target) error {
		// The routes take turns request by request (as many clients' requests interleave),
		// and each user asks for all of them in turn.
		i := next.Add(1)
		r := uint64(len(routes))
		u := (i / r) % n
		t.Method = http.MethodGet
		switch routes[i%r] {
		case "get":
			t.URL = api.base + "/api/monitors/" + monitorIDs[u]
		case "list":
			t.URL = api.base + "/api/monitors?limit=20"
		default:
			t.URL = api.base + "/api/monitors/" + monitorIDs[u] + "/history?limit=20"
		}
		t.Header = http.Header{"Authorization": {"Bearer " + bearer[u]}}
		return nil
	}
	ceilingTargets := func(t *vegeta.Target) error {
		i := next.Add(1)
		t.Method, t.URL, t.Header = http.MethodGet, ceiling+"/m/"+monitorIDs[i%n], nil
		return nil
	}
	type result struct {
		rps, p50, p99   float64
		limited, failed uint64
	}
	// attack sends requests on conns connections for duration: as fast as they are answered
	// (perSecond 0, a closed loop, for throughput), or at a fixed rate (an open loop, for
	// latency at that load). A fixed rate needs only as many connections as requests in
	// flight, so it first opens all conns in a second of closed loop, as conns clients
	// connected at once would have them, and measures after.
	attack := func(name string, tr vegeta.Targeter, perSecond int) result {
		// One client for the warm-up and the attack (a vegeta Attacker runs one attack),
		// whose connections are closed after, not left to the next attack's server.
		transport := &http.Transport{MaxIdleConnsPerHost: *conns, MaxConnsPerHost: *conns,
			DialContext: (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext}
		defer transport.CloseIdleConnections()
		client := &http.Client{Transport: transport, Timeout: 30 * time.Second}
		// The bench reads status codes only: answers are drained, not kept (keeping them
		// would charge the API's larger answers to the load generator's allocations).
		attacker := func() *vegeta.Attacker {
			return vegeta.NewAttacker(vegeta.Client(client), vegeta.Workers(uint64(*conns)), vegeta.MaxWorkers(uint64(*conns)), // #nosec G115 -- checked positive
				vegeta.MaxBody(0))
		}
		if perSecond > 0 {
			for range attacker().Attack(tr, vegeta.Rate{}, time.Second, name+" warm-up") {
			}
		}
		var m vegeta.Metrics
		var limited uint64
		for res := range attacker().Attack(tr, vegeta.Rate{Freq: perSecond, Per: time.Second}, *duration, name) {
			m.Add(res)
			if res.Code == http.StatusTooManyRequests {
				limited++
			}
		}
		m.Close()
		failed := uint64(0)
		for code, n := range m.StatusCodes {
			if code != "200" && code != "429" {
				failed += uint64(n) // #nosec G115 -- a count
			}
		}
		return result{rps: m.Throughput, p50: m.Latencies.P50.Seconds() * 1000, p99: m.Latencies.P99.Seconds() * 1000,
			limited: limited, failed: failed}
	}
	// With conns requests always in flight, latency is conns / throughput (Little's law):
	// a p99 under 50 ms at 1,000 connections in a closed loop would take 20,000 requests a
	// second, more than the ceiling serves here. So throughput is measured in a closed loop,
	// and latency at fixed rates the API can carry (shares of its closed-loop throughput)
	// with all the connections open; the ceiling is measured at the same rates, for the
	// latency of the machine itself.
	type atLoad struct {
		rate         int
		ceiling, api result
	}
	var apis, ceilings []result
	byLoad := make([][]atLoad, len(loads))
	for round := 1; round <= *rounds; round++ {
		c := attack("ceiling", ceilingTargets, 0)
		stopProfile, err := startCPUProfile(*cpuProfile)
		if err != nil {
			return err
		}
		a := attack("api", apiTargets, 0)
		stopProfile()
		ceilings, apis = append(ceilings, c), append(apis, a)
		fmt.Fprintf(out, "round %d: closed loop: ceiling %.0f req/s p50 %.1f ms p99 %.1f ms; api %.0f req/s p50 %.1f ms p99 %.1f ms; api %d answered 429, %d failed\n",
			round, c.rps, c.p50, c.p99, a.rps, a.p50, a.p99, a.limited, a.failed)
		for i, load := range loads {
			r := *rate
			if r == 0 {
				r = max(1, int(a.rps)*load/100)
			}
			l := atLoad{rate: r, ceiling: attack("ceiling", ceilingTargets, r), api: attack("api", apiTargets, r)}
			byLoad[i] = append(byLoad[i], l)
			fmt.Fprintf(out, "         at %d req/s: ceiling p50 %.1f ms p99 %.1f ms; api %.0f req/s p50 %.1f ms p99 %.1f ms; api %d answered 429, %d failed\n",
				r, l.ceiling.p50, l.ceiling.p99, l.api.rps, l.api.p50, l.api.p99, l.api.limited, l.api.failed)
		}
	}
	med := func(rs []result, f func(result) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	rps := func(r result) float64 { return r.rps }
	p50 := func(r result) float64 { return r.p50 }
	p99 := func(r result) float64 { return r.p99 }
	limited, failed := uint64(0), uint64(0)
	count := func(r result) {
		limited += r.limited
		failed += r.failed
	}
	for _, a := range apis {
		count(a)
	}
	verdict := func(ok bool) string {
		if ok {
			return "ok"
		}
		return "MISSED"
	}
	row := func(name string, rs []result) {
		fmt.Fprintf(out, "%-34s %10.0f %9.1f %9.1f\n", name, med(rs, rps), med(rs, p50), med(rs, p99))
	}
	fmt.Fprintf(out, "median of %d rounds, %d connections\n%-34s %10s %9s %9s\n", *rounds, *conns, "attack", "req/s", "p50 ms", "p99 ms")
	row("ceiling, closed loop", ceilings)
	row("api, closed loop", apis)
	share := med(apis, rps) / med(ceilings, rps)
	fmt.Fprintf(out, "api throughput %.0f%% of the ceiling (goal ≥ 50%%) %s\n", 100*share, verdict(share >= 0.5))
	for i, load := range loads {
		var cs, as []result
		var rates []int
		for _, l := range byLoad[i] {
			cs, as, rates = append(cs, l.ceiling), append(as, l.api), append(rates, l.rate)
			count(l.api)
		}
		slices.Sort(rates)
		at := fmt.Sprintf("at %d req/s", rates[len(rates)/2])
		if *rate == 0 {
			at += fmt.Sprintf(" (%d%% of api)", load)
		}
		row("ceiling, "+at, cs)
		row("api, "+at, as)
		fmt.Fprintf(out, "api p99 %s: %.1f ms (goal < 50 ms) %s\n", at, med(as, p99), verdict(med(as, p99) < 50))
	}
	fmt.Fprintf(out, "429 answers %d (goal 0) %s; failures %d\n", limited, verdict(limited == 0), failed)
	return nil
}

// benchRoutes parses -routes: a comma-separated list of get, list and history, each at most once.
func benchRoutes(raw string) ([]string, error) {
	var routes []string
	for _, r := range strings.Split(raw, ",") {
		r = strings.TrimSpace(r)
		switch {
		case r != "get" && r != "list" && r != "history":
			return nil, fmt.Errorf("-routes: %q is not a route (get, list, history)", r)
		case slices.Contains(routes, r):
			return nil, fmt.Errorf("-routes: %q is named twice", r)
		}
		routes = append(routes, r)
	}
	return routes, nil
}

// loadHTTPBench gives each of n users a monitor with a few evaluations and their facts, and
// an access token signed with the API's own key, so no login (and no bcrypt) is on the way.
func loadHTTPBench(ctx context.Context, m *Main, dataDir string, n int) (monitorIDs, bearer []string, err error) {
	if _, err := m.pool.Exec(ctx, `
		WITH u AS (
		  INSERT INTO users (email, name) SELECT 'user' || i || '@bench.vigil.localhost', 'User ' || i FROM generate_series(1, $1) AS i
		  RETURNING id),
		mon AS (
		  INSERT INTO monitors (user_id, name, prompt, kind, spec, interval_seconds, next_run_at)
		  SELECT id, 'Price', 'Tell me when the price drops below $80', 'current_state',
		         '{"kind":"current_state","summary":"price below 80","facts":[{"name":"price","type":"number"}],"condition":"price < 80.0","needs_source":true,"confidence":1}',
		         3600, now() + interval '1 day' FROM u
		  RETURNING id)
		INSERT INTO evaluations (monitor_id, scheduled_for, started_at, finished_at, status, state, explanation, provider, model, latency_ms)
		SELECT mon.id, now() - j * interval '1 hour', now() - j * interval '1 hour', now() - j * interval '1 hour' + interval '1 second',
		       'succeeded', 'inactive', '', 'fallback', 'rules-v1', 20
		FROM mon, generate_series(1, 30) AS j`, n); err != nil {
		return nil, nil, fmt.Errorf("load users: %w", err)
	}
	// Each evaluation observed the price, as a real one would: history and the monitor's
	// detail read their facts.
	if _, err := m.pool.Exec(ctx, `
		INSERT INTO facts (monitor_id, evaluation_id, key, value_number, unit, observed_at)
		SELECT monitor_id, id, 'price', 60 + floor(random() * 4000) / 100, 'USD', scheduled_for + interval '500 milliseconds'
		FROM evaluations`); err != nil {
		return nil, nil, fmt.Errorf("load facts: %w", err)
	}
	rows, err := m.pool.Query(ctx, `
		SELECT u.id::text, m.id::text FROM users u JOIN monitors m ON m.user_id = u.id
		WHERE u.email LIKE '%@bench.vigil.localhost' ORDER BY u.email`)
	if err != nil {
		return nil, nil, err
	}
	pairs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([2]string, error) {
		var p [2]string
		return p, r.Scan(&p[0], &p[1])
	})
	if err != nil {
		return nil, nil, err
	}
	key, err := tokens.LoadOrCreateKeyFile(filepath.Join(dataDir, jwtKeyFile))
	if err != nil {
		return nil, nil, err
	}
	ks, err := tokens.NewKeySet([]ed25519.PrivateKey{key}, tokens.JWTConfig{Issuer: m.cfg.JWTIssuer, Audience: tokens.AudienceDefault, Now: time.Now})
	if err != nil {
		return nil, nil, err
	}
	for _, p := range pairs {
		sid := make([]byte, 16)
		if _, err := rand.Read(sid); err != nil {
			return nil, nil, err
		}
		tok, _, err := ks.Issue(&account.User{ID: p[0], Role: account.RoleUser}, hex.EncodeToString(sid))
		if err != nil {
			return nil, nil, err
		}
		monitorIDs, bearer = append(monitorIDs, p[1]), append(bearer, tok)
	}
	return monitorIDs, bearer, nil
}

// startCeiling serves GET /m/:id with Echo, answering one primary-key query through a pgx
// pool the size of the API's: the least any API answer can cost here.
func startCeiling(ctx context.Context, dbURL string, maxConns int32) (string, func(), error) {
	pool, err := postgres.Open(ctx, postgres.PoolConfig{URL: dbURL, AppName: "vigil-bench-ceiling", MaxConns: maxConns})
	if err != nil {
		return "", nil, err
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.GET("/m/:id", func(c echo.Context) error {
		var id, name string
		if err := pool.QueryRow(c.Request().Context(), `SELECT id::text, name FROM monitors WHERE id = $1`, c.Param("id")).Scan(&id, &name); err != nil {
			return err
		}
		return c.JSON(http.StatusOK, map[string]string{"id": id, "name": name})
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		pool.Close()
		return "", nil, err
	}
	hs := &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() {
		_ = hs.Close()
		pool.Close()
	}, nil
}

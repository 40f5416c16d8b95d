package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/vigilhq/vigil/config"
)

// runBenchHistory implements `vigil bench history`: for each size, a scratch database with
// that many facts (monitors × 5 keys over 90 days, one evaluation per observation time),
// then the history routes measured over real HTTP on loopback.
func runBenchHistory(ctx context.Context, cfg config.Config, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("bench history", flag.ContinueOnError)
	sizes := fs.String("facts", "10000000,50000000", "facts to load, one run per size")
	monitors := fs.Int("monitors", 1000, "monitors, 5 keys each")
	requests := fs.Int("requests", 500, "requests per route")
	rounds := fs.Int("rounds", 3, "rounds of requests over each loaded size; the summary gives each figure's median")
	keep := fs.Bool("keep", false, "keep the scratch databases")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ns, err := positiveInts("facts", *sizes)
	if err != nil {
		return err
	}
	for _, n := range ns {
		if err := benchHistoryOnce(ctx, cfg, n, *monitors, *requests, max(*rounds, 1), *keep, out); err != nil {
			return err
		}
	}
	return nil
}

func benchHistoryOnce(ctx context.Context, cfg config.Config, facts, monitors, requests, rounds int, keep bool, out io.Writer) error {
	const keys, days = 5, 90
	dbURL, drop, err := scratchDatabase(ctx, cfg.DatabaseURL, keep)
	if err != nil {
		return err
	}
	defer drop()
	cfg.DatabaseURL, cfg.NATSURL, cfg.NATSEmbeddedAddr, cfg.HTTPAddr = dbURL, "", "127.0.0.1:-1", "127.0.0.1:0"
	cfg.DataDir = fmt.Sprintf("%s/bench-%d", strings.TrimRight(cfg.DataDir, "/"), time.Now().UnixNano())
	cfg.AIProviders, cfg.MonitorQuota, cfg.RateLimits = []string{"fallback"}, 1<<30, false
	cfg.StatementTimeout, cfg.LogLevel = 2*time.Hour, "warn"
	if err := migrateScratch(ctx, dbURL); err != nil {
		return err
	}
	api, stop, err := startBenchAPI(ctx, cfg)
	if err != nil {
		return err
	}
	defer stop()
	m, base, client, tok := api.m, api.base, api.client, api.tok
	perSeries := max(1, facts/(monitors*keys))
	step := time.Duration(days) * 24 * time.Hour / time.Duration(perSeries)
	fmt.Fprintf(out, "bench history: %d facts (%d monitors × %d keys × %d observations, one every %s over %d days)\n",
		monitors*keys*perSeries, monitors, keys, perSeries, step.Round(time.Second), days)
	loadStart := time.Now()
	ids, err := loadHistory(ctx, m, tok.User.ID, monitors, perSeries, step, days, func(done int) {
		fmt.Fprintf(out, "  loaded %d of %d monitors (%s)\n", done, monitors, time.Since(loadStart).Round(time.Second))
	})
	if err != nil {
		return err
	}
	var size string
	if err := m.pool.QueryRow(ctx, `SELECT pg_size_pretty(pg_database_size(current_database()))`).Scan(&size); err != nil {
		return err
	}
	var rollups string
	if err := m.pool.QueryRow(ctx, `SELECT pg_size_pretty(pg_total_relation_size('fact_rollups_hourly'))`).Scan(&rollups); err != nil {
		return err
	}
	fmt.Fprintf(out, "loaded in %s; database %s, of which rollups %s\n", time.Since(loadStart).Round(time.Second), size, rollups)
	if err := api.relogin(); err != nil {
		return fmt.Errorf("sign in again after the load: %w", err)
	}
	tok = api.tok

	now := time.Now().UTC()
	q := func(v url.Values) string { return v.Encode() }
	month := q(url.Values{"key": {"k1"}, "bucket": {"1h"}, "from": {now.Add(-30 * 24 * time.Hour).Format(time.RFC3339)}, "to": {now.Format(time.RFC3339)}})
	year := q(url.Values{"key": {"k2"}, "bucket": {"1d"}, "tz": {"Europe/Paris"}, "from": {now.AddDate(-1, 0, 0).Format(time.RFC3339)}, "to": {now.Format(time.RFC3339)}})
	stats := q(url.Values{"bucket": {"1d"}, "from": {now.Add(-30 * 24 * time.Hour).Format(time.RFC3339)}, "to": {now.Format(time.RFC3339)}})
	pick := func(i int) string { return ids[(i*7919)%len(ids)] }
	// The month's hourly series may take twice as long at 50 million facts as at 10.
	monthTarget := 10 * time.Millisecond
	if facts > 10_000_000 {
		monthTarget = 20 * time.Millisecond
	}
	routes := []struct {
		name   string
		target time.Duration
		path   func(i int) string
	}{
		{"series 30d hourly", monthTarget, func(i int) string { return "/api/monitors/" + pick(i) + "/facts?" + month }},
		{"series 1y daily", 20 * time.Millisecond, func(i int) string { return "/api/monitors/" + pick(i) + "/facts?" + year }},
		{"latest facts", 5 * time.Millisecond, func(i int) string { return "/api/monitors/" + pick(i) + "/facts/latest" }},
		{"stats 30d", 25 * time.Millisecond, func(i int) string { return "/api/monitors/" + pick(i) + "/stats?" + stats }},
	}
	// Each round measures every route; the summary is each percentile's median over rounds.
	type pcts struct{ p50, p95, p99 time.Duration }
	results := make([][]pcts, len(routes))
	for round := 1; round <= rounds; round++ {
		fmt.Fprintf(out, "round %d of %d\n%-18s %9s %9s %9s\n", round, rounds, "route", "p50", "p95", "p99")
		for ri, r := range routes {
			var d []time.Duration
			for i := range requests {
				start := time.Now()
				if err := call(client, http.MethodGet, base+r.path(i+round*requests), tok.AccessToken, "", http.StatusOK, nil); err != nil {
					return fmt.Errorf("%s: %w", r.name, err)
				}
				d = append(d, time.Since(start))
			}
			slices.Sort(d)
			p := func(q float64) time.Duration { return d[min(len(d)-1, int(q*float64(len(d))))] }
			results[ri] = append(results[ri], pcts{p(0.5), p(0.95), p(0.99)})
			fmt.Fprintf(out, "%-18s %9s %9s %9s\n", r.name, p(0.5).Round(10*time.Microsecond), p(0.95).Round(10*time.Microsecond),
				p(0.99).Round(10*time.Microsecond))
		}
	}
	medianOf := func(xs []pcts, f func(pcts) time.Duration) time.Duration {
		v := make([]time.Duration, len(xs))
		for i, x := range xs {
			v[i] = f(x)
		}
		slices.Sort(v)
		return v[len(v)/2].Round(10 * time.Microsecond)
	}
	fmt.Fprintf(out, "median of %d rounds\n%-18s %9s %9s %9s  %s\n", rounds, "route", "p50", "p95", "p99", "target p95")
	for ri, r := range routes {
		p95 := medianOf(results[ri], func(x pcts) time.Duration { return x.p95 })
		verdict := "ok"
		if p95 > r.target {
			verdict = "MISSED"
		}
		fmt.Fprintf(out, "%-18s %9s %9s %9s  < %s %s\n", r.name, medianOf(results[ri], func(x pcts) time.Duration { return x.p50 }),
			p95, medianOf(results[ri], func(x pcts) time.Duration { return x.p99 }), r.target, verdict)
	}
	// Export throughput: every fact of a few monitors, as CSV.
	var rows, bytes int64
	start := time.Now()
	for i := range 5 {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/monitors/"+pick(i)+"/export?what=facts&format=csv", nil)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		bytes += n
		rows += int64(perSeries * keys)
	}
	el := time.Since(start)
	fmt.Fprintf(out, "export: %d rows (%d MB) in %s: %.0f rows/s\n", rows, bytes>>20, el.Round(time.Millisecond), float64(rows)/el.Seconds())
	return nil
}

// loadHistory gives the bench user every monitor, five numeric facts each, and the facts:
// perSeries observations per key ending now, one evaluation per observation time, in
// set-based SQL a few monitors at a time (each statement folds its facts into the rollups).
func loadHistory(ctx context.Context, m *Main, userID string, monitors, perSeries int, step time.Duration, days int, progress func(int)) ([]string, error) {
	spec := `{"kind":"current_state","summary":"k1 below 50","facts":[{"name":"k1","type":"number"},{"name":"k2","type":"number"},` +
		`{"name":"k3","type":"number"},{"name":"k4","type":"number"},{"name":"k5","type":"number"}],"condition":"k1 < 50.0","needs_source":true,"confidence":1}`
	if _, err := m.pool.Exec(ctx, `SELECT ensure_facts_partitions((now() - make_interval(days => $1 + 31))::date, $1 / 28 + 4)`, days); err != nil {
		return nil, fmt.Errorf("partitions: %w", err)
	}
	if _, err := m.pool.Exec(ctx, `
		INSERT INTO monitors (user_id, name, prompt, kind, spec, source_url, interval_seconds, next_run_at)
		SELECT $1, 'Monitor ' || i, 'Tell me when k1 drops below 50', 'current_state', $2, 'https://shop.example/item/' || i, 3600, now() + interval '1 day'
		FROM generate_series(1, $3) AS i`, userID, spec, monitors); err != nil {
		return nil, fmt.Errorf("monitors: %w", err)
	}
	rows, err := m.pool.Query(ctx, `SELECT id::text FROM monitors ORDER BY id`)
	if err != nil {
		return nil, err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	const chunk = 20
	for lo := 0; lo < len(ids); lo += chunk {
		part := ids[lo:min(lo+chunk, len(ids))]
		if _, err := m.pool.Exec(ctx, `
			WITH e AS (
			  INSERT INTO evaluations (monitor_id, scheduled_for, started_at, finished_at, status, state, explanation, provider, model, latency_ms, fetch_ms)
			  SELECT m, now() - j * $2::interval, now() - j * $2::interval, now() - j * $2::interval + interval '1 second',
			         'succeeded', CASE WHEN j % 11 = 0 THEN 'active' ELSE 'inactive' END, '', 'fallback', 'rules-v1', 20 + j % 30, 5 + j % 9
			  FROM unnest($1::uuid[]) AS m, generate_series(1, $3) AS j
			  RETURNING id, monitor_id, scheduled_for)
			INSERT INTO facts (monitor_id, evaluation_id, key, value_number, unit, observed_at)
			SELECT e.monitor_id, e.id, 'k' || k, 50 + 30 * sin(extract(epoch FROM e.scheduled_for) / 86400 + k), 'USD', e.scheduled_for + interval '1 second'
			FROM e, generate_series(1, 5) AS k`, part, step, perSeries); err != nil {
			return nil, fmt.Errorf("facts: %w", err)
		}
		if (lo/chunk)%10 == 9 || lo+chunk >= len(ids) {
			progress(min(lo+chunk, len(ids)))
		}
	}
	// What autovacuum does to an insert-only table on a production server (this machine's
	// server runs with it off): hint bits set and pages marked all-visible, so reads are
	// index-only where they can be, as they are in steady state rather than right after a load.
	if _, err := m.pool.Exec(ctx, `VACUUM (ANALYZE)`); err != nil {
		return nil, err
	}
	return ids, nil
}

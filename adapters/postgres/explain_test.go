package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/postgres"
	"github.com/vigilhq/vigil/domain/app"
	"github.com/vigilhq/vigil/domain/monitor"
)

// recorder keeps every statement a pool runs, with its arguments, to explain them later.
type recorder struct {
	mu    sync.Mutex
	stmts []recorded
}

type recorded struct {
	sql  string
	args []any
}

func (r *recorder) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stmts = append(r.stmts, recorded{sql: d.SQL, args: d.Args})
	return ctx
}

func (r *recorder) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// The statements of a batch are recorded too.
func (r *recorder) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return ctx
}

func (r *recorder) TraceBatchQuery(_ context.Context, _ *pgx.Conn, d pgx.TraceBatchQueryData) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stmts = append(r.stmts, recorded{sql: d.SQL, args: d.Args})
}

func (r *recorder) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

// recordingPool opens a pool on the database of db that records every statement it runs.
func recordingPool(t *testing.T, db *pgxpool.Pool) (*pgxpool.Pool, *recorder) {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(db.Config().ConnString())
	require.NoError(t, err)
	rec := &recorder{}
	cfg.ConnConfig.Tracer = rec
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool, rec
}

// TestHistoryReadsNeverScanWholeTables runs every history route's reads (series, latest,
// stats, overviews, backtest, exports, history, detail, retention's deletes) and explains
// each statement with sequential scans disabled: a Seq Scan left in a plan means no index
// serves it, on facts (any partition), evaluations or the rollups.
func TestHistoryReadsNeverScanWholeTables(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	pool, rec := recordingPool(t, b.pool)

	id := b.monitor.ID
	now := time.Now().UTC()
	from, to := now.Add(-30*24*time.Hour), now
	facts, stats, exports := postgres.NewFactStore(pool), postgres.NewStatsStore(pool), postgres.NewExportStore(pool)
	monitors, retention := postgres.NewMonitorStore(pool, "test"), postgres.NewRetentionStore(pool)
	for _, bucket := range []monitor.Bucket{monitor.Bucket5m, monitor.Bucket1h, monitor.Bucket1d} {
		_, err := facts.NumberBuckets(ctx, id, "price", from, to, bucket, "Europe/Paris")
		require.NoError(t, err)
	}
	_, err := facts.NumberBuckets(ctx, id, "price", from, to, monitor.Bucket1d, "Asia/Kolkata")
	require.NoError(t, err)
	_, err = facts.Observations(ctx, id, "price", from, to, 10)
	require.NoError(t, err)
	_, err = facts.ValueChanges(ctx, id, "price", from, to, 10)
	require.NoError(t, err)
	_, err = facts.LatestBefore(ctx, id, "price", from)
	require.NoError(t, err)
	_, err = facts.LatestFacts(ctx, id, []string{"price"})
	require.NoError(t, err)
	_, err = stats.EvaluationBuckets(ctx, id, from, to, monitor.Bucket1h, "UTC")
	require.NoError(t, err)
	_, _, err = stats.DurationPercentiles(ctx, id, from, to)
	require.NoError(t, err)
	_, _, err = stats.Transitions(ctx, id, from, to, 10)
	require.NoError(t, err)
	_, err = stats.NotificationCounts(ctx, id, from, to)
	require.NoError(t, err)
	for _, user := range []string{b.userID, ""} { // an account's overview, and the system's
		_, err = stats.DailyEvaluations(ctx, user, from, to, "UTC")
		require.NoError(t, err)
		_, err = stats.Noisiest(ctx, user, from, to, 10)
		require.NoError(t, err)
	}
	_, err = stats.FactPoints(ctx, id, []string{"price"}, from, to, 10)
	require.NoError(t, err)
	_, err = stats.SentByTrigger(ctx, id, from, to)
	require.NoError(t, err)
	require.NoError(t, exports.StreamFacts(ctx, id, from, to, func(monitor.Fact) error { return nil }))
	require.NoError(t, exports.StreamEvaluations(ctx, id, from, to, func(app.EvaluationRecord) error { return nil }))
	_, _, err = monitors.History(ctx, app.HistoryQuery{UserID: b.userID, MonitorID: id, Limit: 20})
	require.NoError(t, err)
	_, err = monitors.MonitorDetail(ctx, b.userID, id)
	require.NoError(t, err)
	_, err = retention.DeleteEvaluations(ctx, from.Add(-400*24*time.Hour), from, 10)
	require.NoError(t, err)

	conn, err := b.pool.Acquire(ctx)
	require.NoError(t, err)
	defer conn.Release()
	_, err = conn.Exec(ctx, `SET enable_seqscan = off`)
	require.NoError(t, err)
	explained := 0
	for _, st := range rec.stmts {
		head := strings.ToUpper(strings.TrimSpace(st.sql))
		if !strings.HasPrefix(head, "SELECT") && !strings.HasPrefix(head, "WITH") && !strings.HasPrefix(head, "DELETE") {
			continue // SET, BEGIN and the like
		}
		tx, err := conn.Begin(ctx) // a DELETE is explained, never run
		require.NoError(t, err)
		var plan []map[string]any
		err = tx.QueryRow(ctx, "EXPLAIN (FORMAT JSON) "+st.sql, st.args...).Scan(&plan)
		require.NoError(t, tx.Rollback(ctx))
		require.NoError(t, err, st.sql)
		explained++
		raw, _ := json.Marshal(plan)
		for _, rel := range seqScans(plan[0]["Plan"].(map[string]any)) {
			if rel == "evaluations" || rel == "fact_rollups_hourly" || rel == "fact_latest" || strings.HasPrefix(rel, "facts") {
				t.Errorf("a sequential scan of %s in\n%s\nplan: %s", rel, st.sql, raw)
			}
		}
	}
	require.Greater(t, explained, 25, "every read was explained")
}

// seqScans lists the relations a plan scans sequentially.
func seqScans(node map[string]any) []string {
	var out []string
	if node["Node Type"] == "Seq Scan" {
		out = append(out, node["Relation Name"].(string))
	}
	if kids, ok := node["Plans"].([]any); ok {
		for _, k := range kids {
			out = append(out, seqScans(k.(map[string]any))...)
		}
	}
	return out
}

// readsFacts matches a statement that reads the facts table (not fact_latest).
var readsFacts = regexp.MustCompile(`(?i)\b(FROM|JOIN)\s+facts\b`)

// TestFactsOfAPageReadOnlyThePage gives a monitor a long history (20,000 minutely
// evaluations, each with its fact) and runs the history page and the monitor's detail, whose
// statements read the facts of the evaluations they show. Each of those statements is
// explained with the generic plan forced, the plan a cached statement settles on: it must
// read a few blocks per evaluation shown, not the monitor's whole history.
func TestFactsOfAPageReadOnlyThePage(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	id := b.monitor.ID
	_, err := b.pool.Exec(ctx, `
		WITH e AS (
		  INSERT INTO evaluations (monitor_id, scheduled_for, started_at, finished_at, status, state, explanation)
		  SELECT $1, s, s, s + interval '1 second', 'succeeded', 'inactive', ''
		  FROM generate_series(date_trunc('minute', now()) - interval '19999 minutes', date_trunc('minute', now()), interval '1 minute') AS s
		  RETURNING id, scheduled_for)
		INSERT INTO facts (monitor_id, evaluation_id, key, value_number, unit, observed_at)
		SELECT $1, id, 'price', extract(epoch FROM scheduled_for), 'USD', scheduled_for + interval '500 milliseconds' FROM e`, id)
	require.NoError(t, err)
	_, err = b.pool.Exec(ctx, `ANALYZE evaluations, facts`)
	require.NoError(t, err)

	pool, rec := recordingPool(t, b.pool)
	monitors := postgres.NewMonitorStore(pool, "test")
	page, _, err := monitors.History(ctx, app.HistoryQuery{UserID: b.userID, MonitorID: id, Limit: 20})
	require.NoError(t, err)
	require.Len(t, page, 20)
	for _, e := range page {
		require.Len(t, e.Facts, 1, "the facts of evaluation %s", e.ScheduledFor)
		require.Equal(t, float64(e.ScheduledFor.Unix()), *e.Facts[0].Number)
	}
	detail, err := monitors.MonitorDetail(ctx, b.userID, id)
	require.NoError(t, err)
	require.NotNil(t, detail.LastEvaluation)
	require.Len(t, detail.LastEvaluation.Facts, 1)

	conn, err := b.pool.Acquire(ctx)
	require.NoError(t, err)
	defer conn.Release()
	_, err = conn.Exec(ctx, `SET plan_cache_mode = force_generic_plan`)
	require.NoError(t, err)
	explained := 0
	for i, st := range rec.stmts {
		if !readsFacts.MatchString(st.sql) {
			continue
		}
		args := make([]string, len(st.args))
		for j, a := range st.args {
			s, ok := a.(string)
			require.True(t, ok, "argument %d of %s is a %T", j+1, st.sql, a)
			args[j] = "'" + strings.ReplaceAll(s, "'", "''") + "'"
		}
		name := fmt.Sprintf("facts_of_page_%d", i)
		_, err = conn.Exec(ctx, "PREPARE "+name+" AS "+st.sql)
		require.NoError(t, err, st.sql)
		var plan []map[string]any
		require.NoError(t, conn.QueryRow(ctx, "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE "+name+"("+strings.Join(args, ", ")+")").Scan(&plan))
		top := plan[0]["Plan"].(map[string]any)
		blocks := top["Shared Hit Blocks"].(float64) + top["Shared Read Blocks"].(float64)
		raw, _ := json.Marshal(plan)
		t.Logf("%.0f blocks: %.80s…", blocks, strings.Join(strings.Fields(st.sql), " "))
		// At most 21 evaluations at a few blocks each, and the monitor; the whole history
		// is 20,000 facts in hundreds of blocks.
		if blocks >= 150 {
			t.Errorf("%.0f blocks read by\n%s\nplan: %s", blocks, st.sql, raw)
		}
		explained++
	}
	require.Equal(t, 2, explained, "the history page's and the detail's facts")
}

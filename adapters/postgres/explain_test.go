package postgres_test

import (
	"context"
	"encoding/json"
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

// TestHistoryReadsNeverScanWholeTables runs every history route's reads (series, latest,
// stats, overviews, backtest, exports, history, detail, retention's deletes) and explains
// each statement with sequential scans disabled: a Seq Scan left in a plan means no index
// serves it, on facts (any partition), evaluations or the rollups.
func TestHistoryReadsNeverScanWholeTables(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(b.pool.Config().ConnString())
	require.NoError(t, err)
	rec := &recorder{}
	cfg.ConnConfig.Tracer = rec
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)

	id := b.monitor.ID
	now := time.Now().UTC()
	from, to := now.Add(-30*24*time.Hour), now
	facts, stats, exports := postgres.NewFactStore(pool), postgres.NewStatsStore(pool), postgres.NewExportStore(pool)
	monitors, retention := postgres.NewMonitorStore(pool, "test"), postgres.NewRetentionStore(pool)
	for _, bucket := range []monitor.Bucket{monitor.Bucket5m, monitor.Bucket1h, monitor.Bucket1d} {
		_, err := facts.NumberBuckets(ctx, id, "price", from, to, bucket, "Europe/Paris")
		require.NoError(t, err)
	}
	_, err = facts.NumberBuckets(ctx, id, "price", from, to, monitor.Bucket1d, "Asia/Kolkata")
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

package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/postgres/pgtest"
)

// TestQueryPlansUseIndexes loads a realistic volume of monitors, facts and evaluations and
// checks that the planner, left to its own costs (enable_seqscan stays on), reads the hot
// queries through their indexes rather than scanning the tables.
func TestQueryPlansUseIndexes(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pool := pgtest.New(t)

	var seqscan string
	require.NoError(t, pool.QueryRow(ctx, "SHOW enable_seqscan").Scan(&seqscan))
	require.Equal(t, "on", seqscan, "the planner must be free to choose a sequential scan")

	start := time.Now()
	loadPlanData(ctx, t, pool)
	t.Logf("loaded and analyzed in %s", time.Since(start).Round(time.Millisecond))

	var factMonitor, evalMonitor, user string
	require.NoError(t, pool.QueryRow(ctx, "SELECT id::text FROM monitors ORDER BY id LIMIT 1 OFFSET 17").Scan(&factMonitor))
	require.NoError(t, pool.QueryRow(ctx, "SELECT id::text FROM monitors ORDER BY id DESC LIMIT 1 OFFSET 7").Scan(&evalMonitor))
	require.NoError(t, pool.QueryRow(ctx, "SELECT user_id::text FROM monitors ORDER BY id LIMIT 1 OFFSET 4242").Scan(&user))

	// The facts partitions' copies of facts_monitor_key_time_idx, by index name.
	factsIndexes := map[string]string{}
	rows, err := pool.Query(ctx, `
		SELECT i.indexrelid::regclass::text, i.indrelid::regclass::text
		FROM pg_index i JOIN pg_inherits h ON h.inhrelid = i.indexrelid
		WHERE h.inhparent = 'facts_monitor_key_time_idx'::regclass`)
	require.NoError(t, err)
	for rows.Next() {
		var index, partition string
		require.NoError(t, rows.Scan(&index, &partition))
		factsIndexes[index] = partition
	}
	require.NoError(t, rows.Err())
	require.NotEmpty(t, factsIndexes)

	tests := []struct {
		name  string
		query string
		index string // expected index; "facts" means the partitions' facts_monitor_key_time_idx copies
	}{
		{
			name: "due monitors",
			query: `SELECT id FROM monitors WHERE status = 'active' AND next_run_at <= now()
				ORDER BY next_run_at LIMIT 500 FOR UPDATE SKIP LOCKED`,
			index: "monitors_due_idx",
		},
		{
			name: "facts of one monitor and key over 30 days",
			query: fmt.Sprintf(`SELECT observed_at, value_number FROM facts
				WHERE monitor_id = '%s'::uuid AND key = 'key3'
				  AND observed_at >= now() - interval '30 days' AND observed_at < now()
				ORDER BY observed_at`, factMonitor),
			index: "facts",
		},
		{
			name: "latest fact per key of one monitor",
			// A loose index scan: walk the monitor's distinct keys through the index, then take
			// the newest row of each, so the cost grows with the keys, not with the history.
			query: fmt.Sprintf(`WITH RECURSIVE keys AS (
				  SELECT min(key) AS key FROM facts WHERE monitor_id = '%[1]s'::uuid
				  UNION ALL
				  SELECT (SELECT min(f.key) FROM facts f WHERE f.monitor_id = '%[1]s'::uuid AND f.key > keys.key)
				  FROM keys WHERE keys.key IS NOT NULL)
				SELECT latest.* FROM keys CROSS JOIN LATERAL (
				  SELECT key, value_number, value_text, value_bool, unit, observed_at FROM facts
				  WHERE monitor_id = '%[1]s'::uuid AND key = keys.key ORDER BY observed_at DESC LIMIT 1) latest`, factMonitor),
			index: "facts",
		},
		{
			name: "a page of a monitor's evaluations",
			query: fmt.Sprintf(`SELECT id, scheduled_for, status, state FROM evaluations
				WHERE monitor_id = '%s'::uuid AND scheduled_for < '%s'::timestamptz
				ORDER BY scheduled_for DESC LIMIT 50`, evalMonitor, time.Now().Add(-24*time.Hour).UTC().Format(time.RFC3339)),
			index: "evaluations_monitor_slot_key",
		},
		{
			name: "a page of a user's monitors",
			query: fmt.Sprintf(`SELECT id, name FROM monitors WHERE user_id = '%s'::uuid
				ORDER BY created_at DESC, id DESC LIMIT 50`, user),
			index: "monitors_user_created_idx",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var raw []byte
			require.NoError(t, pool.QueryRow(ctx, "EXPLAIN (FORMAT JSON) "+tt.query).Scan(&raw))
			var plans []struct {
				Plan planNode `json:"Plan"`
			}
			require.NoError(t, json.Unmarshal(raw, &plans))
			require.Len(t, plans, 1)
			var nodes []planNode
			plans[0].Plan.walk(func(n planNode) { nodes = append(nodes, n) })
			pretty, _ := json.MarshalIndent(plans, "", "  ")

			for _, n := range nodes {
				if n.NodeType != "Seq Scan" {
					continue
				}
				switch {
				case n.Relation == "monitors" || n.Relation == "evaluations" || n.Relation == "facts":
					t.Fatalf("sequential scan on %s:\n%s", n.Relation, pretty)
				case isFactsPartition(n.Relation, factsIndexes):
					// A partition with no rows at all (a future month, facts_default) costs nothing
					// to scan and the planner rightly scans it; any partition holding data must be
					// read through its index.
					var empty bool
					require.NoError(t, pool.QueryRow(ctx, fmt.Sprintf("SELECT NOT EXISTS (SELECT 1 FROM %s)", n.Relation)).Scan(&empty))
					require.True(t, empty, "sequential scan on facts partition %s, which holds rows:\n%s", n.Relation, pretty)
				}
			}

			var used []string
			for _, n := range nodes {
				switch n.NodeType {
				case "Index Scan", "Index Only Scan", "Bitmap Index Scan":
					used = append(used, n.Index)
				}
			}
			if tt.index != "facts" {
				require.Contains(t, used, tt.index, "plan does not use %s:\n%s", tt.index, pretty)
				return
			}
			// Every partition holding the monitor's rows is read through its copy of the index.
			var scanned []string
			for _, index := range used {
				partition, ok := factsIndexes[index]
				require.True(t, ok, "index %s is not a copy of facts_monitor_key_time_idx:\n%s", index, pretty)
				require.True(t, strings.HasPrefix(index, partition+"_monitor_id_key_observed_at"), "index %s of %s", index, partition)
				scanned = append(scanned, partition)
			}
			require.NotEmpty(t, scanned, "plan uses no facts index:\n%s", pretty)
			var partitions []string
			require.NoError(t, pool.QueryRow(ctx, `
				SELECT coalesce(array_agg(DISTINCT tableoid::regclass::text), '{}') FROM facts
				WHERE monitor_id = $1::uuid AND observed_at >= CASE WHEN $2 THEN now() - interval '30 days' ELSE '-infinity' END
				  AND observed_at < now()`, factMonitor, strings.Contains(tt.query, "30 days")).Scan(&partitions))
			require.NotEmpty(t, partitions)
			for _, p := range partitions {
				require.Contains(t, scanned, p, "partition %s holds matching rows but is not read through its index:\n%s", p, pretty)
			}
		})
	}
}

// loadPlanData loads 100 users with 10,000 monitors (1% due), 1,000,000 facts of 200
// monitors × 5 keys over the last 60 days, and 125,000 evaluations of 50 monitors, then
// analyzes the database.
func loadPlanData(ctx context.Context, t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	exec := func(sql string) {
		t.Helper()
		_, err := pool.Exec(ctx, sql)
		require.NoError(t, err, "load: %s", sql)
	}

	// Monthly partitions for every month the facts fall in, before loading, so no row lands
	// in facts_default.
	exec("SELECT ensure_facts_partitions((now() - interval '62 days')::date, 4)")
	exec("INSERT INTO users (email) SELECT 'user' || i || '@example.com' FROM generate_series(1, 100) i")
	// next_run_at is in the past for 1% of the monitors and up to an hour ahead for the rest;
	// a tenth of them are paused.
	exec(`
		INSERT INTO monitors (user_id, name, prompt, kind, spec, interval_seconds, next_run_at, status, created_at)
		SELECT u.id, 'monitor ' || i, 'is the price under 100?', 'current_state', '{}', 3600,
		       CASE WHEN i % 100 = 1 THEN now() - (i % 600) * interval '1 second'
		            ELSE now() + (1 + i % 3600) * interval '1 second' END,
		       CASE WHEN i % 10 = 0 THEN 'paused' ELSE 'active' END,
		       now() - i * interval '1 minute'
		FROM generate_series(1, 10000) i
		JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM users) u ON u.n = i % 100`)

	// The big inserts run in statements of 50,000 rows, two at a time, so none comes near the
	// pool's statement timeout even on a busy machine: 5 keys × 200 monitors × 1,000 facts
	// (one observation per monitor and key every 86 minutes, the newest 86 minutes ago) and
	// 50 monitors × 2,500 evaluations (one slot every 5 minutes).
	var loads []string
	for k := 1; k <= 5; k++ {
		for chunk := range 4 {
			loads = append(loads, fmt.Sprintf(`
				INSERT INTO facts (monitor_id, key, value_number, unit, observed_at)
				SELECT m.id, 'key%d', random() * 100, 'USD', now() - j * interval '86 minutes'
				FROM (SELECT id FROM monitors ORDER BY id LIMIT 50 OFFSET %d) m, generate_series(1, 1000) j`, k, 50*chunk))
		}
	}
	for chunk := range 5 {
		loads = append(loads, fmt.Sprintf(`
			INSERT INTO evaluations (monitor_id, scheduled_for, status, state, changed)
			SELECT m.id, date_trunc('minute', now()) - j * interval '5 minutes', 'succeeded', 'active', j %% 50 = 0
			FROM (SELECT id FROM monitors ORDER BY id DESC LIMIT 10 OFFSET %d) m, generate_series(1, 2500) j`, 10*chunk))
	}
	queue := make(chan string, len(loads))
	for _, sql := range loads {
		queue <- sql
	}
	close(queue)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for range 2 {
		wg.Go(func() {
			for sql := range queue {
				if _, err := pool.Exec(ctx, sql); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("load: %s: %w", sql, err)
					}
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	require.NoError(t, firstErr)
	exec("ANALYZE")

	var monitors, facts, evaluations, defaults, partitions int
	require.NoError(t, pool.QueryRow(ctx, `
		SELECT (SELECT count(*) FROM monitors), (SELECT count(*) FROM facts), (SELECT count(*) FROM evaluations),
		       (SELECT count(*) FROM facts_default), (SELECT count(DISTINCT tableoid) FROM facts)`).
		Scan(&monitors, &facts, &evaluations, &defaults, &partitions))
	require.Equal(t, 10_000, monitors)
	require.Equal(t, 1_000_000, facts)
	require.GreaterOrEqual(t, evaluations, 100_000)
	require.Zero(t, defaults, "facts landed in facts_default")
	require.GreaterOrEqual(t, partitions, 3, "the facts span several monthly partitions")
}

// planNode is one node of an EXPLAIN (FORMAT JSON) plan.
type planNode struct {
	NodeType string     `json:"Node Type"`
	Relation string     `json:"Relation Name"`
	Index    string     `json:"Index Name"`
	Plans    []planNode `json:"Plans"`
}

func (n planNode) walk(fn func(planNode)) {
	fn(n)
	for _, c := range n.Plans {
		c.walk(fn)
	}
}

func isFactsPartition(relation string, factsIndexes map[string]string) bool {
	for _, p := range factsIndexes {
		if p == relation {
			return true
		}
	}
	return false
}

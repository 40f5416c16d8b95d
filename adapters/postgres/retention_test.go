package postgres_test

import (
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/archive"
	"github.com/vigilhq/vigil/adapters/postgres"
	"github.com/vigilhq/vigil/domain/app"
)

// TestRetentionDropsOnlyWhatIsPastIt: with an injected clock, the facts partitions wholly
// past retention are archived and dropped, every fact, evaluation and notification inside
// retention stays, old evaluations and notifications go in batches, and a second run does
// nothing. A dry run changes nothing and says what it would do.
func TestRetentionDropsOnlyWhatIsPastIt(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	store := postgres.NewRetentionStore(b.pool)
	now := time.Date(2027, 3, 15, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	// Partitions from July 2026, which pgtest's migration did not make.
	_, err := store.EnsurePartitions(ctx, time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC), 6)
	require.NoError(t, err)
	cfg := app.RetentionConfig{Facts: 200 * 24 * time.Hour, Evaluations: 90 * 24 * time.Hour, Notifications: 90 * 24 * time.Hour, BatchSize: 7}
	// Facts: 30 in July (past retention: the cutoff is 2026-08-27), 30 in August (partly
	// inside it, kept whole), 30 in March 2027.
	var rows [][]any
	for i := range 30 {
		for _, month := range []time.Time{time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC),
			time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)} {
			key := "price"
			if month.Month() == time.July && i == 29 {
				key = "stock" // a key last seen in July, so its latest fact goes with July
			}
			rows = append(rows, []any{b.monitor.ID, key, float64(i), "USD", month.Add(time.Duration(i) * time.Hour), "$" + string(rune('0'+i%10))})
		}
	}
	_, err = b.pool.CopyFrom(ctx, pgx.Identifier{"facts"}, []string{"monitor_id", "key", "value_number", "unit", "observed_at", "evidence"}, pgx.CopyFromRows(rows))
	require.NoError(t, err)
	// Evaluations and notifications: 20 old (before 2026-12-15), 5 recent; one old
	// evaluation keeps a recent notification, so it stays.
	for i := range 25 {
		at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Hour)
		if i >= 20 {
			at = now.Add(-time.Duration(i) * time.Hour)
		}
		_, err := b.pool.Exec(ctx, `
			WITH e AS (INSERT INTO evaluations (monitor_id, scheduled_for, status, state, explanation) VALUES ($1, $2, 'succeeded', 'inactive', '') RETURNING id)
			INSERT INTO notifications (user_id, monitor_id, evaluation_id, kind, recipient, from_state, to_state, status, created_at)
			SELECT $3, $1, e.id, 'state_changed', 'ann@example.com', 'inactive', 'active', 'sent', CASE WHEN $4 THEN $5::timestamptz ELSE $2 END FROM e`,
			b.monitor.ID, at, b.userID, i == 0, now.Add(-time.Hour))
		require.NoError(t, err)
	}
	counts := func() (facts, evals, notes int) {
		facts = b.count(t, `SELECT count(*) FROM facts`)
		return facts, b.count(t, `SELECT count(*) FROM evaluations`), b.count(t, `SELECT count(*) FROM notifications`)
	}

	dir := t.TempDir()
	arch, err := archive.New(dir, clock)
	require.NoError(t, err)
	r := app.NewRetention(store, arch, cfg, clock)
	dry, err := r.Run(ctx, true, nil)
	require.NoError(t, err)
	require.Len(t, dry.Drop, 1)
	require.Equal(t, "facts_y2026m07", dry.Drop[0].Name)
	require.Equal(t, int64(20), dry.EvaluationsDue)
	require.Equal(t, int64(19), dry.NotesDue)
	f, e, n := counts()
	require.Equal(t, []int{90, 25, 25}, []int{f, e, n}, "a dry run changes nothing")
	latest := `SELECT count(*) FROM fact_latest WHERE key = 'stock'`
	require.Equal(t, 1, b.count(t, latest))

	var steps []string
	rep, err := r.Run(ctx, false, func(s string) { steps = append(steps, s) })
	require.NoError(t, err)
	require.Len(t, rep.Dropped, 1)
	require.Len(t, rep.Archived, 1)
	require.Equal(t, int64(30), rep.Archived[0].Rows)
	require.Equal(t, int64(19), rep.NotificationsDeleted, "in batches of 7")
	require.Equal(t, int64(19), rep.EvaluationsDeleted, "the one with a recent notification stays")
	require.NotEmpty(t, steps)
	f, e, n = counts()
	require.Equal(t, []int{60, 6, 6}, []int{f, e, n})
	require.Equal(t, 30, b.count(t, `SELECT count(*) FROM facts WHERE observed_at >= '2026-08-01' AND observed_at < '2026-09-01'`), "August is kept whole")
	require.False(t, b.count(t, `SELECT count(*) FROM pg_class WHERE relname = 'facts_y2026m07'`) > 0, "July's partition is gone")
	require.Zero(t, b.count(t, `SELECT count(*) FROM fact_rollups_hourly WHERE hour < '2026-08-01'`), "and its rollups")
	require.Equal(t, 30, b.count(t, `SELECT count(*) FROM fact_rollups_hourly WHERE hour >= '2026-08-01' AND hour < '2026-09-01'`))
	require.Zero(t, b.count(t, latest), "a latest fact observed in July goes with it")
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM fact_latest WHERE key = 'price' AND observed_at >= '2027-03-01'`), "a newer one stays")
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM pg_class WHERE relname = 'facts_y2027m05'`), "the coming months exist")

	// The archive holds July's facts, with a manifest whose checksum is the file's.
	gzPath := filepath.Join(dir, "facts_y2026m07.ndjson.gz")
	data, err := os.ReadFile(gzPath)
	require.NoError(t, err)
	sum := sha256.Sum256(data)
	var manifest app.ArchiveManifest
	raw, err := os.ReadFile(filepath.Join(dir, "facts_y2026m07.manifest.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &manifest))
	require.Equal(t, hex.EncodeToString(sum[:]), manifest.SHA256)
	require.Equal(t, int64(30), manifest.Rows)
	fh, err := os.Open(gzPath)
	require.NoError(t, err)
	defer fh.Close()
	gz, err := gzip.NewReader(fh)
	require.NoError(t, err)
	sc := bufio.NewScanner(gz)
	lines := 0
	for sc.Scan() {
		var a app.ArchivedFact
		require.NoError(t, json.Unmarshal(sc.Bytes(), &a))
		require.Equal(t, b.monitor.ID, a.MonitorID)
		require.Equal(t, time.July, a.ObservedAt.Month())
		lines++
	}
	require.Equal(t, 30, lines)

	// Again: nothing to do.
	again, err := r.Run(ctx, false, nil)
	require.NoError(t, err)
	require.Empty(t, again.Dropped)
	require.Zero(t, again.EvaluationsDeleted+again.NotificationsDeleted)
	f, e, n = counts()
	require.Equal(t, []int{60, 6, 6}, []int{f, e, n})

	// Once a day across replicas.
	ok, err := store.ClaimDailyRun(ctx, "retention", now)
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = store.ClaimDailyRun(ctx, "retention", now.Add(time.Hour))
	require.NoError(t, err)
	require.False(t, ok, "another replica has today's run")
	require.NoError(t, store.FinishDailyRun(ctx, "retention", now, again))
}

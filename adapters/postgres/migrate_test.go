package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/postgres"
	"github.com/vigilhq/vigil/adapters/postgres/pgtest"
)

// vigilTables is every table the migrations create.
var vigilTables = []string{
	"users", "monitors", "facts", "evaluations", "actions", "triggers", "notifications",
	"refresh_tokens", "password_reset_tokens", "api_keys", "beta_allowlist", "audit_log",
	"outbox", "email_suppressions", "rate_limits", "email_recipients", "notification_attempts", "monitor_unpublished_slots",
	"maintenance_runs", "fact_rollups_hourly",
}

// vigilFunctions is every function the migrations create.
var vigilFunctions = []string{"uuid_generate_v7", "ensure_facts_partitions", "outbox_notify", "fold_fact_rollups"}

func TestMigratorUpDownToStatus(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	conn, err := pgx.Connect(ctx, pgtest.NewEmptyURL(t))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close(context.Background()) })

	m, err := postgres.NewMigrator(ctx, conn)
	require.NoError(t, err)
	require.Equal(t, int32(23), m.Latest())

	cur, err := m.Current(ctx)
	require.NoError(t, err)
	require.Equal(t, int32(0), cur, "an empty database starts at version 0")
	status, err := m.Status(ctx)
	require.NoError(t, err)
	require.Len(t, status, 23)
	for _, s := range status {
		require.False(t, s.Applied, "migration %d applied on an empty database", s.Version)
	}

	// Up: every table and function exists.
	require.NoError(t, m.Up(ctx))
	cur, err = m.Current(ctx)
	require.NoError(t, err)
	require.Equal(t, m.Latest(), cur)
	for _, table := range vigilTables {
		require.True(t, relationExists(ctx, t, conn, table), "table %s missing after Up", table)
	}
	for _, fn := range vigilFunctions {
		require.True(t, functionExists(ctx, t, conn, fn), "function %s missing after Up", fn)
	}
	// The facts migration creates monthly partitions from last month through two months ahead.
	var months []string
	require.NoError(t, conn.QueryRow(ctx, `
		SELECT array_agg(to_char(date_trunc('month', now()) + make_interval(months => i), '"facts_y"YYYY"m"MM') ORDER BY i)
		FROM generate_series(-1, 2) AS i`).Scan(&months))
	for _, part := range append(months, "facts_default") {
		require.True(t, relationExists(ctx, t, conn, part), "partition %s missing after Up", part)
	}
	// Up again is a no-op.
	require.NoError(t, m.Up(ctx))

	// Down(1) removes only the newest migration, the rate limits' granted column; then the
	// latest facts and the covering slot index; then the forgot-password queue; then the audit
	// log's guard; then the API keys' scopes; then the hourly rollups; then the retention
	// indexes and maintenance_runs; then the fetch time; then the facts' evidence;
	// then the repair
	// columns; then the render column; then the rss source format; then the unpublished
	// slots (back to a column); then the pipeline columns; then the digests; then confirm;
	// then the attempts.
	require.True(t, columnExists(ctx, t, conn, "rate_limits", "granted"))
	require.NoError(t, m.Down(ctx, 1))
	require.False(t, columnExists(ctx, t, conn, "rate_limits", "granted"), "granted still exists after Down(1)")
	require.True(t, relationExists(ctx, t, conn, "fact_latest"))
	require.NoError(t, m.Down(ctx, 1))
	require.False(t, relationExists(ctx, t, conn, "fact_latest"), "fact_latest still exists after Down(1)")
	var slotColumns int
	require.NoError(t, conn.QueryRow(ctx, `
		SELECT i.indnatts FROM pg_constraint c JOIN pg_index i ON i.indexrelid = c.conindid
		WHERE c.conname = 'evaluations_monitor_slot_key'`).Scan(&slotColumns))
	require.Equal(t, 2, slotColumns, "the slot's constraint is back on a narrow index")
	require.True(t, relationExists(ctx, t, conn, "password_reset_requests"))
	require.NoError(t, m.Down(ctx, 1))
	require.False(t, relationExists(ctx, t, conn, "password_reset_requests"), "password_reset_requests still exists after Down(1)")
	var guards int
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM pg_trigger WHERE tgrelid = 'audit_log'::regclass AND NOT tgisinternal`).Scan(&guards))
	require.Equal(t, 2, guards)
	require.NoError(t, m.Down(ctx, 1))
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM pg_trigger WHERE tgrelid = 'audit_log'::regclass AND NOT tgisinternal`).Scan(&guards))
	require.Zero(t, guards, "the audit log's guard still exists after Down(1)")
	require.True(t, columnExists(ctx, t, conn, "api_keys", "scope"))
	require.NoError(t, m.Down(ctx, 1))
	require.False(t, columnExists(ctx, t, conn, "api_keys", "scope"), "scope still exists after Down(1)")
	require.True(t, relationExists(ctx, t, conn, "fact_rollups_hourly"))
	require.NoError(t, m.Down(ctx, 1))
	require.False(t, relationExists(ctx, t, conn, "fact_rollups_hourly"), "rollups still exist after Down(1)")
	require.True(t, relationExists(ctx, t, conn, "maintenance_runs"))
	require.NoError(t, m.Down(ctx, 1))
	require.False(t, relationExists(ctx, t, conn, "maintenance_runs"), "maintenance_runs still exists after Down(1)")
	require.False(t, relationExists(ctx, t, conn, "evaluations_scheduled_idx"))
	require.True(t, columnExists(ctx, t, conn, "evaluations", "fetch_ms"))
	require.NoError(t, m.Down(ctx, 1))
	require.False(t, columnExists(ctx, t, conn, "evaluations", "fetch_ms"), "fetch_ms still exists after Down(1)")
	require.True(t, columnExists(ctx, t, conn, "facts", "evidence"))
	require.NoError(t, m.Down(ctx, 1))
	require.False(t, columnExists(ctx, t, conn, "facts", "evidence"), "evidence still exists after Down(1)")
	require.False(t, columnExists(ctx, t, conn, "facts", "confidence"))
	require.True(t, columnExists(ctx, t, conn, "monitors", "auto_repair"))
	require.True(t, columnExists(ctx, t, conn, "evaluations", "miss"))
	require.NoError(t, m.Down(ctx, 1))
	require.False(t, columnExists(ctx, t, conn, "monitors", "auto_repair"), "auto_repair still exists after Down(1)")
	require.False(t, columnExists(ctx, t, conn, "evaluations", "repair"))
	require.True(t, columnExists(ctx, t, conn, "monitors", "render"))
	require.NoError(t, m.Down(ctx, 1))
	require.False(t, columnExists(ctx, t, conn, "monitors", "render"), "render still exists after Down(1)")
	userID := insertUser(ctx, t, conn)
	_, err = conn.Exec(ctx, `INSERT INTO monitors (user_id, name, prompt, kind, spec, interval_seconds, next_run_at, source_format)
		VALUES ($1, 'feed', 'Tell me when the feed mentions Go', 'current_state', '{}', 3600, now(), 'rss')`, userID)
	require.NoError(t, err, "an rss monitor is stored")
	require.NoError(t, m.Down(ctx, 1))
	cur, err = m.Current(ctx)
	require.NoError(t, err)
	require.Equal(t, int32(11), cur)
	var format string
	require.NoError(t, conn.QueryRow(ctx, `SELECT source_format FROM monitors WHERE user_id = $1`, userID).Scan(&format))
	require.Equal(t, "auto", format, "Down(1) reads a feed as auto")
	_, err = conn.Exec(ctx, `DELETE FROM users WHERE id = $1`, userID)
	require.NoError(t, err)
	require.NoError(t, m.Down(ctx, 1))
	cur, err = m.Current(ctx)
	require.NoError(t, err)
	require.Equal(t, int32(10), cur)
	require.False(t, relationExists(ctx, t, conn, "monitor_unpublished_slots"), "monitor_unpublished_slots still exists after Down(1)")
	require.True(t, relationExists(ctx, t, conn, "monitors_slot_unpublished_idx"), "Down(1) did not bring back the scheduler's index")
	require.NoError(t, m.Down(ctx, 1))
	cur, err = m.Current(ctx)
	require.NoError(t, err)
	require.Equal(t, int32(9), cur)
	require.False(t, relationExists(ctx, t, conn, "monitors_slot_unpublished_idx"), "the scheduler's index still exists after Down(1)")
	require.True(t, relationExists(ctx, t, conn, "notifications_digest_idx"), "Down(1) rolled back too far")
	require.NoError(t, m.Down(ctx, 1))
	cur, err = m.Current(ctx)
	require.NoError(t, err)
	require.Equal(t, int32(8), cur)
	require.False(t, relationExists(ctx, t, conn, "notifications_digest_idx"), "the digests' index still exists after Down(1)")
	require.NoError(t, m.Down(ctx, 1))
	cur, err = m.Current(ctx)
	require.NoError(t, err)
	require.Equal(t, int32(7), cur)
	require.True(t, relationExists(ctx, t, conn, "notification_attempts"), "Down(1) rolled back too far")
	require.NoError(t, m.Down(ctx, 1))
	require.False(t, relationExists(ctx, t, conn, "notification_attempts"), "notification_attempts still exists after Down(1)")
	require.True(t, relationExists(ctx, t, conn, "email_recipients"), "Down(1) rolled back too far")

	// Down(1) again removes the actions API's recipients.
	require.NoError(t, m.Down(ctx, 1))
	cur, err = m.Current(ctx)
	require.NoError(t, err)
	require.Equal(t, int32(5), cur)
	require.False(t, relationExists(ctx, t, conn, "email_recipients"), "email_recipients still exists after Down(1)")
	require.True(t, relationExists(ctx, t, conn, "rate_limits"), "Down(1) rolled back too far")

	// Down(1) again removes the rate limits.
	require.NoError(t, m.Down(ctx, 1))
	cur, err = m.Current(ctx)
	require.NoError(t, err)
	require.Equal(t, int32(4), cur)
	require.False(t, relationExists(ctx, t, conn, "rate_limits"), "rate_limits still exists after Down(1)")
	require.True(t, relationExists(ctx, t, conn, "outbox"), "Down(1) rolled back too far")

	// Down(1) again removes only the outbox.
	require.NoError(t, m.Down(ctx, 1))
	cur, err = m.Current(ctx)
	require.NoError(t, err)
	require.Equal(t, int32(3), cur)
	require.False(t, relationExists(ctx, t, conn, "outbox"), "outbox still exists after Down(1)")
	require.False(t, functionExists(ctx, t, conn, "outbox_notify"), "outbox_notify still exists after Down(1)")
	require.True(t, relationExists(ctx, t, conn, "notifications"), "Down(1) rolled back too far")
	status, err = m.Status(ctx)
	require.NoError(t, err)
	require.Len(t, status, 23)
	for _, s := range status {
		require.Equal(t, s.Version <= 3, s.Applied, "status of migration %d after Down(1): %s", s.Version, s)
	}

	// To(0) removes every Vigil table, partition and function.
	require.NoError(t, m.To(ctx, 0))
	cur, err = m.Current(ctx)
	require.NoError(t, err)
	require.Equal(t, int32(0), cur)
	for _, table := range vigilTables {
		require.False(t, relationExists(ctx, t, conn, table), "table %s still exists after To(0)", table)
	}
	for _, fn := range vigilFunctions {
		require.False(t, functionExists(ctx, t, conn, fn), "function %s still exists after To(0)", fn)
	}
	var leftovers []string
	require.NoError(t, conn.QueryRow(ctx, `
		SELECT coalesce(array_agg(c.relname::text ORDER BY c.relname), '{}')
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = current_schema() AND c.relname <> $1 AND c.relname NOT LIKE $1 || '\_%'`,
		postgres.VersionTable).Scan(&leftovers))
	require.Empty(t, leftovers, "relations left in the schema after To(0)")
	var routines []string
	require.NoError(t, conn.QueryRow(ctx, `
		SELECT coalesce(array_agg(p.proname::text ORDER BY p.proname), '{}')
		FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
		WHERE n.nspname = current_schema()`).Scan(&routines))
	require.Empty(t, routines, "functions left in the schema after To(0)")

	// Up again from zero works, and Down never goes below zero.
	require.NoError(t, m.Up(ctx))
	cur, err = m.Current(ctx)
	require.NoError(t, err)
	require.Equal(t, m.Latest(), cur)
	for _, table := range vigilTables {
		require.True(t, relationExists(ctx, t, conn, table), "table %s missing after the second Up", table)
	}
	status, err = m.Status(ctx)
	require.NoError(t, err)
	want := []string{"001_accounts.sql", "002_monitors.sql", "003_notifications.sql", "004_outbox.sql", "005_rate_limits.sql", "006_actions_api.sql",
		"007_deliveries.sql", "008_confirm.sql", "009_digests.sql", "010_pipeline.sql", "011_unpublished_slots.sql", "012_source_format_rss.sql", "013_render.sql",
		"014_repair.sql", "015_fact_evidence.sql", "016_fetch_time.sql", "017_retention.sql", "018_fact_rollups.sql", "019_api_key_scopes.sql",
		"020_audit_append_only.sql", "021_password_reset_requests.sql", "022_read_paths.sql", "023_rate_limit_leases.sql"}
	require.Len(t, status, len(want))
	for i, s := range status {
		require.Equal(t, int32(i+1), s.Version)
		require.Equal(t, want[i], s.Name)
		require.True(t, s.Applied, "migration %s not applied after Up", s.Name)
		require.Contains(t, s.String(), "applied")
	}
}

func TestMigratorToRejectsUnknownVersions(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	conn, err := pgx.Connect(ctx, pgtest.NewEmptyURL(t))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close(context.Background()) })
	m, err := postgres.NewMigrator(ctx, conn)
	require.NoError(t, err)

	err = m.To(ctx, 99)
	require.Error(t, err)
	require.Contains(t, err.Error(), "99")
	require.Contains(t, err.Error(), "0 to 23", "the error should name the valid range")

	err = m.To(ctx, -1)
	require.Error(t, err)
	require.Contains(t, err.Error(), "0 to 23")

	cur, err := m.Current(ctx)
	require.NoError(t, err)
	require.Equal(t, int32(0), cur, "a rejected To must not migrate")
	require.False(t, relationExists(ctx, t, conn, "users"))
}

func relationExists(ctx context.Context, t *testing.T, conn *pgx.Conn, name string) bool {
	t.Helper()
	var ok bool
	require.NoError(t, conn.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", name).Scan(&ok))
	return ok
}

func functionExists(ctx context.Context, t *testing.T, conn *pgx.Conn, name string) bool {
	t.Helper()
	var ok bool
	require.NoError(t, conn.QueryRow(ctx, `
		SELECT EXISTS (SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
		               WHERE n.nspname = current_schema() AND p.proname = $1)`, name).Scan(&ok))
	return ok
}

// insertUser stores a bare user and returns its id.
func insertUser(ctx context.Context, t *testing.T, conn *pgx.Conn) string {
	t.Helper()
	var id string
	require.NoError(t, conn.QueryRow(ctx, `INSERT INTO users (email, name) VALUES ('migrate@vigil.localhost', 'Migrate') RETURNING id::text`).Scan(&id))
	return id
}

func columnExists(ctx context.Context, t *testing.T, conn *pgx.Conn, table, column string) bool {
	t.Helper()
	var ok bool
	require.NoError(t, conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_name = $1 AND column_name = $2)`,
		table, column).Scan(&ok))
	return ok
}

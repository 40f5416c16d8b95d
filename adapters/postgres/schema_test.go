package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/postgres/pgtest"
)

func TestSchemaTablesExist(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	pool := pgtest.New(t)

	var tables []string
	require.NoError(t, pool.QueryRow(ctx, `
		SELECT array_agg(table_name::text ORDER BY table_name)
		FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`).Scan(&tables))
	require.Subset(t, tables, vigilTables)
}

func TestSchemaForeignKeysOnDelete(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	pool := pgtest.New(t)

	const (
		cascade = "c"
		setNull = "n"
	)
	tests := []struct {
		table, column, references, onDelete string
	}{
		{"monitors", "user_id", "users", cascade},
		{"evaluations", "monitor_id", "monitors", cascade},
		{"facts", "monitor_id", "monitors", cascade},
		{"actions", "user_id", "users", cascade},
		{"triggers", "monitor_id", "monitors", cascade},
		{"triggers", "action_id", "actions", cascade},
		{"notifications", "user_id", "users", cascade},
		{"notifications", "monitor_id", "monitors", cascade},
		{"notifications", "trigger_id", "triggers", setNull},
		{"notifications", "action_id", "actions", setNull},
		{"notifications", "evaluation_id", "evaluations", cascade},
		{"refresh_tokens", "user_id", "users", cascade},
		{"refresh_tokens", "parent_id", "refresh_tokens", setNull},
		{"password_reset_tokens", "user_id", "users", cascade},
		{"api_keys", "user_id", "users", cascade},
		{"beta_allowlist", "added_by", "users", setNull},
		{"email_recipients", "user_id", "users", cascade},
		{"notification_attempts", "notification_id", "notifications", cascade},
		{"audit_log", "actor_user_id", "users", setNull},
		{"monitor_unpublished_slots", "monitor_id", "monitors", cascade},
		{"fact_rollups_hourly", "monitor_id", "monitors", cascade},
		{"fact_latest", "monitor_id", "monitors", cascade},
	}
	for _, tt := range tests {
		t.Run(tt.table+"."+tt.column, func(t *testing.T) {
			var references, onDelete []string
			require.NoError(t, pool.QueryRow(ctx, `
				SELECT coalesce(array_agg(c.confrelid::regclass::text), '{}'),
				       coalesce(array_agg(c.confdeltype::text), '{}')
				FROM pg_constraint c
				JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
				WHERE c.contype = 'f' AND c.conparentid = 0 AND c.conrelid = $1::regclass
				  AND cardinality(c.conkey) = 1 AND a.attname = $2`,
				tt.table, tt.column).Scan(&references, &onDelete))
			require.Equal(t, []string{tt.references}, references, "foreign key %s.%s", tt.table, tt.column)
			require.Equal(t, []string{tt.onDelete}, onDelete, "ON DELETE of %s.%s (c = CASCADE, n = SET NULL)", tt.table, tt.column)
		})
	}

	// The table above is every foreign key in the schema: a new one needs a deliberate decision.
	var n int
	require.NoError(t, pool.QueryRow(ctx, `
		SELECT count(*) FROM pg_constraint c JOIN pg_namespace ns ON ns.oid = c.connamespace
		WHERE c.contype = 'f' AND c.conparentid = 0 AND ns.nspname = current_schema()`).Scan(&n))
	require.Equal(t, len(tests), n, "foreign keys in the schema")
}

func TestSchemaIndexes(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	pool := pgtest.New(t)

	tests := []struct {
		name, table string
		unique      bool
		definition  string // the tail of pg_get_indexdef: columns and predicate
		constraint  bool   // backs a UNIQUE constraint
	}{
		{"monitors_due_idx", "monitors", false, "USING btree (next_run_at) WHERE (status = 'active'::text)", false},
		{"monitors_user_created_idx", "monitors", false, "USING btree (user_id, created_at DESC, id DESC)", false},
		{"evaluations_monitor_slot_key", "evaluations", true, "USING btree (monitor_id, scheduled_for) INCLUDE (status, changed, facts_reused, input_tokens, output_tokens, cost, latency_ms, fetch_ms)", true},
		{"evaluations_monitor_changes_idx", "evaluations", false, "USING btree (monitor_id, scheduled_for DESC) WHERE changed", false},
		{"facts_monitor_key_time_idx", "facts", false, "USING btree (monitor_id, key, observed_at DESC) INCLUDE (value_number, value_text, value_bool, unit)", false},
		{"notifications_trigger_evaluation_recipient_key", "notifications", true, "USING btree (trigger_id, evaluation_id, recipient)", true},
		{"triggers_monitor_action_condition_key", "triggers", true, "USING btree (monitor_id, action_id, condition)", true},
		{"users_email_key", "users", true, "USING btree (lower(email))", false},
		{"outbox_unpublished_idx", "outbox", false, "USING btree (id) WHERE (published_at IS NULL)", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var (
				table, def string
				unique     bool
				isUnique   bool
			)
			err := pool.QueryRow(ctx, `
				SELECT i.indrelid::regclass::text, i.indisunique, pg_get_indexdef(i.indexrelid),
				       EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.contype = 'u')
				FROM pg_index i WHERE i.indexrelid = to_regclass($1)`, tt.name).Scan(&table, &unique, &def, &isUnique)
			require.NoError(t, err, "index %s", tt.name)
			require.Equal(t, tt.table, table)
			require.Equal(t, tt.unique, unique, "uniqueness of %s", tt.name)
			require.Equal(t, tt.constraint, isUnique, "%s backs a UNIQUE constraint", tt.name)
			require.Contains(t, def, tt.definition)
		})
	}

	// Every facts partition carries its own copy of facts_monitor_key_time_idx.
	var missing []string
	require.NoError(t, pool.QueryRow(ctx, `
		SELECT coalesce(array_agg(p.inhrelid::regclass::text), '{}')
		FROM pg_inherits p
		WHERE p.inhparent = 'facts'::regclass
		  AND NOT EXISTS (
		    SELECT 1 FROM pg_index i JOIN pg_inherits ii ON ii.inhrelid = i.indexrelid
		    WHERE i.indrelid = p.inhrelid AND ii.inhparent = 'facts_monitor_key_time_idx'::regclass)`).Scan(&missing))
	require.Empty(t, missing, "facts partitions without the monitor/key/time index")
}

func TestSchemaFactsPartitions(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	pool := pgtest.New(t)

	var strategy string
	var keys []string
	require.NoError(t, pool.QueryRow(ctx, `
		SELECT p.partstrat::text, array(SELECT a.attname::text FROM unnest(p.partattrs) k JOIN pg_attribute a
		                                ON a.attrelid = p.partrelid AND a.attnum = k)
		FROM pg_partitioned_table p WHERE p.partrelid = 'facts'::regclass`).Scan(&strategy, &keys))
	require.Equal(t, "r", strategy, "facts is partitioned by range")
	require.Equal(t, []string{"observed_at"}, keys)

	var defaultBound string
	require.NoError(t, pool.QueryRow(ctx, `
		SELECT pg_get_expr(c.relpartbound, c.oid) FROM pg_class c JOIN pg_inherits i ON i.inhrelid = c.oid
		WHERE i.inhparent = 'facts'::regclass AND c.relname = 'facts_default'`).Scan(&defaultBound))
	require.Equal(t, "DEFAULT", defaultBound)

	// The migration created the monthly partitions from last month through two months ahead
	// (TestMigratorUpDownToStatus checks that on a fresh migration). pgtest clones a template
	// that may have been migrated in an earlier month, so top the partitions up the way the
	// application does at start-up before checking them.
	_, err := pool.Exec(ctx, "SELECT ensure_facts_partitions(current_date, 3)")
	require.NoError(t, err)
	for i := range 3 {
		var name, bound string
		err := pool.QueryRow(ctx, `
			WITH m AS (SELECT date_trunc('month', now()) + make_interval(months => $1) AS start)
			SELECT to_char(m.start, '"facts_y"YYYY"m"MM'),
			       coalesce((SELECT pg_get_expr(c.relpartbound, c.oid) FROM pg_class c JOIN pg_inherits i ON i.inhrelid = c.oid
			                 WHERE i.inhparent = 'facts'::regclass AND c.relname = to_char(m.start, '"facts_y"YYYY"m"MM')), '')
			FROM m`, i).Scan(&name, &bound)
		require.NoError(t, err)
		require.NotEmpty(t, bound, "monthly partition %s missing", name)
		require.Contains(t, bound, "FOR VALUES FROM (", "partition %s", name)
	}

	var created int
	require.NoError(t, pool.QueryRow(ctx, "SELECT ensure_facts_partitions(current_date, 3)").Scan(&created))
	require.Zero(t, created, "ensure_facts_partitions is idempotent")

	// A range nobody created yet: the first call creates it, the second does nothing.
	require.NoError(t, pool.QueryRow(ctx, "SELECT ensure_facts_partitions('2001-01-15', 2)").Scan(&created))
	require.Equal(t, 2, created)
	require.NoError(t, pool.QueryRow(ctx, "SELECT ensure_facts_partitions('2001-01-01', 2)").Scan(&created))
	require.Zero(t, created, "ensure_facts_partitions is idempotent")

	// Rows land in their month's partition, not in the default one.
	f := newFixture(ctx, t, pool)
	var part string
	require.NoError(t, pool.QueryRow(ctx, `
		INSERT INTO facts (monitor_id, key, value_number, observed_at) VALUES ($1, 'price', 1, '2001-02-10T12:00:00Z')
		RETURNING tableoid::regclass::text`, f.monitor).Scan(&part))
	require.Equal(t, "facts_y2001m02", part)
}

func TestSchemaCheckConstraints(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	pool := pgtest.New(t)
	f := newFixture(ctx, t, pool)

	tests := []struct {
		name, constraint, sql string
		args                  []any
	}{
		{"monitor status", "monitors_status_check",
			monitorInsert("status", "'bogus'"), []any{f.user}},
		{"monitor state", "monitors_state_check",
			monitorInsert("state", "'bogus'"), []any{f.user}},
		{"monitor kind", "monitors_kind_check",
			`INSERT INTO monitors (user_id, name, prompt, kind, spec, interval_seconds, next_run_at)
			 VALUES ($1, 'm', 'is it up?', 'bogus', '{}', 60, now())`, []any{f.user}},
		{"trigger condition", "triggers_condition_check",
			`INSERT INTO triggers (monitor_id, action_id, condition) VALUES ($1, $2, 'bogus')`, []any{f.monitor, f.action}},
		{"trigger frequency", "triggers_frequency_check",
			`INSERT INTO triggers (monitor_id, action_id, condition, frequency) VALUES ($1, $2, 'becomes_active', 'bogus')`,
			[]any{f.monitor, f.action}},
		{"notification status", "notifications_status_check",
			`INSERT INTO notifications (user_id, monitor_id, recipient, from_state, to_state, status)
			 VALUES ($1, $2, 'ann@example.com', 'unknown', 'active', 'bogus')`, []any{f.user, f.monitor}},
		{"user role", "users_role_check",
			`INSERT INTO users (email, role) VALUES ('bob@example.com', 'bogus')`, nil},
		{"fact with two values", "facts_one_value",
			`INSERT INTO facts (monitor_id, key, value_number, value_text, observed_at) VALUES ($1, 'price', 1, 'one', now())`,
			[]any{f.monitor}},
		{"fact without a value", "facts_one_value",
			`INSERT INTO facts (monitor_id, key, observed_at) VALUES ($1, 'price', now())`, []any{f.monitor}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := pool.Exec(ctx, tt.sql, tt.args...)
			requirePgError(t, err, "23514", tt.constraint)
		})
	}

	// The same statements with valid values succeed, so the failures above are the checks'.
	_, err := pool.Exec(ctx, monitorInsert("status", "'paused'"), f.user)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `INSERT INTO triggers (monitor_id, action_id, condition, frequency) VALUES ($1, $2, 'state_change', 'once')`,
		f.monitor, f.action)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `INSERT INTO facts (monitor_id, key, value_text, observed_at) VALUES ($1, 'price', 'one', now())`, f.monitor)
	require.NoError(t, err)
}

func TestSchemaCascades(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	pool := pgtest.New(t)

	t.Run("deleting a user removes what it owns", func(t *testing.T) {
		gone := newFixture(ctx, t, pool)
		kept := newFixture(ctx, t, pool)
		var audit string
		require.NoError(t, pool.QueryRow(ctx, `
			INSERT INTO audit_log (actor_user_id, action, outcome) VALUES ($1, 'login', 'success') RETURNING id::text`,
			gone.user).Scan(&audit))

		tag, err := pool.Exec(ctx, "DELETE FROM users WHERE id = $1", gone.user)
		require.NoError(t, err)
		require.Equal(t, int64(1), tag.RowsAffected())

		for _, f := range []struct {
			fx   fixture
			want int
		}{{gone, 0}, {kept, 1}} {
			counts := map[string]string{
				"monitors":      "SELECT count(*) FROM monitors WHERE id = $1",
				"evaluations":   "SELECT count(*) FROM evaluations WHERE id = $1",
				"facts":         "SELECT count(*) FROM facts WHERE id = $1",
				"actions":       "SELECT count(*) FROM actions WHERE id = $1",
				"triggers":      "SELECT count(*) FROM triggers WHERE id = $1",
				"notifications": "SELECT count(*) FROM notifications WHERE id = $1",
			}
			ids := map[string]string{
				"monitors": f.fx.monitor, "evaluations": f.fx.evaluation, "facts": f.fx.fact,
				"actions": f.fx.action, "triggers": f.fx.trigger, "notifications": f.fx.notification,
			}
			for table, q := range counts {
				var n int
				require.NoError(t, pool.QueryRow(ctx, q, ids[table]).Scan(&n))
				require.Equal(t, f.want, n, "%s rows of user %s", table, f.fx.user)
			}
		}
		// The audit trail outlives the account.
		var actor *string
		require.NoError(t, pool.QueryRow(ctx, "SELECT actor_user_id::text FROM audit_log WHERE id = $1", audit).Scan(&actor))
		require.Nil(t, actor)
	})

	t.Run("deleting a monitor removes its history", func(t *testing.T) {
		f := newFixture(ctx, t, pool)
		_, err := pool.Exec(ctx, "DELETE FROM monitors WHERE id = $1", f.monitor)
		require.NoError(t, err)
		var n int
		require.NoError(t, pool.QueryRow(ctx, `
			SELECT (SELECT count(*) FROM evaluations WHERE monitor_id = $1) + (SELECT count(*) FROM facts WHERE monitor_id = $1)
			     + (SELECT count(*) FROM triggers WHERE monitor_id = $1) + (SELECT count(*) FROM notifications WHERE monitor_id = $1)`,
			f.monitor).Scan(&n))
		require.Zero(t, n)
		require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM actions WHERE id = $1", f.action).Scan(&n))
		require.Equal(t, 1, n, "the action belongs to the user, not the monitor")
	})

	t.Run("deleting a trigger keeps its notifications", func(t *testing.T) {
		f := newFixture(ctx, t, pool)
		_, err := pool.Exec(ctx, "DELETE FROM triggers WHERE id = $1", f.trigger)
		require.NoError(t, err)
		var trigger, action *string
		require.NoError(t, pool.QueryRow(ctx, "SELECT trigger_id::text, action_id::text FROM notifications WHERE id = $1",
			f.notification).Scan(&trigger, &action))
		require.Nil(t, trigger)
		require.NotNil(t, action)
		require.Equal(t, f.action, *action)
	})

	t.Run("deleting an action keeps its notifications", func(t *testing.T) {
		f := newFixture(ctx, t, pool)
		_, err := pool.Exec(ctx, "DELETE FROM actions WHERE id = $1", f.action)
		require.NoError(t, err)
		var trigger, action *string
		require.NoError(t, pool.QueryRow(ctx, "SELECT trigger_id::text, action_id::text FROM notifications WHERE id = $1",
			f.notification).Scan(&trigger, &action))
		require.Nil(t, trigger, "the action's triggers are deleted with it")
		require.Nil(t, action)
	})

	t.Run("rotated refresh tokens keep their children", func(t *testing.T) {
		f := newFixture(ctx, t, pool)
		var parent, child string
		const insert = `INSERT INTO refresh_tokens (user_id, family_id, parent_id, token_hash, expires_at, family_expires_at)
			VALUES ($1, $1, $2, $3, now() + interval '1 day', now() + interval '30 days') RETURNING id::text`
		require.NoError(t, pool.QueryRow(ctx, insert, f.user, nil, []byte("parent")).Scan(&parent))
		require.NoError(t, pool.QueryRow(ctx, insert, f.user, parent, []byte("child")).Scan(&child))
		_, err := pool.Exec(ctx, "DELETE FROM refresh_tokens WHERE id = $1", parent)
		require.NoError(t, err)
		var got *string
		require.NoError(t, pool.QueryRow(ctx, "SELECT parent_id::text FROM refresh_tokens WHERE id = $1", child).Scan(&got))
		require.Nil(t, got)
	})

	t.Run("emails are unique whatever their case", func(t *testing.T) {
		_, err := pool.Exec(ctx, "INSERT INTO users (email) VALUES ('A@x.io')")
		require.NoError(t, err)
		_, err = pool.Exec(ctx, "INSERT INTO users (email) VALUES ('a@x.io')")
		requirePgError(t, err, "23505", "users_email_key")
	})

	t.Run("one evaluation per monitor slot", func(t *testing.T) {
		f := newFixture(ctx, t, pool)
		_, err := pool.Exec(ctx, `
			INSERT INTO evaluations (monitor_id, scheduled_for, status)
			SELECT monitor_id, scheduled_for, 'failed' FROM evaluations WHERE id = $1`, f.evaluation)
		requirePgError(t, err, "23505", "evaluations_monitor_slot_key")
		// Another slot of the same monitor is fine.
		_, err = pool.Exec(ctx, `
			INSERT INTO evaluations (monitor_id, scheduled_for, status)
			SELECT monitor_id, scheduled_for + interval '1 minute', 'failed' FROM evaluations WHERE id = $1`, f.evaluation)
		require.NoError(t, err)
	})

	t.Run("a trigger notifies a recipient once per evaluation", func(t *testing.T) {
		f := newFixture(ctx, t, pool)
		_, err := pool.Exec(ctx, `
			INSERT INTO notifications (user_id, monitor_id, trigger_id, action_id, evaluation_id, recipient, from_state, to_state)
			SELECT user_id, monitor_id, trigger_id, action_id, evaluation_id, recipient, 'unknown', 'active'
			FROM notifications WHERE id = $1`, f.notification)
		requirePgError(t, err, "23505", "notifications_trigger_evaluation_recipient_key")
		// Another recipient of the same action gets its own delivery.
		_, err = pool.Exec(ctx, `
			INSERT INTO notifications (user_id, monitor_id, trigger_id, action_id, evaluation_id, recipient, from_state, to_state)
			SELECT user_id, monitor_id, trigger_id, action_id, evaluation_id, 'other@example.com', 'unknown', 'active'
			FROM notifications WHERE id = $1`, f.notification)
		require.NoError(t, err)
	})
}

// fixture is one user with a monitor, an evaluation, a fact, an action, a trigger and a
// notification, all as text uuids.
type fixture struct {
	user, monitor, evaluation, fact, action, trigger, notification string
}

var fixtureSeq atomic.Int64

func newFixture(ctx context.Context, t *testing.T, pool *pgxpool.Pool) fixture {
	t.Helper()
	var f fixture
	email := fmt.Sprintf("user-%d-%d@example.com", time.Now().UnixNano(), fixtureSeq.Add(1))
	require.NoError(t, pool.QueryRow(ctx, "INSERT INTO users (email) VALUES ($1) RETURNING id::text", email).Scan(&f.user))
	require.NoError(t, pool.QueryRow(ctx, `
		INSERT INTO monitors (user_id, name, prompt, kind, spec, interval_seconds, next_run_at)
		VALUES ($1, 'price watch', 'is the price under 100?', 'current_state', '{}', 3600, now())
		RETURNING id::text`, f.user).Scan(&f.monitor))
	require.NoError(t, pool.QueryRow(ctx, `
		INSERT INTO evaluations (monitor_id, scheduled_for, status, state, changed)
		VALUES ($1, date_trunc('minute', now()), 'succeeded', 'active', true) RETURNING id::text`, f.monitor).Scan(&f.evaluation))
	require.NoError(t, pool.QueryRow(ctx, `
		INSERT INTO facts (monitor_id, evaluation_id, key, value_number, unit, observed_at)
		VALUES ($1, $2, 'price', 99.5, 'USD', now()) RETURNING id::text`, f.monitor, f.evaluation).Scan(&f.fact))
	require.NoError(t, pool.QueryRow(ctx, `
		INSERT INTO actions (user_id, name, type) VALUES ($1, 'mail me', 'email') RETURNING id::text`, f.user).Scan(&f.action))
	require.NoError(t, pool.QueryRow(ctx, `
		INSERT INTO triggers (monitor_id, action_id, condition) VALUES ($1, $2, 'becomes_active') RETURNING id::text`,
		f.monitor, f.action).Scan(&f.trigger))
	require.NoError(t, pool.QueryRow(ctx, `
		INSERT INTO notifications (user_id, monitor_id, trigger_id, action_id, evaluation_id, recipient, from_state, to_state)
		VALUES ($1, $2, $3, $4, $5, $6, 'unknown', 'active') RETURNING id::text`,
		f.user, f.monitor, f.trigger, f.action, f.evaluation, email).Scan(&f.notification))
	return f
}

// monitorInsert inserts a valid monitor for user $1 with column set to the SQL literal value.
func monitorInsert(column, value string) string {
	return fmt.Sprintf(`INSERT INTO monitors (user_id, name, prompt, kind, spec, interval_seconds, next_run_at, %s)
		VALUES ($1, 'm', 'is it up?', 'current_state', '{}', 60, now(), %s)`, column, value)
}

func requirePgError(t *testing.T, err error, code, constraint string) {
	t.Helper()
	require.Error(t, err)
	var pgErr *pgconn.PgError
	require.True(t, errors.As(err, &pgErr), "want a PostgreSQL error, got %T: %v", err, err)
	require.Equal(t, code, pgErr.Code, "SQLSTATE of %v", err)
	require.Equal(t, constraint, pgErr.ConstraintName, "constraint of %v", err)
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

package ratelimit_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/postgres"
	"github.com/vigilhq/vigil/adapters/postgres/pgtest"
)

// TestMigration checks migration 005 both ways: the table is UNLOGGED with its cleanup
// index, and the down part removes exactly what the up part created.
func TestMigration(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	conn, err := pgx.Connect(ctx, pgtest.NewEmptyURL(t))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close(context.Background()) })
	m, err := postgres.NewMigrator(ctx, conn)
	require.NoError(t, err)

	relations := func() map[string]string {
		rows, err := conn.Query(ctx, `
			SELECT c.relname::text, c.relpersistence::text FROM pg_class c
			JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE n.nspname = current_schema() AND c.relname LIKE 'rate\_limits%'`)
		require.NoError(t, err)
		out := map[string]string{}
		for rows.Next() {
			var name, persistence string
			require.NoError(t, rows.Scan(&name, &persistence))
			out[name] = persistence
		}
		require.NoError(t, rows.Err())
		return out
	}

	require.NoError(t, m.To(ctx, 5))
	require.Equal(t, map[string]string{
		"rate_limits": "u", "rate_limits_pkey": "u", "rate_limits_window_end_idx": "u",
	}, relations(), "an UNLOGGED table with its primary key and cleanup index")

	require.NoError(t, m.To(ctx, 4))
	require.Empty(t, relations())

	require.NoError(t, m.To(ctx, 5))
	require.Len(t, relations(), 3)
}

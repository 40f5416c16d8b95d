package postgres_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/postgres"
	"github.com/vigilhq/vigil/adapters/postgres/pgtest"
)

func TestCheckerWantsTheNewestSchema(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.NewURL(t)
	pool, err := postgres.Open(ctx, postgres.PoolConfig{URL: url, MaxConns: 2})
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	check, err := postgres.NewChecker(pool)
	require.NoError(t, err)
	require.NoError(t, check.Check(ctx))

	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	m, err := postgres.NewMigrator(ctx, conn)
	require.NoError(t, err)
	require.NoError(t, m.Down(ctx, 1))
	err = check.Check(ctx)
	require.ErrorContains(t, err, "schema at version 22, want 23")

	empty, err := postgres.Open(ctx, postgres.PoolConfig{URL: pgtest.NewEmptyURL(t), MaxConns: 2})
	require.NoError(t, err)
	t.Cleanup(empty.Close)
	check, err = postgres.NewChecker(empty)
	require.NoError(t, err)
	require.Error(t, check.Check(ctx), "a database never migrated is not ready")
}

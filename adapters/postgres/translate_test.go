package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/postgres"
	"github.com/vigilhq/vigil/adapters/postgres/pgtest"
	"github.com/vigilhq/vigil/domain"
)

// TestTranslateRealServerErrors: ASVS 4.0.3 V7.4.1. Errors the real server gives for bad
// data become EINVALID (naming the column where the server does) and an unavailable
// server or connection EUNAVAILABLE, so the API answers 4xx or 503, never 500.
func TestTranslateRealServerErrors(t *testing.T) {
	t.Parallel()
	pool := pgtest.New(t)
	ctx := context.Background()
	_, err := pool.Exec(ctx, `CREATE TABLE probe (at timestamptz, n int NOT NULL, code varchar(3))`)
	require.NoError(t, err)

	for _, c := range []struct {
		name, sql string
		args      []any
		field     string
	}{
		{"a NUL byte (22021)", `SELECT $1::text`, []any{"a\x00b"}, ""},
		{"bytes that are not UTF-8 (22021)", `SELECT $1::text`, []any{"a\xffb"}, ""},
		{"not a time (22007)", `SELECT $1::timestamptz`, []any{"yesterday-ish"}, ""},
		{"out of range (22003)", `SELECT 2147483647::int + $1::int`, []any{1}, ""},
		{"division by zero (22012)", `SELECT 1 / $1::int`, []any{0}, ""},
		{"too long (22001)", `INSERT INTO probe (n, code) VALUES (1, $1)`, []any{"abcd"}, ""},
		{"not a uuid (22P02)", `SELECT $1::uuid`, []any{"nope"}, ""},
		{"a missing value (23502)", `INSERT INTO probe (n) VALUES ($1)`, []any{nil}, "n"},
	} {
		_, err := pool.Exec(ctx, c.sql, c.args...)
		require.Error(t, err, c.name)
		got := postgres.Translate(err)
		var de *domain.Error
		require.ErrorAs(t, got, &de, "%s: %v", c.name, err)
		require.Equal(t, domain.EINVALID, de.Code, "%s: %v", c.name, err)
		require.NotContains(t, de.Message, "SQLSTATE", c.name)
		if c.field != "" {
			require.Contains(t, de.Fields, c.field, c.name)
		}
	}

	unavailable := func(name string, err error) {
		t.Helper()
		require.Error(t, err, name)
		require.True(t, errors.Is(postgres.Translate(err), domain.ErrUnavailable), "%s: %v is not EUNAVAILABLE", name, err)
	}
	// The server ends the connection (as when it shuts down): 57P01.
	_, err = pool.Exec(ctx, `SELECT pg_terminate_backend(pg_backend_pid())`)
	unavailable("terminated", err)

	// A connection killed from elsewhere, then used: it broke mid-request.
	conn, err := pool.Acquire(ctx)
	require.NoError(t, err)
	var pid int
	require.NoError(t, conn.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid))
	_, err = pool.Exec(ctx, `SELECT pg_terminate_backend($1)`, pid)
	require.NoError(t, err)
	time.Sleep(100 * time.Millisecond)
	_, err = conn.Exec(ctx, `SELECT 1`)
	unavailable("broken", err)
	conn.Release()

	// No connection free in time.
	u := pgtest.NewURL(t)
	small, err := postgres.Open(ctx, postgres.PoolConfig{URL: u, MaxConns: 1})
	require.NoError(t, err)
	defer small.Close()
	held, err := small.Acquire(ctx)
	require.NoError(t, err)
	waitCtx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	_, err = small.Exec(waitCtx, `SELECT 1`)
	cancel()
	unavailable("pool timeout", err)
	held.Release()

	// Nothing listening, and a pool that was closed.
	nowhere, err := url.Parse(u)
	require.NoError(t, err)
	nowhere.Host = "127.0.0.1:1"
	_, err = postgres.Open(ctx, postgres.PoolConfig{URL: nowhere.String(), ConnectWait: 200 * time.Millisecond})
	unavailable("refused", err)
	small.Close()
	_, err = small.Exec(ctx, `SELECT 1`)
	unavailable("closed pool", err)

	// What is already a domain error, or not a database error, passes unchanged.
	notFound := domain.Errorf(domain.ENOTFOUND, "No such monitor.")
	require.Same(t, notFound, postgres.Translate(notFound))
	plain := fmt.Errorf("something else")
	require.Same(t, plain, postgres.Translate(plain))
}

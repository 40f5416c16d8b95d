package postgres_test

import (
	"context"
	"io"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/postgres"
	"github.com/vigilhq/vigil/adapters/postgres/pgtest"
)

// A role started before its database is listening connects once the server comes up,
// rather than exiting; a refusal that will not pass on its own fails at once.
func TestOpenWaitsForAServerThatIsNotUpYet(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := pgtest.NewURL(t)
	target, err := url.Parse(dbURL)
	require.NoError(t, err)

	// A port nobody listens on yet; in 600ms a proxy to the real server opens on it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	go func() {
		time.Sleep(600 * time.Millisecond)
		proxy, err := net.Listen("tcp", addr)
		if err != nil {
			return
		}
		t.Cleanup(func() { _ = proxy.Close() })
		for {
			in, err := proxy.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target.Host)
			if err != nil {
				_ = in.Close()
				continue
			}
			go func() { _, _ = io.Copy(out, in); _ = out.Close() }()
			go func() { _, _ = io.Copy(in, out); _ = in.Close() }()
		}
	}()
	late := *target
	late.Host = addr
	start := time.Now()
	pool, err := postgres.Open(ctx, postgres.PoolConfig{URL: late.String(), MaxConns: 1, ConnectWait: 10 * time.Second})
	require.NoError(t, err, "the pool connects once the server listens")
	t.Cleanup(pool.Close)
	require.GreaterOrEqual(t, time.Since(start), 500*time.Millisecond, "it waited for the server")

	missing := *target
	missing.Path = "/vigil_no_such_database"
	start = time.Now()
	_, err = postgres.Open(ctx, postgres.PoolConfig{URL: missing.String(), MaxConns: 1, ConnectWait: 10 * time.Second})
	require.ErrorContains(t, err, "does not exist")
	require.Less(t, time.Since(start), 5*time.Second, "a missing database is not waited for")
}

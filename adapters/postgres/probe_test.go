package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/postgres"
)

// TestProbe: the outbox backlog counts unpublished events and ages the oldest; the claim
// lag is how long the most overdue active monitor has waited, paused ones aside.
func TestProbe(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	p := postgres.NewProbe(b.pool)
	_, err := b.pool.Exec(ctx, `DELETE FROM outbox`)
	require.NoError(t, err)
	_, err = b.pool.Exec(ctx, `UPDATE monitors SET next_run_at = now() + interval '1 hour'`)
	require.NoError(t, err)
	n, oldest, err := p.OutboxBacklog(ctx)
	require.NoError(t, err)
	require.Zero(t, n)
	require.Zero(t, oldest)
	lag, err := p.ClaimLag(ctx)
	require.NoError(t, err)
	require.Zero(t, lag)

	_, err = b.pool.Exec(ctx, `
		INSERT INTO outbox (event_id, subject, type, payload, created_at, published_at) VALUES
		  ('e1', 's', 't', '\x00', now() - interval '90 seconds', NULL),
		  ('e2', 's', 't', '\x00', now() - interval '10 seconds', NULL),
		  ('e3', 's', 't', '\x00', now() - interval '1 hour', now())`)
	require.NoError(t, err)
	_, err = b.pool.Exec(ctx, `UPDATE monitors SET next_run_at = now() - interval '42 seconds' WHERE id = $1`, b.monitor.ID)
	require.NoError(t, err)
	n, oldest, err = p.OutboxBacklog(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(2), n)
	require.InDelta(t, 90, oldest.Seconds(), 5)
	lag, err = p.ClaimLag(ctx)
	require.NoError(t, err)
	require.InDelta(t, 42, lag.Seconds(), 5)
	_, err = b.pool.Exec(ctx, `UPDATE monitors SET status = 'paused' WHERE id = $1`, b.monitor.ID)
	require.NoError(t, err)
	lag, err = p.ClaimLag(ctx)
	require.NoError(t, err)
	require.Less(t, lag, time.Second, "a paused monitor is not due")
}

package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/postgres"
	"github.com/vigilhq/vigil/adapters/postgres/pgtest"
	"github.com/vigilhq/vigil/domain/account"
)

// TestResetQueue: forgot-password requests wait durably, oldest first; one whose handling
// fails stays for the next try without holding back the others; and workers of several
// processes never handle one request twice.
func TestResetQueue(t *testing.T) {
	t.Parallel()
	pool := pgtest.New(t)
	q := postgres.NewResetQueueStore(pool)
	ctx := context.Background()
	at := time.Now().UTC().Truncate(time.Microsecond)
	for i := range 3 {
		require.NoError(t, q.EnqueueReset(ctx, account.ResetRequest{ID: newID(t), Email: fmt.Sprintf("u%d@example.com", i),
			Client: account.Client{IP: "203.0.113.9", UserAgent: "curl/8"}, At: at.Add(time.Duration(i) * time.Second)}))
	}
	var seen []account.ResetRequest
	n, err := q.HandleResetRequests(ctx, 10, func(_ context.Context, r account.ResetRequest) error {
		seen = append(seen, r)
		if r.Email == "u1@example.com" {
			return errors.New("smtp down")
		}
		return nil
	})
	require.ErrorContains(t, err, "smtp down")
	require.Equal(t, 2, n)
	require.Len(t, seen, 3)
	require.Equal(t, "u0@example.com", seen[0].Email, "oldest first")
	require.Equal(t, "203.0.113.9", seen[0].Client.IP)
	require.Equal(t, "curl/8", seen[0].Client.UserAgent)
	require.True(t, at.Equal(seen[0].At))

	// The failed one is still there; many workers at once handle it once.
	for i := 3; i < 40; i++ {
		require.NoError(t, q.EnqueueReset(ctx, account.ResetRequest{ID: newID(t), Email: fmt.Sprintf("u%d@example.com", i), At: at}))
	}
	var mu sync.Mutex
	count := map[string]int{}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n, err := q.HandleResetRequests(ctx, 5, func(_ context.Context, r account.ResetRequest) error {
					mu.Lock()
					count[r.Email]++
					mu.Unlock()
					time.Sleep(time.Millisecond)
					return nil
				})
				if err != nil || n == 0 {
					return
				}
			}
		}()
	}
	wg.Wait()
	require.Len(t, count, 38, "u1 and u3 to u39")
	for email, c := range count {
		require.Equal(t, 1, c, email)
	}
	var left int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM password_reset_requests`).Scan(&left))
	require.Zero(t, left)
}

package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigilhq/vigil/domain/account"
)

var _ account.ResetQueue = (*ResetQueueStore)(nil)

// ResetQueueStore keeps forgot-password requests in password_reset_requests until a worker
// of any API process handles them.
type ResetQueueStore struct {
	pool *pgxpool.Pool
}

// NewResetQueueStore returns a ResetQueueStore.
func NewResetQueueStore(pool *pgxpool.Pool) *ResetQueueStore { return &ResetQueueStore{pool: pool} }

// EnqueueReset implements account.ResetQueue.
func (s *ResetQueueStore) EnqueueReset(ctx context.Context, r account.ResetRequest) error {
	_, err := s.pool.Exec(ctx, `
		INSERT INTO password_reset_requests (id, email, ip, user_agent, created_at)
		VALUES ($1, $2, $3, NULLIF($4, ''), $5)`,
		r.ID, r.Email, inet(r.Client.IP), truncate(r.Client.UserAgent, userAgentMaxLen), r.At)
	if err != nil {
		return fmt.Errorf("queue reset request: %w", translate(err))
	}
	return nil
}

// HandleResetRequests implements account.ResetQueue: the requests are locked in one
// transaction (SKIP LOCKED, so the workers of several processes share the queue), and
// those handled are deleted in it; one whose handling failed stays, without holding back
// the others, and its error is returned with the count.
func (s *ResetQueueStore) HandleResetRequests(ctx context.Context, limit int,
	handle func(context.Context, account.ResetRequest) error) (int, error) {
	var done []string
	var failed error
	err := InTx(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			SELECT id::text, email, coalesce(host(ip), ''), coalesce(user_agent, ''), created_at
			FROM password_reset_requests ORDER BY created_at LIMIT $1 FOR UPDATE SKIP LOCKED`, limit)
		if err != nil {
			return fmt.Errorf("take reset requests: %w", translate(err))
		}
		reqs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (account.ResetRequest, error) {
			var q account.ResetRequest
			return q, r.Scan(&q.ID, &q.Email, &q.Client.IP, &q.Client.UserAgent, &q.At)
		})
		if err != nil {
			return fmt.Errorf("take reset requests: %w", translate(err))
		}
		for _, r := range reqs {
			if err := handle(ctx, r); err != nil {
				failed = errors.Join(failed, fmt.Errorf("reset request %s: %w", r.ID, err))
				continue
			}
			done = append(done, r.ID)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM password_reset_requests WHERE id = ANY($1::uuid[])`, done); err != nil {
			return fmt.Errorf("remove handled reset requests: %w", translate(err))
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return len(done), failed
}

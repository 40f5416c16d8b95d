package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Probe reads the pipeline's backlogs for the metrics: metrics.PipelineProbe. Both reads
// use partial indexes (outbox_unpublished_idx, monitors_due_idx), so a scrape costs little
// even with a large backlog.
type Probe struct {
	pool *pgxpool.Pool
}

// NewProbe returns a Probe.
func NewProbe(pool *pgxpool.Pool) *Probe { return &Probe{pool: pool} }

// OutboxBacklog returns the unpublished events and the age of the oldest.
func (p *Probe) OutboxBacklog(ctx context.Context) (int64, time.Duration, error) {
	var n int64
	var oldestSeconds float64
	err := p.pool.QueryRow(ctx, `
		SELECT (SELECT count(*) FROM outbox WHERE published_at IS NULL),
		       coalesce((SELECT extract(epoch FROM now() - created_at) FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT 1), 0)`).
		Scan(&n, &oldestSeconds)
	if err != nil {
		return 0, 0, fmt.Errorf("outbox backlog: %w", translate(err))
	}
	return n, time.Duration(max(oldestSeconds, 0) * float64(time.Second)), nil
}

// ClaimLag returns now minus next_run_at of the most overdue active monitor, 0 when none is
// due.
func (p *Probe) ClaimLag(ctx context.Context) (time.Duration, error) {
	var lagSeconds float64
	err := p.pool.QueryRow(ctx, `
		SELECT coalesce(extract(epoch FROM now() - min(next_run_at)), 0)
		FROM monitors WHERE status = 'active' AND next_run_at <= now()`).Scan(&lagSeconds)
	if err != nil {
		return 0, fmt.Errorf("claim lag: %w", translate(err))
	}
	return time.Duration(max(lagSeconds, 0) * float64(time.Second)), nil
}

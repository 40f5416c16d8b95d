package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Checker reports whether the database is reachable and fully migrated.
type Checker struct {
	pool *pgxpool.Pool
}

// NewChecker returns a Checker.
func NewChecker(pool *pgxpool.Pool) *Checker { return &Checker{pool: pool} }

// Check returns nil when Postgres answers and the schema is at the newest migration.
func (c *Checker) Check(ctx context.Context) error {
	conn, err := c.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("postgres unreachable: %w", err)
	}
	defer conn.Release()
	m, err := NewMigrator(ctx, conn.Conn())
	if err != nil {
		return err
	}
	cur, err := m.Current(ctx)
	if err != nil {
		return err
	}
	if cur != m.Latest() {
		return fmt.Errorf("schema at version %d, want %d: run `vigil migrate up`", cur, m.Latest())
	}
	return nil
}

// EnsureFactPartitions creates the monthly facts partitions for this month and the next
// months ahead; the recorder calls it at start-up and daily.
func EnsureFactPartitions(ctx context.Context, pool *pgxpool.Pool, months int) (int, error) {
	var created int
	if err := pool.QueryRow(ctx, `SELECT ensure_facts_partitions(current_date, $1)`, months).Scan(&created); err != nil {
		return 0, fmt.Errorf("ensure facts partitions: %w", translate(err))
	}
	return created, nil
}

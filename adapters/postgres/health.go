package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/tern/v2/migrate"

	"github.com/vigilhq/vigil/migrations"
)

// Checker reports whether the database is reachable and fully migrated.
type Checker struct {
	pool   *pgxpool.Pool
	latest int32 // the newest embedded migration, counted once
}

// NewChecker returns a Checker.
func NewChecker(pool *pgxpool.Pool) (*Checker, error) {
	names, err := migrate.FindMigrations(migrations.FS)
	if err != nil {
		return nil, fmt.Errorf("find migrations: %w", err)
	}
	return &Checker{pool: pool, latest: int32(len(names))}, nil // #nosec G115 -- a few dozen embedded files
}

// Check returns nil when Postgres answers and the schema is at the newest migration. It is
// one query, as readiness probes call it often.
func (c *Checker) Check(ctx context.Context) error {
	var cur int32
	err := c.pool.QueryRow(ctx, `SELECT coalesce((SELECT version FROM `+VersionTable+` LIMIT 1), 0)`).Scan(&cur)
	if err != nil {
		return fmt.Errorf("postgres unreachable or not migrated: %w", err)
	}
	if cur != c.latest {
		return fmt.Errorf("schema at version %d, want %d: run `vigil migrate up`", cur, c.latest)
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

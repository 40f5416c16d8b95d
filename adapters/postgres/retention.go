package postgres

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigilhq/vigil/domain/app"
)

// RetentionStore drops and deletes history past retention.
type RetentionStore struct {
	pool *pgxpool.Pool
}

var _ app.RetentionStore = (*RetentionStore)(nil)

// NewRetentionStore returns a RetentionStore.
func NewRetentionStore(pool *pgxpool.Pool) *RetentionStore { return &RetentionStore{pool: pool} }

// partitionName is how ensure_facts_partitions names a month's partition.
var partitionName = regexp.MustCompile(`^facts_y(\d{4})m(\d{2})$`)

// EnsurePartitions implements app.RetentionStore.
func (s *RetentionStore) EnsurePartitions(ctx context.Context, from time.Time, months int) (int, error) {
	var created int
	if err := s.pool.QueryRow(ctx, `SELECT ensure_facts_partitions($1::date, $2)`, from.UTC().Format(time.DateOnly), months).Scan(&created); err != nil {
		return 0, fmt.Errorf("ensure facts partitions: %w", translate(err))
	}
	return created, nil
}

// Partitions implements app.RetentionStore: the monthly partitions, by their names.
func (s *RetentionStore) Partitions(ctx context.Context) ([]app.Partition, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'facts'::regclass ORDER BY c.relname`)
	if err != nil {
		return nil, fmt.Errorf("list partitions: %w", translate(err))
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list partitions: %w", translate(err))
	}
	var out []app.Partition
	for _, name := range names {
		m := partitionName.FindStringSubmatch(name)
		if m == nil {
			continue // the default partition, which retention never drops
		}
		y, _ := strconv.Atoi(m[1])
		mo, _ := strconv.Atoi(m[2])
		from := time.Date(y, time.Month(mo), 1, 0, 0, 0, 0, time.UTC)
		out = append(out, app.Partition{Name: name, From: from, To: from.AddDate(0, 1, 0)})
	}
	return out, nil
}

func checkPartition(name string) error {
	if !partitionName.MatchString(name) {
		return fmt.Errorf("%q is not a monthly facts partition", name)
	}
	return nil
}

// StreamPartition implements app.RetentionStore.
func (s *RetentionStore) StreamPartition(ctx context.Context, name string, fn func(app.ArchivedFact) error) error {
	if err := checkPartition(name); err != nil {
		return err
	}
	return streamRows(ctx, s.pool, `
		SELECT monitor_id::text, coalesce(evaluation_id::text, ''), `+factColumns+` FROM `+pgx.Identifier{name}.Sanitize()+`
		ORDER BY observed_at, id`, nil, func(rows pgx.Rows) error {
		var a app.ArchivedFact
		if err := rows.Scan(append([]any{&a.MonitorID, &a.EvaluationID}, factTargets(&a.Fact)...)...); err != nil {
			return fmt.Errorf("read fact of %s: %w", name, err)
		}
		return fn(a)
	})
}

// DropPartition implements app.RetentionStore. DETACH takes a short exclusive lock on
// facts, so it waits at most lock_timeout for the recorder's writes rather than queueing
// them behind it.
func (s *RetentionStore) DropPartition(ctx context.Context, name string) error {
	if err := checkPartition(name); err != nil {
		return err
	}
	ident := pgx.Identifier{name}.Sanitize()
	m := partitionName.FindStringSubmatch(name)
	y, _ := strconv.Atoi(m[1])
	mo, _ := strconv.Atoi(m[2])
	from := time.Date(y, time.Month(mo), 1, 0, 0, 0, 0, time.UTC)
	return InTx(ctx, s.pool, func(tx pgx.Tx) error {
		for _, stmt := range []string{`SET LOCAL lock_timeout = '5s'`, `ALTER TABLE facts DETACH PARTITION ` + ident, `DROP TABLE ` + ident} {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("drop partition %s: %w", name, translate(err))
			}
		}
		// The month's rollups go with its facts, or hourly series would still show them.
		if _, err := tx.Exec(ctx, `DELETE FROM fact_rollups_hourly WHERE hour >= $1 AND hour < $2`, from, from.AddDate(0, 1, 0)); err != nil {
			return fmt.Errorf("drop rollups of %s: %w", name, translate(err))
		}
		// So does a latest fact observed that month: its key has not been seen since. No
		// index on observed_at: this runs once a month over one row per monitor and key.
		if _, err := tx.Exec(ctx, `DELETE FROM fact_latest WHERE observed_at >= $1 AND observed_at < $2`, from, from.AddDate(0, 1, 0)); err != nil {
			return fmt.Errorf("drop latest facts of %s: %w", name, translate(err))
		}
		return nil
	})
}

// DeleteEvaluations implements app.RetentionStore: one batch, over evaluations_scheduled_idx.
func (s *RetentionStore) DeleteEvaluations(ctx context.Context, before, keepNotes time.Time, batch int) (int64, error) {
	tag, err := s.pool.Exec(ctx, `
		DELETE FROM evaluations WHERE id IN (
		  SELECT e.id FROM evaluations e WHERE e.scheduled_for < $1
		    AND NOT EXISTS (SELECT 1 FROM notifications n WHERE n.evaluation_id = e.id AND n.created_at >= $2)
		  ORDER BY e.scheduled_for LIMIT $3)`, before, keepNotes, batch)
	if err != nil {
		return 0, fmt.Errorf("delete evaluations: %w", translate(err))
	}
	return tag.RowsAffected(), nil
}

// DeleteNotifications implements app.RetentionStore: one batch, over notifications_created_idx.
func (s *RetentionStore) DeleteNotifications(ctx context.Context, before time.Time, batch int) (int64, error) {
	tag, err := s.pool.Exec(ctx, `
		DELETE FROM notifications WHERE id IN (SELECT id FROM notifications WHERE created_at < $1 ORDER BY created_at LIMIT $2)`, before, batch)
	if err != nil {
		return 0, fmt.Errorf("delete notifications: %w", translate(err))
	}
	return tag.RowsAffected(), nil
}

// CountDue implements app.RetentionStore.
func (s *RetentionStore) CountDue(ctx context.Context, evaluationsBefore, notificationsBefore time.Time) (int64, int64, error) {
	var e, n int64
	err := s.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM evaluations WHERE scheduled_for < $1), (SELECT count(*) FROM notifications WHERE created_at < $2)`,
		evaluationsBefore, notificationsBefore).Scan(&e, &n)
	if err != nil {
		return 0, 0, fmt.Errorf("count history past retention: %w", translate(err))
	}
	return e, n, nil
}

// ClaimDailyRun records that job runs today; false when another replica already has.
func (s *RetentionStore) ClaimDailyRun(ctx context.Context, job string, day time.Time) (bool, error) {
	tag, err := s.pool.Exec(ctx, `INSERT INTO maintenance_runs (job, day) VALUES ($1, $2::date) ON CONFLICT DO NOTHING`,
		job, day.UTC().Format(time.DateOnly))
	if err != nil {
		return false, fmt.Errorf("claim %s for %s: %w", job, day.Format(time.DateOnly), translate(err))
	}
	return tag.RowsAffected() == 1, nil
}

// FinishDailyRun stores what the day's run of job did.
func (s *RetentionStore) FinishDailyRun(ctx context.Context, job string, day time.Time, report any) error {
	_, err := s.pool.Exec(ctx, `UPDATE maintenance_runs SET finished_at = now(), report = $3 WHERE job = $1 AND day = $2::date`,
		job, day.UTC().Format(time.DateOnly), report)
	if err != nil {
		return fmt.Errorf("finish %s: %w", job, translate(err))
	}
	return nil
}

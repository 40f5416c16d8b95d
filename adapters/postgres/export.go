package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigilhq/vigil/domain/app"
	"github.com/vigilhq/vigil/domain/monitor"
)

// ExportStore streams monitors' history for exports.
type ExportStore struct {
	pool *pgxpool.Pool
}

var _ app.ExportStore = (*ExportStore)(nil)

// NewExportStore returns an ExportStore.
func NewExportStore(pool *pgxpool.Pool) *ExportStore { return &ExportStore{pool: pool} }

// ExportStatementTimeout bounds one export's query: far longer than a request's, since
// an export streams as fast as the client reads.
const ExportStatementTimeout = 30 * time.Minute

// streamRows runs sql in a read-only snapshot and hands each row to each as pgx reads it,
// so memory stays constant however many rows there are.
func streamRows(ctx context.Context, pool *pgxpool.Pool, sql string, args []any, each func(pgx.Rows) error) error {
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("begin export: %w", translate(err))
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, fmt.Sprintf("SET LOCAL statement_timeout = %d", ExportStatementTimeout.Milliseconds())); err != nil {
		return fmt.Errorf("export timeout: %w", translate(err))
	}
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return fmt.Errorf("export: %w", translate(err))
	}
	defer rows.Close()
	for rows.Next() {
		if err := each(rows); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("export: %w", translate(err))
	}
	return nil
}

// StreamFacts implements app.ExportStore, in time order over facts_monitor_key_time_idx.
func (s *ExportStore) StreamFacts(ctx context.Context, monitorID string, from, to time.Time, fn func(monitor.Fact) error) error {
	return streamRows(ctx, s.pool, `
		SELECT `+factColumns+` FROM facts WHERE monitor_id = $1 AND observed_at >= $2 AND observed_at < $3
		ORDER BY observed_at, key`, []any{monitorID, from, to}, func(rows pgx.Rows) error {
		f, err := scanFact(rows)
		if err != nil {
			return fmt.Errorf("read fact: %w", err)
		}
		return fn(f)
	})
}

// StreamEvaluations implements app.ExportStore, in slot order.
func (s *ExportStore) StreamEvaluations(ctx context.Context, monitorID string, from, to time.Time, fn func(app.EvaluationRecord) error) error {
	return streamRows(ctx, s.pool, `
		SELECT `+evaluationColumns+` FROM evaluations WHERE monitor_id = $1 AND scheduled_for >= $2 AND scheduled_for < $3
		ORDER BY scheduled_for`, []any{monitorID, from, to}, func(rows pgx.Rows) error {
		e, err := scanEvaluation(rows)
		if err != nil {
			return fmt.Errorf("read evaluation: %w", err)
		}
		return fn(e)
	})
}

// StreamNotifications implements app.ExportStore, in creation order.
func (s *ExportStore) StreamNotifications(ctx context.Context, monitorID string, from, to time.Time, fn func(app.NotificationRecord) error) error {
	return streamRows(ctx, s.pool, `
		SELECT `+notificationColumns+` FROM notifications n WHERE n.monitor_id = $1 AND n.created_at >= $2 AND n.created_at < $3
		ORDER BY n.created_at, n.id`, []any{monitorID, from, to}, func(rows pgx.Rows) error {
		n, err := scanNotification(rows)
		if err != nil {
			return fmt.Errorf("read notification: %w", err)
		}
		return fn(n)
	})
}

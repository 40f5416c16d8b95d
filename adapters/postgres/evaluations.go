package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/app"
	"github.com/vigilhq/vigil/domain/event"
	"github.com/vigilhq/vigil/domain/monitor"
	"github.com/vigilhq/vigil/streams"
)

// EvaluationStore records evaluations, their facts and the state they lead to.
type EvaluationStore struct {
	pool   *pgxpool.Pool
	source string
}

var (
	_ app.EvaluationStore = (*EvaluationStore)(nil)
	_ app.PreviousStore   = (*EvaluationStore)(nil)
)

// NewEvaluationStore returns an EvaluationStore; source names the role writing events.
func NewEvaluationStore(pool *pgxpool.Pool, source string) *EvaluationStore {
	return &EvaluationStore{pool: pool, source: source}
}

// RecordEvaluation implements app.EvaluationStore.
func (s *EvaluationStore) RecordEvaluation(ctx context.Context, ev event.EvaluationCompleted, maxFailures int) (app.Recording, error) {
	var rec app.Recording
	err := InTx(ctx, s.pool, func(tx pgx.Tx) error {
		var (
			snap   monitor.Snapshot
			userID string
		)
		err := tx.QueryRow(ctx, `
			SELECT user_id, state, status, last_evaluation_for, consecutive_failures, coalesce(last_error, ''),
			       confirm, coalesce(pending_state, ''), pending_count
			FROM monitors WHERE id = $1 FOR UPDATE`, ev.MonitorID).
			Scan(&userID, &snap.State, &snap.Status, &snap.LastEvaluationFor, &snap.ConsecutiveFailures, &snap.LastError,
				&snap.Confirm, &snap.PendingState, &snap.PendingCount)
		if err != nil {
			return fmt.Errorf("lock monitor: %w", translate(err))
		}
		out := monitor.Apply(snap, monitor.Result{ScheduledFor: ev.ScheduledFor, Status: ev.Status, State: ev.State, Error: ev.Error}, maxFailures)
		rec.Outcome = out

		id, err := uuid.NewV7()
		if err != nil {
			return fmt.Errorf("new evaluation id: %w", err)
		}
		var prev *monitor.State
		if !out.Stale {
			prev = &snap.State
		}
		tag, err := tx.Exec(ctx, `
			INSERT INTO evaluations (id, monitor_id, scheduled_for, started_at, finished_at, status, state,
			                         previous_state, changed, explanation, provider, model, input_tokens,
			                         output_tokens, cost, latency_ms, error, attempt, source_hash, monitor_version, facts_reused)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULLIF($11, ''), NULLIF($12, ''), $13, $14, $15, $16,
			        NULLIF($17, ''), $18, NULLIF($19, ''), $20, $21)
			ON CONFLICT (monitor_id, scheduled_for) DO NOTHING`,
			id, ev.MonitorID, ev.ScheduledFor, nullTime(ev.StartedAt), nullTime(ev.FinishedAt), ev.Status, stateOrUnknown(ev.State),
			prev, out.Changed, ev.Explanation, ev.Usage.Provider, ev.Usage.Model, ev.Usage.InputTokens,
			ev.Usage.OutputTokens, ev.Usage.Cost, ev.Usage.LatencyMS, ev.Error, max(ev.Attempt, 1), ev.SourceHash,
			max(ev.MonitorVersion, 1), ev.FactsReused)
		if err != nil {
			return fmt.Errorf("insert evaluation: %w", translate(err))
		}
		if tag.RowsAffected() == 0 {
			rec.Duplicate = true
			rec.Outcome = monitor.Outcome{Stale: true, From: snap.State, To: snap.State, Status: snap.Status}
			return nil
		}
		rec.EvaluationID = id.String()
		if err := insertFacts(ctx, tx, ev.MonitorID, rec.EvaluationID, ev.Facts, ev.FinishedAt); err != nil {
			return err
		}
		if out.Stale {
			return nil
		}
		_, err = tx.Exec(ctx, `
			UPDATE monitors SET state = $2, status = $3, consecutive_failures = $4, last_error = NULLIF($5, ''),
			       last_evaluated_at = $6, last_evaluation_for = $7,
			       state_changed_at = CASE WHEN $8 THEN $6 ELSE state_changed_at END, updated_at = now(),
			       pending_state = NULLIF($9, ''), pending_count = $10
			WHERE id = $1`,
			ev.MonitorID, out.To, out.Status, out.ConsecutiveFailures, out.LastError, ev.FinishedAt, ev.ScheduledFor, out.Changed,
			out.PendingState, out.PendingCount)
		if err != nil {
			return fmt.Errorf("apply evaluation to monitor: %w", translate(err))
		}
		if out.Status == monitor.StatusError && snap.Status != monitor.StatusError {
			if err := s.notifyFailing(ctx, tx, ev.MonitorID, userID, rec.EvaluationID, snap.State, ev.FinishedAt); err != nil {
				return err
			}
		}
		if !out.Changed {
			return nil
		}
		return streams.AppendOutbox(ctx, tx, s.source, event.StateChanged{
			MonitorID: ev.MonitorID, UserID: userID, EvaluationID: rec.EvaluationID,
			From: out.From, To: out.To, ScheduledFor: ev.ScheduledFor, At: ev.FinishedAt,
		})
	})
	if errors.Is(err, domain.ErrNotFound) {
		return rec, &domain.Error{Code: domain.ENOTFOUND, Message: "The monitor no longer exists.", Err: err}
	}
	return rec, err
}

func insertFacts(ctx context.Context, tx pgx.Tx, monitorID, evaluationID string, facts []monitor.Fact, fallback time.Time) error {
	if len(facts) == 0 {
		return nil
	}
	rows := make([][]any, len(facts))
	for i, f := range facts {
		observed := f.ObservedAt
		if observed.IsZero() {
			observed = fallback
		}
		rows[i] = []any{monitorID, evaluationID, f.Key, f.Number, f.Text, f.Bool, f.Unit, observed}
	}
	_, err := tx.CopyFrom(ctx, pgx.Identifier{"facts"},
		[]string{"monitor_id", "evaluation_id", "key", "value_number", "value_text", "value_bool", "unit", "observed_at"},
		pgx.CopyFromRows(rows))
	if err != nil {
		return fmt.Errorf("insert facts: %w", translate(err))
	}
	return nil
}

func stateOrUnknown(s monitor.State) monitor.State {
	if s == "" {
		return monitor.StateUnknown
	}
	return s
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// LastSucceeded implements app.PreviousStore.
func (s *EvaluationStore) LastSucceeded(ctx context.Context, m *monitor.Monitor) (app.Previous, error) {
	var (
		p             app.Previous
		id            string
		from, to      time.Time
		provider, mdl *string
	)
	err := s.pool.QueryRow(ctx, `
		SELECT id, monitor_version, coalesce(source_hash, ''), state, explanation, provider, model,
		       coalesce(started_at, scheduled_for), coalesce(finished_at, now())
		FROM evaluations WHERE monitor_id = $1 AND status = 'succeeded'
		ORDER BY scheduled_for DESC LIMIT 1`, m.ID).
		Scan(&id, &p.MonitorVersion, &p.SourceHash, &p.State, &p.Explanation, &provider, &mdl, &from, &to)
	if err != nil {
		return p, fmt.Errorf("last evaluation of %s: %w", m.ID, translate(err))
	}
	if provider != nil {
		p.Provider = *provider
	}
	if mdl != nil {
		p.Model = *mdl
	}
	keys := make([]string, len(m.Spec.Facts))
	for i, f := range m.Spec.Facts {
		keys[i] = f.Name
	}
	p.Facts, err = factsOfEvaluation(ctx, s.pool, m.ID, id, keys, from, to)
	return p, err
}

// factsOfEvaluationSQL loads the facts an evaluation stored. Facts are observed while the
// evaluation runs, so the lookup is a range scan of facts_monitor_key_time_idx per key,
// however long the monitor's history.
const factsOfEvaluationSQL = `
	SELECT key, value_number, value_text, value_bool, unit, observed_at FROM facts
	WHERE monitor_id = $1 AND key = ANY($2) AND observed_at BETWEEN $3 AND $4 AND evaluation_id = $5
	ORDER BY key`

func scanFacts(rows pgx.Rows) ([]monitor.Fact, error) {
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (monitor.Fact, error) {
		f := monitor.Fact{Confidence: 1}
		err := r.Scan(&f.Key, &f.Number, &f.Text, &f.Bool, &f.Unit, &f.ObservedAt)
		return f, err
	})
}

// factsOfEvaluation runs factsOfEvaluationSQL for an evaluation that ran from from to to.
func factsOfEvaluation(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, monitorID, evaluationID string, keys []string, from, to time.Time) ([]monitor.Fact, error) {
	rows, err := q.Query(ctx, factsOfEvaluationSQL, monitorID, keys, from, to, evaluationID)
	if err != nil {
		return nil, fmt.Errorf("load facts of evaluation %s: %w", evaluationID, translate(err))
	}
	facts, err := scanFacts(rows)
	if err != nil {
		return nil, fmt.Errorf("read facts of evaluation %s: %w", evaluationID, translate(err))
	}
	return facts, nil
}

// queueFactsOfEvaluation queues factsOfEvaluation's read into facts.
func queueFactsOfEvaluation(b *pgx.Batch, facts *[]monitor.Fact, monitorID, evaluationID string, keys []string, from, to time.Time) {
	b.Queue(factsOfEvaluationSQL, monitorID, keys, from, to, evaluationID).Query(func(rows pgx.Rows) error {
		got, err := scanFacts(rows)
		if err != nil {
			return fmt.Errorf("read facts of evaluation %s: %w", evaluationID, err)
		}
		*facts = got
		return nil
	})
}

// MonthlySpend returns what the user's evaluations cost in the calendar month (UTC) of
// month, for the AI budget.
func (s *EvaluationStore) MonthlySpend(ctx context.Context, userID string, month time.Time) (float64, error) {
	start := time.Date(month.Year(), month.Month(), 1, 0, 0, 0, 0, time.UTC)
	var spent float64
	err := s.pool.QueryRow(ctx, `
		SELECT coalesce(sum(e.cost), 0)::float8 FROM monitors m
		JOIN evaluations e ON e.monitor_id = m.id AND e.scheduled_for >= $2 AND e.scheduled_for < $3
		WHERE m.user_id = $1`, userID, start, start.AddDate(0, 1, 0)).Scan(&spent)
	if err != nil {
		return 0, fmt.Errorf("monthly spend of %s: %w", userID, translate(err))
	}
	return spent, nil
}

// notifyFailing tells the owner that a monitor was put in error: a notification to the
// user's own address, sent by the mailer like any other.
func (s *EvaluationStore) notifyFailing(ctx context.Context, tx pgx.Tx, monitorID, userID, evaluationID string, state monitor.State, at time.Time) error {
	id, err := uuid.NewV7()
	if err != nil {
		return fmt.Errorf("new notification id: %w", err)
	}
	tag, err := tx.Exec(ctx, `
		INSERT INTO notifications (id, user_id, monitor_id, evaluation_id, kind, recipient, from_state, to_state)
		SELECT $1, $2, $3, $4, 'monitor_failing', u.email, $5, $5 FROM users u WHERE u.id = $2
		ON CONFLICT (evaluation_id) WHERE kind = 'monitor_failing' DO NOTHING`, id, userID, monitorID, evaluationID, state)
	if err != nil {
		return fmt.Errorf("insert failing notification: %w", translate(err))
	}
	if tag.RowsAffected() == 0 {
		return nil
	}
	return streams.AppendOutbox(ctx, tx, s.source, event.NotificationRequested{NotificationID: id.String(), UserID: userID, MonitorID: monitorID, At: at})
}

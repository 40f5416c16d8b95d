package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

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

// RecordEvaluations implements app.EvaluationStore in a fixed number of statements
// whatever the batch size: one lock-and-read of the monitors, one read of the slots already
// recorded, one insert of the evaluations, one COPY of their facts, one update of the
// monitors and one insert into the outbox (plus one insert for the rare failing notices).
func (s *EvaluationStore) RecordEvaluations(ctx context.Context, evs []event.EvaluationCompleted, decide func(app.RecordState) (app.RecordPlan, error)) (app.RecordPlan, error) {
	var plan app.RecordPlan
	err := InTx(ctx, s.pool, func(tx pgx.Tx) error {
		ids := make([]string, len(evs))
		slots := make([]time.Time, len(evs))
		for i, ev := range evs {
			ids[i], slots[i] = ev.MonitorID, ev.ScheduledFor
		}
		st, err := loadRecordState(ctx, tx, ids, slots)
		if err != nil {
			return err
		}
		if plan, err = decide(st); err != nil {
			return err
		}
		if err := insertEvaluations(ctx, tx, plan.Evaluations); err != nil {
			return err
		}
		if err := updateRecordedMonitors(ctx, tx, plan.Monitors); err != nil {
			return err
		}
		events := make([]event.Event, 0, len(plan.StateChanges)+len(plan.Failing))
		for _, sc := range plan.StateChanges {
			events = append(events, sc)
		}
		requested, err := notifyFailing(ctx, tx, plan.Failing)
		if err != nil {
			return err
		}
		events = append(events, requested...)
		if requested, err = notifyBroken(ctx, tx, plan.Broken); err != nil {
			return err
		}
		events = append(events, requested...)
		return streams.AppendOutbox(ctx, tx, s.source, events...)
	})
	return plan, err
}

// loadRecordState locks the monitors, in id order so concurrent recorders cannot
// deadlock, and reads which of the slots are recorded already.
func loadRecordState(ctx context.Context, tx pgx.Tx, monitorIDs []string, slots []time.Time) (app.RecordState, error) {
	st := app.RecordState{Monitors: map[string]app.MonitorRecord{}, Recorded: map[app.SlotKey]bool{}}
	rows, err := tx.Query(ctx, `
		SELECT id::text, user_id::text, version, state, status, last_evaluation_for, consecutive_failures, coalesce(last_error, ''),
		       confirm, coalesce(pending_state, ''), pending_count, extraction_misses
		FROM monitors WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE`, monitorIDs)
	if err != nil {
		return st, fmt.Errorf("lock monitors: %w", translate(err))
	}
	var id string
	var m app.MonitorRecord
	_, err = pgx.ForEachRow(rows, []any{&id, &m.UserID, &m.Version, &m.State, &m.Status, &m.LastEvaluationFor, &m.ConsecutiveFailures, &m.LastError,
		&m.Confirm, &m.PendingState, &m.PendingCount, &m.ExtractionMisses}, func() error {
		st.Monitors[id] = m
		m = app.MonitorRecord{}
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("lock monitors: %w", translate(err))
	}
	rows, err = tx.Query(ctx, `
		SELECT e.monitor_id::text, e.scheduled_for FROM evaluations e
		JOIN unnest($1::uuid[], $2::timestamptz[]) AS s(monitor_id, scheduled_for)
		  ON e.monitor_id = s.monitor_id AND e.scheduled_for = s.scheduled_for`, monitorIDs, slots)
	if err != nil {
		return st, fmt.Errorf("recorded slots: %w", translate(err))
	}
	var slot time.Time
	_, err = pgx.ForEachRow(rows, []any{&id, &slot}, func() error {
		st.Recorded[app.SlotOf(id, slot)] = true
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("recorded slots: %w", translate(err))
	}
	return st, nil
}

// insertEvaluations inserts the evaluations in one statement and their facts in one COPY.
func insertEvaluations(ctx context.Context, tx pgx.Tx, nes []app.NewEvaluation) error {
	if len(nes) == 0 {
		return nil
	}
	n := len(nes)
	var (
		ids, monitors, statuses, states, explanations, providers, models, errs, hashes = make([]string, n), make([]string, n),
			make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		slots, started, finished                 = make([]time.Time, n), make([]*time.Time, n), make([]*time.Time, n)
		prevs                                    = make([]*string, n)
		changed, reused                          = make([]bool, n), make([]bool, n)
		inTokens, outTokens, latencies, attempts = make([]int64, n), make([]int64, n), make([]int64, n), make([]int, n)
		costs                                    = make([]float64, n)
		versions                                 = make([]int64, n)
		misses, repairs                          = make([]*string, n), make([]*string, n)
		fetches                                  = make([]*int64, n)
		factRows                                 [][]any
	)
	for i, ne := range nes {
		ev := ne.Event
		ids[i], monitors[i], slots[i], started[i], finished[i] = ne.ID, ev.MonitorID, ev.ScheduledFor, nullTime(ev.StartedAt), nullTime(ev.FinishedAt)
		statuses[i], states[i], changed[i], explanations[i] = string(ev.Status), string(stateOrUnknown(ev.State)), ne.Changed, ev.Explanation
		if ne.Previous != nil {
			p := string(*ne.Previous)
			prevs[i] = &p
		}
		providers[i], models[i], inTokens[i], outTokens[i] = ev.Usage.Provider, ev.Usage.Model, int64(ev.Usage.InputTokens), int64(ev.Usage.OutputTokens)
		costs[i], latencies[i], errs[i], attempts[i] = ev.Usage.Cost, int64(ev.Usage.LatencyMS), ev.Error, max(ev.Attempt, 1)
		hashes[i], versions[i], reused[i] = ev.SourceHash, max(ev.MonitorVersion, 1), ev.FactsReused
		if ev.Usage.FetchMS > 0 {
			ms := ev.Usage.FetchMS
			fetches[i] = &ms
		}
		var err error
		if misses[i], err = jsonOrNil(ev.Miss); err != nil {
			return fmt.Errorf("encode miss of %s: %w", ev.MonitorID, err)
		}
		if repairs[i], err = jsonOrNil(ev.Repair); err != nil {
			return fmt.Errorf("encode repair of %s: %w", ev.MonitorID, err)
		}
		for _, f := range ev.Facts {
			observed := f.ObservedAt
			if observed.IsZero() {
				observed = ev.FinishedAt
			}
			factRows = append(factRows, []any{ev.MonitorID, ne.ID, f.Key, f.Number, f.Text, f.Bool, f.Unit, observed,
				nullString(monitor.CapEvidence(f.Evidence)), nullConfidence(f.Confidence)})
		}
	}
	_, err := tx.Exec(ctx, `
		INSERT INTO evaluations (id, monitor_id, scheduled_for, started_at, finished_at, status, state,
		                         previous_state, changed, explanation, provider, model, input_tokens,
		                         output_tokens, cost, latency_ms, error, attempt, source_hash, monitor_version, facts_reused, miss, repair, fetch_ms)
		SELECT id, monitor_id, scheduled_for, started_at, finished_at, status, state, previous_state, changed, explanation,
		       NULLIF(provider, ''), NULLIF(model, ''), input_tokens, output_tokens, cost, latency_ms, NULLIF(error, ''), attempt,
		       NULLIF(source_hash, ''), monitor_version, facts_reused, miss, repair, fetch_ms
		FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[], $4::timestamptz[], $5::timestamptz[], $6::text[], $7::text[],
		            $8::text[], $9::bool[], $10::text[], $11::text[], $12::text[], $13::bigint[], $14::bigint[], $15::float8[],
		            $16::bigint[], $17::text[], $18::int[], $19::text[], $20::bigint[], $21::bool[], $22::jsonb[], $23::jsonb[], $24::int[])
		     AS e(id, monitor_id, scheduled_for, started_at, finished_at, status, state, previous_state, changed, explanation,
		          provider, model, input_tokens, output_tokens, cost, latency_ms, error, attempt, source_hash, monitor_version, facts_reused,
		          miss, repair, fetch_ms)
		ON CONFLICT (monitor_id, scheduled_for) DO NOTHING`,
		ids, monitors, slots, started, finished, statuses, states, prevs, changed, explanations, providers, models,
		inTokens, outTokens, costs, latencies, errs, attempts, hashes, versions, reused, misses, repairs, fetches)
	if err != nil {
		return fmt.Errorf("insert evaluations: %w", translate(err))
	}
	if len(factRows) == 0 {
		return nil
	}
	_, err = tx.CopyFrom(ctx, pgx.Identifier{"facts"},
		[]string{"monitor_id", "evaluation_id", "key", "value_number", "value_text", "value_bool", "unit", "observed_at", "evidence", "confidence"},
		pgx.CopyFromRows(factRows))
	if err != nil {
		return fmt.Errorf("insert facts: %w", translate(err))
	}
	return nil
}

// updateRecordedMonitors writes each monitor's new state in one statement.
func updateRecordedMonitors(ctx context.Context, tx pgx.Tx, ms []app.MonitorChange) error {
	if len(ms) == 0 {
		return nil
	}
	n := len(ms)
	ids, states, statuses, lastErrs, pendings := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	failures, counts := make([]int, n), make([]int, n)
	evaluated, fors := make([]time.Time, n), make([]time.Time, n)
	changedAt := make([]*time.Time, n)
	lastSuccess, repairs, specs := make([]*string, n), make([]*string, n), make([]*string, n)
	extractionMisses := make([]int, n)
	for i, m := range ms {
		var err error
		if repairs[i], err = jsonOrNil(m.Repair); err != nil {
			return fmt.Errorf("encode repair of %s: %w", m.MonitorID, err)
		}
		if specs[i], err = jsonOrNil(m.RepairedSpec); err != nil {
			return fmt.Errorf("encode repaired spec of %s: %w", m.MonitorID, err)
		}
		extractionMisses[i] = m.ExtractionMisses
		if m.LastSuccess != nil {
			b, err := json.Marshal(m.LastSuccess)
			if err != nil {
				return fmt.Errorf("encode last success of %s: %w", m.MonitorID, err)
			}
			js := string(b)
			lastSuccess[i] = &js
		}
		o := m.Outcome
		ids[i], states[i], statuses[i], lastErrs[i], pendings[i] = m.MonitorID, string(o.To), string(o.Status), o.LastError, string(o.PendingState)
		failures[i], counts[i], evaluated[i], fors[i], changedAt[i] = o.ConsecutiveFailures, o.PendingCount, m.EvaluatedAt, m.EvaluationFor, m.StateChangedAt
	}
	_, err := tx.Exec(ctx, `
		UPDATE monitors m SET state = u.state, status = u.status, consecutive_failures = u.failures,
		       last_error = NULLIF(u.last_error, ''), last_evaluated_at = u.evaluated_at, last_evaluation_for = u.evaluation_for,
		       state_changed_at = coalesce(u.changed_at, m.state_changed_at), updated_at = now(),
		       pending_state = NULLIF(u.pending_state, ''), pending_count = u.pending_count,
		       last_success = coalesce(u.last_success, m.last_success),
		       extraction_misses = u.misses, repair = coalesce(u.repair, m.repair),
		       -- an applied repair is an edit: evaluations made with the old selector are history only
		       spec = coalesce(u.spec, m.spec), version = m.version + CASE WHEN u.spec IS NULL THEN 0 ELSE 1 END,
		       extraction_version = CASE WHEN u.spec IS NULL THEN m.extraction_version ELSE m.version + 1 END
		FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int[], $5::text[], $6::timestamptz[], $7::timestamptz[],
		            $8::timestamptz[], $9::text[], $10::int[], $11::jsonb[], $12::int[], $13::jsonb[], $14::jsonb[])
		     AS u(id, state, status, failures, last_error, evaluated_at, evaluation_for, changed_at, pending_state, pending_count, last_success,
		          misses, repair, spec)
		WHERE m.id = u.id`, ids, states, statuses, failures, lastErrs, evaluated, fors, changedAt, pendings, counts, lastSuccess,
		extractionMisses, repairs, specs)
	if err != nil {
		return fmt.Errorf("apply evaluations to monitors: %w", translate(err))
	}
	return nil
}

func stateOrUnknown(s monitor.State) monitor.State {
	if s == "" {
		return monitor.StateUnknown
	}
	return s
}

func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// nullConfidence stores a confidence from 0 to 1, as float4; none is NULL.
func nullConfidence(c float64) *float32 {
	if c <= 0 {
		return nil
	}
	v := float32(min(c, 1))
	return &v
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
		       scheduled_for, coalesce(finished_at, now())
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
	SELECT ` + factColumns + ` FROM facts
	WHERE monitor_id = $1 AND key = ANY($2) AND observed_at BETWEEN $3 AND $4 AND evaluation_id = $5
	ORDER BY key`

// factColumns are a stored fact as scanFact reads it. Facts stored before evidence and
// confidence were kept read as "" and 0.
const factColumns = `key, value_number, value_text, value_bool, unit, observed_at, coalesce(evidence, ''), coalesce(confidence, 0)::float8`

// factTargets are the scan targets of factColumns, for queries that read more beside them.
func factTargets(f *monitor.Fact) []any {
	return []any{&f.Key, &f.Number, &f.Text, &f.Bool, &f.Unit, &f.ObservedAt, &f.Evidence, &f.Confidence}
}

func scanFact(r pgx.CollectableRow) (monitor.Fact, error) {
	var f monitor.Fact
	err := r.Scan(factTargets(&f)...)
	return f, err
}

func scanFacts(rows pgx.Rows) ([]monitor.Fact, error) {
	return pgx.CollectRows(rows, scanFact)
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

// jsonOrNil encodes v for a jsonb column, nil (NULL) for a nil pointer.
func jsonOrNil[T any](v *T) (*string, error) {
	if v == nil {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	s := string(b)
	return &s, nil
}

// notifyFailing creates, for each notice, the notification that tells the owner the
// monitor was put in error (once per evaluation), and returns their NotificationRequested.
func notifyFailing(ctx context.Context, tx pgx.Tx, notices []app.FailingNotice) ([]event.Event, error) {
	ns := make([]ownerNotice, len(notices))
	for i, f := range notices {
		ns[i] = ownerNotice{MonitorID: f.MonitorID, UserID: f.UserID, EvaluationID: f.EvaluationID, State: f.State, At: f.At}
	}
	return notifyOwner(ctx, tx, app.KindMonitorFailing, ns)
}

// notifyBroken does the same for the notices that a fact is no longer found.
func notifyBroken(ctx context.Context, tx pgx.Tx, notices []app.BrokenNotice) ([]event.Event, error) {
	ns := make([]ownerNotice, len(notices))
	for i, f := range notices {
		ns[i] = ownerNotice(f)
	}
	return notifyOwner(ctx, tx, app.KindExtractionBroken, ns)
}

// ownerNotice is a notification to a monitor's owner about one evaluation.
type ownerNotice struct {
	MonitorID, UserID, EvaluationID string
	State                           monitor.State
	At                              time.Time
}

// notifyOwner creates the notifications of kind (monitor_failing or extraction_broken), at
// most one per evaluation and kind, and returns their NotificationRequested.
func notifyOwner(ctx context.Context, tx pgx.Tx, kind string, notices []ownerNotice) ([]event.Event, error) {
	if len(notices) == 0 {
		return nil, nil
	}
	n := len(notices)
	ids, users, monitors, evaluations, states := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	for i, f := range notices {
		id, err := uuid.NewV7()
		if err != nil {
			return nil, fmt.Errorf("new notification id: %w", err)
		}
		ids[i], users[i], monitors[i], evaluations[i], states[i] = id.String(), f.UserID, f.MonitorID, f.EvaluationID, string(f.State)
	}
	// The partial unique indexes differ by kind, so the conflict target names it.
	conflict := map[string]string{app.KindMonitorFailing: "monitor_failing", app.KindExtractionBroken: "extraction_broken"}[kind]
	rows, err := tx.Query(ctx, `
		INSERT INTO notifications (id, user_id, monitor_id, evaluation_id, kind, recipient, from_state, to_state)
		SELECT f.id, f.user_id, f.monitor_id, f.evaluation_id, $6, u.email, f.state, f.state
		FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[]) AS f(id, user_id, monitor_id, evaluation_id, state)
		JOIN users u ON u.id = f.user_id
		ON CONFLICT (evaluation_id) WHERE kind = '`+conflict+`' DO NOTHING
		RETURNING id::text, user_id::text, monitor_id::text`, ids, users, monitors, evaluations, states, kind)
	if err != nil {
		return nil, fmt.Errorf("insert %s notifications: %w", kind, translate(err))
	}
	at := map[string]time.Time{}
	for i, f := range notices {
		at[ids[i]] = f.At
	}
	var events []event.Event
	var id, userID, monitorID string
	_, err = pgx.ForEachRow(rows, []any{&id, &userID, &monitorID}, func() error {
		events = append(events, event.NotificationRequested{NotificationID: id, UserID: userID, MonitorID: monitorID, At: at[id]})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("insert %s notifications: %w", kind, translate(err))
	}
	return events, nil
}

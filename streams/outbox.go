package streams

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/vigilhq/vigil/domain/event"
)

// OutboxChannel is the PostgreSQL NOTIFY channel the outbox trigger signals on commit.
const OutboxChannel = "vigil_outbox"

// Relay defaults, used for RelayConfig fields left zero.
const (
	// RelayBatchSizeDefault is how many rows one relay transaction publishes: one atomic
	// batch.
	RelayBatchSizeDefault = AtomicBatchMax
	// RelayPollIntervalDefault is how often the relay looks for rows without a NOTIFY.
	RelayPollIntervalDefault = time.Second
	// RelayRetentionDefault is how long published rows are kept.
	RelayRetentionDefault = 24 * time.Hour
	// RelayRetryMax caps the delay between attempts while publishing fails.
	RelayRetryMax = 5 * time.Second
	// relayCleanupInterval is how often published rows past retention are deleted.
	relayCleanupInterval = time.Minute
	// relayCleanupBatch bounds one delete of old rows.
	relayCleanupBatch = 10000
)

// AppendOutbox writes the events into the outbox inside the caller's transaction, so they are
// published if and only if the transaction commits. Each row holds the subject, the JSON body
// and the CloudEvents headers; an event already in the outbox (same event id) is skipped. All
// the events go in one statement, in order: a batch of hundreds costs the database one
// insert, not hundreds.
func AppendOutbox(ctx context.Context, tx pgx.Tx, source string, evs ...event.Event) error {
	if len(evs) == 0 {
		return nil
	}
	n := len(evs)
	ids, subjects, types, payloads, headers := make([]string, n), make([]string, n), make([]string, n), make([][]byte, n), make([]map[string]string, n)
	for i, ev := range evs {
		if ev == nil {
			return errors.New("append to outbox: nil event")
		}
		subject, err := Subject(ev)
		if err != nil {
			return fmt.Errorf("append to outbox: %w", err)
		}
		h, err := ceHeaders(ctx, ev, source)
		if err != nil {
			return fmt.Errorf("append to outbox: %w", err)
		}
		data, err := json.Marshal(ev)
		if err != nil {
			return fmt.Errorf("append %s %s to outbox: encode: %w", ev.EventType(), ev.EventID(), err)
		}
		ids[i], subjects[i], types[i], payloads[i], headers[i] = ev.EventID(), subject, ev.EventType(), data, h
	}
	// ORDER BY ord keeps the identity column in the order of evs, which is the order the
	// relay publishes in.
	_, err := tx.Exec(ctx, `
		INSERT INTO outbox (event_id, subject, type, payload, headers)
		SELECT event_id, subject, type, payload, headers
		FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::jsonb[]) WITH ORDINALITY
		     AS e(event_id, subject, type, payload, headers, ord)
		ORDER BY ord
		ON CONFLICT (event_id) DO NOTHING`, ids, subjects, types, payloads, headers)
	if err != nil {
		return fmt.Errorf("append %d events to outbox: %w", n, err)
	}
	return nil
}

// RelayConfig configures a Relay. Zero values take the Relay...Default constants.
type RelayConfig struct {
	BatchSize int
	// Workers is how many batches one relay publishes at once (default 1). JetStream stores
	// each stream's messages one after the other, with an fsync each on a single server, so
	// more workers mostly help when the outbox holds events for several streams.
	Workers int
	// PollInterval is the fallback when no NOTIFY arrives.
	PollInterval time.Duration
	Logger       zerolog.Logger
	// Retention is how long published rows are kept before they are deleted.
	Retention time.Duration
	// PublishTimeout bounds the wait for one batch's acks (default PublishTimeoutDefault).
	PublishTimeout time.Duration
	// Tracer records each event's publication as a span of the trace its row stored; nil
	// publishes the stored traceparent as it is.
	Tracer trace.Tracer
}

// Relay publishes outbox rows to JetStream and marks them published. Several relays may run
// against one database: each batch is claimed with FOR UPDATE SKIP LOCKED.
type Relay struct {
	pool *pgxpool.Pool
	pub  *Publisher
	cfg  RelayConfig
	log  zerolog.Logger
}

// NewRelay returns a relay that publishes the outbox of pool with pub.
func NewRelay(pool *pgxpool.Pool, pub *Publisher, cfg RelayConfig) *Relay {
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = RelayBatchSizeDefault
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = RelayPollIntervalDefault
	}
	if cfg.Retention <= 0 {
		cfg.Retention = RelayRetentionDefault
	}
	if cfg.PublishTimeout <= 0 {
		cfg.PublishTimeout = PublishTimeoutDefault
	}
	cfg.Workers = max(cfg.Workers, 1)
	cfg.Tracer = tracerOr(cfg.Tracer)
	return &Relay{pool: pool, pub: pub, cfg: cfg, log: cfg.Logger.With().Str("component", "outbox_relay").Logger()}
}

// Run publishes pending rows whenever a transaction that wrote to the outbox commits (LISTEN
// on a dedicated connection, re-established after connection loss) and every PollInterval.
// While publishing fails it retries with backoff capped at RelayRetryMax. It deletes published
// rows older than Retention. Run returns nil when ctx is cancelled.
func (r *Relay) Run(ctx context.Context) error {
	wake := make(chan struct{}, 1)
	lctx, lcancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		r.listen(lctx, wake)
	}()
	defer func() {
		lcancel()
		wg.Wait()
	}()

	poll := time.NewTicker(r.cfg.PollInterval)
	defer poll.Stop()
	bo := newBackoff(RelayRetryMax)
	var (
		failures    int
		lastCleanup time.Time
	)
	for {
		n, err := r.Flush(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			failures++
			delay := bo.NextBackOff()
			if failures == 1 {
				r.log.Warn().Err(err).Int("published", n).Msg("outbox relay: publishing failed; retrying until it succeeds")
			} else {
				r.log.Debug().Err(err).Int("failures", failures).Dur("retry_in", delay).Msg("outbox relay: publishing failed again")
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(delay):
			}
			continue
		}
		if failures > 0 {
			r.log.Info().Int("failures", failures).Int("published", n).Msg("outbox relay: publishing recovered")
			failures = 0
			bo.Reset()
		}
		if time.Since(lastCleanup) >= relayCleanupInterval {
			lastCleanup = time.Now()
			if err := r.cleanup(ctx); err != nil && ctx.Err() == nil {
				r.log.Warn().Err(err).Msg("outbox relay: delete published rows")
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
		case <-poll.C:
		}
	}
}

// Flush publishes every row pending now, batch by batch with RelayConfig.Workers batches at
// once, and returns how many it published. Rows locked by another relay are left to it.
func (r *Relay) Flush(ctx context.Context) (int, error) {
	if r.cfg.Workers == 1 {
		return r.flush(ctx)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		total int
		errs  []error
	)
	for range r.cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := r.flush(ctx)
			mu.Lock()
			defer mu.Unlock()
			total += n
			if err != nil {
				errs = append(errs, err)
			}
		}()
	}
	wg.Wait()
	return total, errors.Join(errs...)
}

// flush publishes batches until fewer than BatchSize rows are left to claim.
func (r *Relay) flush(ctx context.Context) (int, error) {
	total := 0
	for {
		n, err := r.publishBatch(ctx)
		total += n
		if err != nil {
			return total, err
		}
		if n < r.cfg.BatchSize {
			return total, nil
		}
	}
}

type outboxRow struct {
	ID      int64
	EventID string
	Subject string
	Payload []byte
	Headers map[string]string
}

// publishBatch claims up to BatchSize pending rows, publishes them with their stored message
// ids and marks them published, all in one transaction. A crash between publish and commit
// only causes a republish that JetStream de-duplicates.
func (r *Relay) publishBatch(ctx context.Context) (int, error) {
	tx, err := r.pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("outbox: begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // a no-op after Commit

	rows, err := tx.Query(ctx, `SELECT id, event_id, subject, payload, headers FROM outbox
		WHERE published_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED`, r.cfg.BatchSize)
	if err != nil {
		return 0, fmt.Errorf("outbox: claim rows: %w", err)
	}
	batch, err := pgx.CollectRows(rows, pgx.RowToStructByPos[outboxRow])
	if err != nil {
		return 0, fmt.Errorf("outbox: claim rows: %w", err)
	}
	if len(batch) == 0 {
		return 0, nil
	}
	msgs := make([]*nats.Msg, len(batch))
	ids := make([]int64, len(batch))
	spans := make([]trace.Span, len(batch))
	for i, row := range batch {
		m := nats.NewMsg(row.Subject)
		m.Data = row.Payload
		for k, v := range row.Headers {
			m.Header.Set(k, v)
		}
		m.Header.Set(HeaderMsgID, row.EventID)
		// The event goes on in a span of the trace that wrote it, when it has one.
		if tp := row.Headers[HeaderTraceparent]; tp != "" {
			sctx, span := r.cfg.Tracer.Start(WithTraceparent(ctx, tp), "publish "+row.Subject,
				trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(
					attribute.String("messaging.system", "nats"), attribute.String("messaging.operation.type", "send"),
					attribute.String("messaging.destination.name", row.Subject), attribute.String("messaging.message.id", row.EventID)))
			if next := Traceparent(sctx); next != "" {
				m.Header.Set(HeaderTraceparent, next)
			}
			spans[i] = span
		}
		msgs[i] = m
		ids[i] = row.ID
	}

	pctx, cancel := context.WithTimeout(ctx, r.cfg.PublishTimeout)
	errs := r.pub.publishMsgs(pctx, msgs)
	cancel()
	for i, span := range spans {
		if span != nil {
			endSpan(span, errs[i])
		}
	}
	if perr := firstError(errs); perr != nil {
		_ = tx.Rollback(ctx)
		r.recordFailure(ctx, batch, errs)
		return 0, fmt.Errorf("outbox: %w", perr)
	}

	// clock_timestamp, not now(): the time JetStream acknowledged the rows, not the time
	// this transaction began.
	if _, err := tx.Exec(ctx, `UPDATE outbox SET published_at = clock_timestamp() WHERE id = ANY($1)`, ids); err != nil {
		return 0, fmt.Errorf("outbox: mark %d rows published: %w", len(ids), err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("outbox: commit: %w", err)
	}
	return len(batch), nil
}

// recordFailure counts a failed attempt on the rows that could not be published, best effort:
// rows another relay has claimed meanwhile are skipped rather than waited for.
func (r *Relay) recordFailure(ctx context.Context, batch []outboxRow, errs []error) {
	var (
		ids     []int64
		lastErr string
	)
	for i, err := range errs {
		if err != nil {
			ids = append(ids, batch[i].ID)
			lastErr = truncate(err.Error(), deadErrorMax)
		}
	}
	_, err := r.pool.Exec(ctx, `UPDATE outbox SET attempts = attempts + 1, last_error = $2
		WHERE id IN (SELECT id FROM outbox WHERE id = ANY($1) AND published_at IS NULL FOR UPDATE SKIP LOCKED)`,
		ids, lastErr)
	if err != nil && ctx.Err() == nil {
		r.log.Debug().Err(err).Msg("outbox relay: record failed attempt")
	}
}

// cleanup deletes published rows older than Retention, a bounded number at a time.
func (r *Relay) cleanup(ctx context.Context) error {
	_, err := r.pool.Exec(ctx, `DELETE FROM outbox WHERE id IN (
		SELECT id FROM outbox WHERE published_at < now() - make_interval(secs => $1) LIMIT $2)`,
		r.cfg.Retention.Seconds(), relayCleanupBatch)
	if err != nil {
		return fmt.Errorf("outbox: delete published rows: %w", err)
	}
	return nil
}

// listen keeps a dedicated connection LISTENing on OutboxChannel and signals wake on every
// notification, reconnecting with backoff when the connection is lost.
func (r *Relay) listen(ctx context.Context, wake chan<- struct{}) {
	bo := newBackoff(RelayRetryMax)
	for {
		listened, err := r.listenOnce(ctx, wake)
		if ctx.Err() != nil {
			return
		}
		if listened {
			bo.Reset()
		}
		delay := bo.NextBackOff()
		r.log.Warn().Err(err).Dur("retry_in", delay).Msg("outbox relay: listen connection lost; polling until it is back")
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
	}
}

func (r *Relay) listenOnce(ctx context.Context, wake chan<- struct{}) (bool, error) {
	conn, err := pgx.ConnectConfig(ctx, r.pool.Config().ConnConfig.Copy())
	if err != nil {
		return false, fmt.Errorf("outbox: connect listener: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+OutboxChannel); err != nil {
		return false, fmt.Errorf("outbox: listen: %w", err)
	}
	// Rows may have been committed while nobody listened.
	signal(wake)
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return true, fmt.Errorf("outbox: wait for notification: %w", err)
		}
		signal(wake)
	}
}

// signal wakes the receiver without blocking; one pending wake-up is enough.
func signal(c chan<- struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func newBackoff(maxDelay time.Duration) *backoff.ExponentialBackOff {
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = 100 * time.Millisecond
	bo.MaxInterval = maxDelay
	bo.MaxElapsedTime = 0
	bo.Reset()
	return bo
}

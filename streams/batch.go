package streams

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// Batch runner defaults, used for BatchConfig fields left zero.
const (
	// BatchSizeDefault is the most messages one batch holds.
	BatchSizeDefault = 100
)

// BatchHandler processes a batch of messages as one unit of work, typically one database
// transaction, so it must do all of it or none. Its error settles the whole batch: nil acks
// every message. Retry(err, after) redelivers every message after the delay. Any other
// error splits the batch in halves that are handled again on their own, down to single
// messages, whose error then settles them as a Handler's does (Permanent dead-letters,
// others back off); so one poison message is dead-lettered alone and never stalls the rest.
// Messages whose envelope cannot be decoded are dead-lettered before the handler sees them.
type BatchHandler func(ctx context.Context, ms []Message) error

// BatchConfig configures RunBatch. RunConfig.Concurrency is how many batches run at once.
type BatchConfig struct {
	RunConfig
	// Size is the most messages in one batch (default BatchSizeDefault).
	Size int
	// Wait is how long a batch that is not full waits for more. By default (0) it does not
	// wait: a batch is the messages delivered by the time a handler is free. A lone message
	// is then handled at once, and under load the messages that arrive while one batch is
	// written make the next one, as a database groups commits.
	Wait time.Duration
}

// RunBatch consumes the durable consumer cfg.Consumer of cfg.Stream with h, handing it up
// to cfg.Size messages at a time, until ctx is cancelled; then it stops fetching, lets the
// batches in hand finish, releases the messages not yet handed out and returns nil. The
// consumer's MaxAckPending must allow Size × Concurrency messages in flight.
func RunBatch(ctx context.Context, js jetstream.JetStream, h BatchHandler, cfg BatchConfig) error {
	if h == nil {
		return errors.New("run batch consumer: nil handler")
	}
	if cfg.Size <= 0 {
		cfg.Size = BatchSizeDefault
	}
	if cfg.Wait < 0 {
		cfg.Wait = 0
	}
	r, err := newRunner(ctx, js, cfg.RunConfig)
	if err != nil {
		return err
	}
	b := &batcher{runner: r, h: h, size: cfg.Size, wait: cfg.Wait, in: make(chan jetstream.Msg, cfg.Size*r.cfg.Concurrency)}

	// Handlers outlive ctx by up to DrainTimeout so the batches in hand can finish.
	hctx, hcancel := context.WithCancel(context.WithoutCancel(ctx))
	defer hcancel()

	cc, err := r.cons.Consume(func(msg jetstream.Msg) {
		select {
		case <-ctx.Done():
			r.release(msg)
		case b.in <- msg:
		}
	},
		jetstream.PullMaxMessages(cfg.Size*r.cfg.Concurrency),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			r.log.Warn().Err(err).Msg("consume")
		}),
	)
	if err != nil {
		return fmt.Errorf("run batch consumer %s on %s: consume: %w", r.cfg.Consumer, r.cfg.Stream, err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range r.cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.work(hctx, stop)
		}()
	}
	r.log.Info().Int("concurrency", r.cfg.Concurrency).Int("batch", cfg.Size).Msg("batch consumer started")

	var runErr error
	select {
	case <-ctx.Done():
	case <-cc.Closed():
		runErr = fmt.Errorf("run batch consumer %s on %s: consuming stopped", r.cfg.Consumer, r.cfg.Stream)
	}
	cc.Drain()
	drainTimer := time.AfterFunc(r.cfg.DrainTimeout, hcancel)
	defer drainTimer.Stop()
	select {
	case <-cc.Closed():
	case <-time.After(r.cfg.DrainTimeout):
		cc.Stop()
	}
	close(stop)
	wg.Wait()
	for {
		select {
		case msg := <-b.in:
			r.release(msg)
			continue
		default:
		}
		break
	}
	r.log.Info().Msg("batch consumer stopped")
	return runErr
}

type batcher struct {
	*runner
	h    BatchHandler
	size int
	wait time.Duration
	in   chan jetstream.Msg
}

// work collects batches from b.in and handles them until stop is closed.
func (b *batcher) work(ctx context.Context, stop <-chan struct{}) {
	timer := time.NewTimer(b.wait)
	timer.Stop()
	for {
		var first jetstream.Msg
		select {
		case <-stop:
			return
		case first = <-b.in:
		}
		batch := b.fill([]jetstream.Msg{first}, timer, stop)
		b.handle(ctx, batch)
	}
}

// fill adds to batch the messages already delivered, then, if it is not full and b.wait is
// set, those that arrive within b.wait.
func (b *batcher) fill(batch []jetstream.Msg, timer *time.Timer, stop <-chan struct{}) []jetstream.Msg {
	for len(batch) < b.size {
		select {
		case msg := <-b.in:
			batch = append(batch, msg)
			continue
		default:
		}
		break
	}
	if b.wait == 0 || len(batch) == b.size {
		return batch
	}
	timer.Reset(b.wait)
	defer timer.Stop()
	for len(batch) < b.size {
		select {
		case msg := <-b.in:
			batch = append(batch, msg)
		case <-timer.C:
			return batch
		case <-stop:
			return batch
		}
	}
	return batch
}

// item is one delivery of a batch.
type item struct {
	msg jetstream.Msg
	m   Message
	log zerolog.Logger
}

// handle decodes a batch, dead-letters what cannot be decoded and runs the handler on the rest.
func (b *batcher) handle(ctx context.Context, msgs []jetstream.Msg) {
	items := make([]item, 0, len(msgs))
	for _, msg := range msgs {
		m, log, herr, ok := b.message(msg)
		if !ok {
			continue
		}
		if herr != nil {
			b.observe(b.settle(ctx, msg, m, herr, log), 0)
			continue
		}
		items = append(items, item{msg: msg, m: m, log: log})
	}
	if len(items) > 0 {
		b.run(ctx, items)
	}
}

// run calls the handler on items and settles them; a failed batch of more than one is split.
func (b *batcher) run(ctx context.Context, items []item) {
	start := time.Now()
	err := b.call(ctx, items)
	_, isRetry := retryAfter(err)
	if err != nil && len(items) > 1 && !isRetry {
		b.log.Debug().Err(err).Int("batch", len(items)).Msg("batch failed; splitting it")
		mid := len(items) / 2
		b.run(ctx, items[:mid])
		b.run(ctx, items[mid:])
		return
	}
	d := time.Since(start)
	for _, it := range items {
		b.observe(b.settle(ctx, it.msg, it.m, err, it.log), d)
	}
}

// call runs the handler on a batch, sending InProgress for every message while it runs
// longer than a third of AckWait, and turns a panic into an error.
func (b *batcher) call(ctx context.Context, items []item) (err error) {
	ms := make([]Message, len(items))
	msgs := make([]jetstream.Msg, len(items))
	for i, it := range items {
		ms[i], msgs[i] = it.m, it.msg
	}
	ctx, span := startProcess(ctx, b.tracer, b.cfg.Stream, b.cfg.Consumer, ms)
	defer func() { endSpan(span, err) }() // after the recover below has set err
	defer b.keepInProgress(msgs...)()
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("batch handler panicked: %v", p)
		}
	}()
	log := b.log
	if len(items) == 1 {
		log = items[0].log
	}
	return b.h(log.With().Int("batch", len(items)).Logger().WithContext(ctx), ms)
}

package streams

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"
)

// Runner defaults, used for RunConfig fields left zero.
const (
	// ConcurrencyDefault is how many handlers run at once.
	ConcurrencyDefault = 4
	// BackoffBaseDefault is the redelivery delay after the first failed delivery; it doubles
	// with every further delivery.
	BackoffBaseDefault = time.Second
	// BackoffMaxDefault caps the redelivery delay.
	BackoffMaxDefault = time.Minute
	// DrainTimeoutDefault is how long Run waits for in-flight handlers after its context is
	// cancelled before it cancels theirs.
	DrainTimeoutDefault = 30 * time.Second
	// backoffJitter is the ± fraction of random jitter on each redelivery delay.
	backoffJitter = 0.2
	// deadErrorMax truncates the error text stored with a dead letter.
	deadErrorMax = 1000
)

// Dead letter headers, added to the original message's headers.
const (
	HeaderDeadSubject    = "Vigil-Dead-Subject"
	HeaderDeadStreamSeq  = "Vigil-Dead-Stream-Seq"
	HeaderDeadDeliveries = "Vigil-Dead-Deliveries"
	HeaderDeadReason     = "Vigil-Dead-Reason"
	HeaderDeadError      = "Vigil-Dead-Error"

	// DeadReasonPermanent marks a message a handler rejected with Permanent.
	DeadReasonPermanent = "permanent"
	// DeadReasonMaxDeliver marks a message that failed on its last allowed delivery.
	DeadReasonMaxDeliver = "max_deliver"
)

// Message is one delivery handed to a Handler.
type Message struct {
	Envelope     Envelope
	Subject      string
	NumDelivered uint64
	StreamSeq    uint64
	// Header holds every header of the message, CloudEvents ones included.
	Header nats.Header
}

// Decode unmarshals the message's JSON data into v. Unknown fields are ignored, so producers
// may add fields without breaking consumers.
func (m Message) Decode(v any) error {
	if err := json.Unmarshal(m.Envelope.Data, v); err != nil {
		return fmt.Errorf("decode %s %s: %w", m.Envelope.Type, m.Envelope.ID, err)
	}
	return nil
}

// Observer is told how each delivery ended: outcome is "ack", "retry" or "dead", d how
// long the handler ran.
type Observer interface {
	ObserveMessage(stream, consumer, outcome string, d time.Duration)
}

// Handler processes one message. Its error decides the ack: nil acks, Retry redelivers after a
// fixed delay, Permanent dead-letters and terminates, any other error redelivers with
// exponential backoff. The context carries the message's traceparent (see Traceparent) and a
// logger with the event id (zerolog.Ctx), and is
// not cancelled when Run starts draining, only when the drain times out.
type Handler func(ctx context.Context, m Message) error

// RunConfig configures Run.
type RunConfig struct {
	Stream   string
	Consumer string
	// Concurrency is how many handlers run at once (default ConcurrencyDefault).
	Concurrency int
	// DoubleAck waits for the server to confirm each ack (the mailer uses it).
	DoubleAck bool
	Logger    zerolog.Logger
	// BackoffBase and BackoffMax shape the redelivery delay after a plain error: BackoffBase
	// doubled per delivery, capped at BackoffMax, ±20% jitter (defaults BackoffBaseDefault,
	// BackoffMaxDefault).
	BackoffBase time.Duration
	BackoffMax  time.Duration
	// DrainTimeout bounds how long in-flight handlers may run on after ctx is cancelled
	// (default DrainTimeoutDefault).
	DrainTimeout time.Duration
	// Observer, when set, is told how each delivery ended (metrics).
	Observer Observer
	// Tracer starts the span each handler runs in, continuing the message's trace; nil
	// continues the trace without recording spans.
	Tracer trace.Tracer
}

// Run consumes the durable consumer cfg.Consumer of cfg.Stream with h until ctx is cancelled,
// then stops fetching, lets in-flight handlers finish and returns nil. Messages fetched but not
// yet started when ctx is cancelled are released (Nak) for another replica. Run returns an
// error when the consumer cannot be found or stops on its own (e.g. it was deleted).
func Run(ctx context.Context, js jetstream.JetStream, h Handler, cfg RunConfig) error {
	if h == nil {
		return errors.New("run consumer: nil handler")
	}
	r, err := newRunner(ctx, js, cfg)
	if err != nil {
		return err
	}
	r.h = h
	cfg = r.cfg

	// Handlers outlive ctx by up to DrainTimeout so in-flight work can finish.
	hctx, hcancel := context.WithCancel(context.WithoutCancel(ctx))
	defer hcancel()

	var (
		sem      = make(chan struct{}, cfg.Concurrency)
		mu       sync.Mutex
		stopping bool
		wg       sync.WaitGroup
	)
	cc, err := r.cons.Consume(func(msg jetstream.Msg) {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			r.release(msg)
			return
		}
		mu.Lock()
		if stopping {
			mu.Unlock()
			<-sem
			r.release(msg)
			return
		}
		wg.Add(1)
		mu.Unlock()
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			r.handle(hctx, msg)
		}()
	},
		jetstream.PullMaxMessages(cfg.Concurrency),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			r.log.Warn().Err(err).Msg("consume")
		}),
	)
	if err != nil {
		return fmt.Errorf("run consumer %s on %s: consume: %w", cfg.Consumer, cfg.Stream, err)
	}
	r.log.Info().Int("concurrency", cfg.Concurrency).Msg("consumer started")

	var runErr error
	select {
	case <-ctx.Done():
	case <-cc.Closed():
		runErr = fmt.Errorf("run consumer %s on %s: consuming stopped", cfg.Consumer, cfg.Stream)
	}
	mu.Lock()
	stopping = true
	mu.Unlock()
	cc.Drain()
	drainTimer := time.AfterFunc(cfg.DrainTimeout, hcancel)
	defer drainTimer.Stop()
	select {
	case <-cc.Closed():
	case <-time.After(cfg.DrainTimeout):
		cc.Stop()
	}
	wg.Wait()
	r.log.Info().Msg("consumer stopped")
	return runErr
}

// newRunner fills cfg's defaults and finds its consumer.
func newRunner(ctx context.Context, js jetstream.JetStream, cfg RunConfig) (*runner, error) {
	if cfg.Stream == "" || cfg.Consumer == "" {
		return nil, errors.New("run consumer: stream and consumer are required")
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = ConcurrencyDefault
	}
	if cfg.BackoffBase <= 0 {
		cfg.BackoffBase = BackoffBaseDefault
	}
	if cfg.BackoffMax <= 0 {
		cfg.BackoffMax = BackoffMaxDefault
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = DrainTimeoutDefault
	}
	// On a cluster the lookup can go unanswered while a node is down or leaders are being
	// elected; it is tried again (as EnsureTopology's requests are) rather than failing the
	// role at start-up.
	var cons jetstream.Consumer
	err := retryRequest(ctx, func(ctx context.Context) error {
		var err error
		cons, err = js.Consumer(ctx, cfg.Stream, cfg.Consumer)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("run consumer %s on %s: %w", cfg.Consumer, cfg.Stream, err)
	}
	info := cons.CachedInfo()
	return &runner{
		tracer:     tracerOr(cfg.Tracer),
		js:         js,
		cons:       cons,
		cfg:        cfg,
		ackWait:    info.Config.AckWait,
		maxDeliver: info.Config.MaxDeliver,
		log:        cfg.Logger.With().Str("stream", cfg.Stream).Str("consumer", cfg.Consumer).Logger(),
	}, nil
}

type runner struct {
	tracer     trace.Tracer
	cons       jetstream.Consumer
	js         jetstream.JetStream
	h          Handler
	cfg        RunConfig
	ackWait    time.Duration
	maxDeliver int
	log        zerolog.Logger
}

// release hands back a message that was fetched but will not be handled here.
func (r *runner) release(msg jetstream.Msg) {
	if err := msg.Nak(); err != nil {
		r.log.Debug().Err(err).Str("subject", msg.Subject()).Msg("release message")
	}
}

// handle runs the handler on one delivery and settles it.
func (r *runner) handle(ctx context.Context, msg jetstream.Msg) {
	m, log, herr, ok := r.message(msg)
	if !ok {
		return
	}
	start := time.Now()
	if herr == nil {
		sctx, span := startProcess(ctx, r.tracer, r.cfg.Stream, r.cfg.Consumer, []Message{m})
		// Handlers log through zerolog.Ctx(ctx), so their lines carry the event id too.
		herr = r.call(log.WithContext(sctx), msg, m)
		endSpan(span, herr)
	}
	outcome := r.settle(ctx, msg, m, herr, log)
	r.observe(outcome, time.Since(start))
}

// message reads a delivery's metadata and envelope. ok is false for a message that is not
// a JetStream delivery (nothing sensible to do but let it expire); herr is a Permanent
// error for an envelope that cannot be decoded.
func (r *runner) message(msg jetstream.Msg) (m Message, log zerolog.Logger, herr error, ok bool) {
	md, err := msg.Metadata()
	if err != nil {
		r.log.Error().Err(err).Str("subject", msg.Subject()).Msg("message without metadata")
		return Message{}, r.log, nil, false
	}
	m = Message{
		Subject:      msg.Subject(),
		NumDelivered: md.NumDelivered,
		StreamSeq:    md.Sequence.Stream,
		Header:       msg.Headers(),
	}
	lc := r.log.With().Str("subject", m.Subject).Uint64("deliveries", m.NumDelivered).Uint64("stream_seq", m.StreamSeq)
	env, err := DecodeEnvelope(msg.Headers(), msg.Data())
	if err != nil {
		herr = Permanent(err)
		lc = lc.Str("event_id", msg.Headers().Get(HeaderID)).Str("event_type", msg.Headers().Get(HeaderType))
	} else {
		m.Envelope = env
		lc = lc.Str("event_id", env.ID).Str("event_type", env.Type)
	}
	return m, lc.Logger(), herr, true
}

// observe tells the observer, if any, how a delivery ended.
func (r *runner) observe(outcome string, d time.Duration) {
	if r.cfg.Observer != nil {
		r.cfg.Observer.ObserveMessage(r.cfg.Stream, r.cfg.Consumer, outcome, d)
	}
}

// call runs the handler, sending InProgress while it runs longer than a third of AckWait,
// and turns a panic into an error.
func (r *runner) call(ctx context.Context, msg jetstream.Msg, m Message) (err error) {
	defer r.keepInProgress(msg)()
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("handler panicked: %v", p)
		}
	}()
	return r.h(ctx, m)
}

// keepInProgress tells the server, every third of AckWait until the returned stop is
// called, that the messages are still being worked on, so a slow handler (an AI call, a
// large batch) is not redelivered to another replica meanwhile.
func (r *runner) keepInProgress(msgs ...jetstream.Msg) (stop func()) {
	if r.ackWait <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(r.ackWait / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				for _, msg := range msgs {
					if err := msg.InProgress(); err != nil {
						r.log.Debug().Err(err).Msg("in progress")
					}
				}
			}
		}
	}()
	return func() { close(done) }
}

// settle acks, naks or dead-letters the delivery according to the handler's error and
// returns which it did: "ack", "retry" or "dead".
func (r *runner) settle(ctx context.Context, msg jetstream.Msg, m Message, herr error, log zerolog.Logger) string {
	switch {
	case herr == nil:
		var err error
		if r.cfg.DoubleAck {
			actx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err = msg.DoubleAck(actx)
			cancel()
		} else {
			err = msg.Ack()
		}
		if err != nil {
			log.Warn().Err(err).Msg("ack failed; the message will be redelivered")
			return "retry"
		}
		log.Debug().Msg("handled")
		return "ack"
	case IsPermanent(herr):
		r.deadLetter(ctx, msg, m, DeadReasonPermanent, herr, log)
		return "dead"
	case r.maxDeliver > 0 && m.NumDelivered >= uint64(r.maxDeliver):
		r.deadLetter(ctx, msg, m, DeadReasonMaxDeliver, herr, log)
		return "dead"
	default:
		delay, ok := retryAfter(herr)
		if !ok {
			delay = backoffDelay(r.cfg.BackoffBase, r.cfg.BackoffMax, m.NumDelivered, rand.Float64)
		}
		if err := msg.NakWithDelay(delay); err != nil {
			log.Warn().Err(err).Msg("nak failed; the message will be redelivered after AckWait")
		}
		log.Warn().Err(herr).Dur("retry_in", delay).Msg("handler failed; will retry")
		return "retry"
	}
}

// deadLetter copies the message to DEADLETTER and terminates it. If the copy cannot be
// published the message is redelivered later, unless this was its last delivery.
func (r *runner) deadLetter(ctx context.Context, msg jetstream.Msg, m Message, reason string, herr error, log zerolog.Logger) {
	errText := truncate(herr.Error(), deadErrorMax)
	dead := deadLetterMsg(msg.Headers(), msg.Data(), r.cfg.Stream, r.cfg.Consumer, m.Subject, m.StreamSeq, m.NumDelivered, reason, errText)
	id := dead.Header.Get(HeaderMsgID)

	var err error
	for attempt := range 3 {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt) * 200 * time.Millisecond)
		}
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err = r.js.PublishMsg(pctx, dead, jetstream.WithMsgID(id), jetstream.WithExpectStream(StreamDeadLetter))
		cancel()
		if err == nil {
			break
		}
	}
	if err != nil {
		if reason == DeadReasonPermanent || r.maxDeliver <= 0 || m.NumDelivered < uint64(r.maxDeliver) {
			delay := backoffDelay(r.cfg.BackoffBase, r.cfg.BackoffMax, m.NumDelivered, rand.Float64)
			log.Error().Err(err).AnErr("handler_error", herr).Str("reason", reason).Msg("dead letter failed; will retry")
			if nerr := msg.NakWithDelay(delay); nerr != nil {
				log.Warn().Err(nerr).Msg("nak failed")
			}
			return
		}
		log.Error().Err(err).AnErr("handler_error", herr).Str("reason", reason).Msg("dead letter failed on the last delivery; message dropped")
	}
	if terr := msg.TermWithReason(truncate(reason+": "+errText, 200)); terr != nil {
		log.Warn().Err(terr).Msg("term failed")
	}
	log.Error().Err(herr).Str("reason", reason).Msg("message dead-lettered")
}

// deadLetterMsg is the DEADLETTER copy of a message a consumer gave up on: the original
// headers and data, with the Vigil-Dead-* headers added. Its message id is derived from the
// stream, consumer and sequence, so the runner's copy and the max-deliveries advisory's
// copy of the same delivery are stored once.
func deadLetterMsg(orig nats.Header, data []byte, stream, consumer, subject string, seq, deliveries uint64, reason, errText string) *nats.Msg {
	h := nats.Header{}
	for k, vs := range orig {
		h[k] = append([]string(nil), vs...)
	}
	h.Set(HeaderDeadSubject, subject)
	h.Set(HeaderDeadStreamSeq, strconv.FormatUint(seq, 10))
	h.Set(HeaderDeadDeliveries, strconv.FormatUint(deliveries, 10))
	h.Set(HeaderDeadReason, reason)
	h.Set(HeaderDeadError, errText)
	h.Set(HeaderMsgID, "dead:"+stream+":"+consumer+":"+strconv.FormatUint(seq, 10))
	return &nats.Msg{Subject: DeadLetterSubject(stream, consumer), Header: h, Data: data}
}

// backoffDelay is the redelivery delay after the given delivery failed: base doubled per
// delivery, capped at maxDelay, with ±20% jitter from rnd (a value in [0, 1)).
func backoffDelay(base, maxDelay time.Duration, deliveries uint64, rnd func() float64) time.Duration {
	d := base
	for i := uint64(1); i < deliveries && d < maxDelay; i++ {
		d *= 2
	}
	d = min(d, maxDelay)
	return time.Duration(float64(d) * (1 - backoffJitter + 2*backoffJitter*rnd()))
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

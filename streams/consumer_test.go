package streams_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/streams"
)

// delivery is what a test handler saw.
type delivery struct {
	at           time.Time
	numDelivered uint64
	id           string
	traceparent  string
}

// recorder is a handler that records deliveries and answers with decide.
type recorder struct {
	mu     sync.Mutex
	seen   []delivery
	decide func(n int) error // n counts calls from 1
}

func (r *recorder) handle(ctx context.Context, m streams.Message) error {
	r.mu.Lock()
	r.seen = append(r.seen, delivery{
		at: time.Now(), numDelivered: m.NumDelivered, id: m.Envelope.ID, traceparent: streams.Traceparent(ctx),
	})
	n := len(r.seen)
	r.mu.Unlock()
	return r.decide(n)
}

func (r *recorder) deliveries() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.seen...)
}

// run starts Run for the scheduler consumer and stops it when the test ends, checking that
// it returns nil.
func (b *testBundle) run(t *testing.T, h streams.Handler, cfg streams.RunConfig) {
	t.Helper()
	if cfg.Stream == "" {
		cfg.Stream, cfg.Consumer = streams.StreamMonitors, streams.ConsumerScheduler
	}
	cfg.Logger = zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- streams.Run(ctx, b.js, h, cfg) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
}

// deadLetter waits for the dead letter of the scheduler consumer.
func (b *testBundle) deadLetter(t *testing.T) *jetstream.RawStreamMsg {
	t.Helper()
	ctx := testCtx(t)
	s, err := b.js.Stream(ctx, streams.StreamDeadLetter)
	require.NoError(t, err)
	subject := streams.DeadLetterSubject(streams.StreamMonitors, streams.ConsumerScheduler)
	require.Equal(t, "vigil.dead.MONITORS.scheduler", subject)
	var msg *jetstream.RawStreamMsg
	require.Eventually(t, func() bool {
		msg, err = s.GetLastMsgForSubject(ctx, subject)
		return err == nil
	}, 15*time.Second, 20*time.Millisecond, "no dead letter on %s", subject)
	return msg
}

func (b *testBundle) ackPending(t *testing.T) (ackPending, pending uint64) {
	t.Helper()
	c, err := b.js.Consumer(context.Background(), streams.StreamMonitors, streams.ConsumerScheduler)
	require.NoError(t, err)
	info, err := c.Info(context.Background())
	require.NoError(t, err)
	return uint64(info.NumAckPending), info.NumPending
}

func TestRunAcksSuccess(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	b := setup(t, streams.TopologyConfig{})
	rec := &recorder{decide: func(int) error { return nil }}
	b.run(t, rec.handle, streams.RunConfig{DoubleAck: true, Concurrency: 2})

	pub := streams.NewPublisher(b.js, "vigil/test")
	tp := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for range 5 {
		require.NoError(t, pub.Publish(streams.WithTraceparent(ctx, tp), monitorCreated()))
	}
	require.Eventually(t, func() bool {
		ap, p := b.ackPending(t)
		return len(rec.deliveries()) == 5 && ap == 0 && p == 0
	}, 10*time.Second, 20*time.Millisecond)
	for _, d := range rec.deliveries() {
		require.Equal(t, uint64(1), d.numDelivered)
		require.Equal(t, tp, d.traceparent, "handlers get the traceparent on ctx")
	}
}

func TestRunBackoffOnPlainError(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	b := setup(t, streams.TopologyConfig{})
	const base = 300 * time.Millisecond
	rec := &recorder{decide: func(n int) error {
		if n < 3 {
			return errors.New("source unreachable")
		}
		return nil
	}}
	b.run(t, rec.handle, streams.RunConfig{BackoffBase: base})
	require.NoError(t, streams.NewPublisher(b.js, "vigil/test").Publish(ctx, monitorCreated()))

	require.Eventually(t, func() bool { return len(rec.deliveries()) == 3 }, 10*time.Second, 10*time.Millisecond)
	d := rec.deliveries()
	for i := range d {
		require.Equal(t, uint64(i+1), d[i].numDelivered)
	}
	// Backoff doubles per delivery, with at most 20% jitter.
	require.GreaterOrEqual(t, d[1].at.Sub(d[0].at), base*8/10)
	require.GreaterOrEqual(t, d[2].at.Sub(d[1].at), 2*base*8/10)
	require.Eventually(t, func() bool { ap, _ := b.ackPending(t); return ap == 0 }, 5*time.Second, 20*time.Millisecond)
}

func TestRunRetryAfter(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	b := setup(t, streams.TopologyConfig{})
	rec := &recorder{decide: func(n int) error {
		if n == 1 {
			return streams.Retry(errors.New("rate limited"), 200*time.Millisecond)
		}
		return nil
	}}
	// A long backoff base shows the Retry delay, not the backoff, was used.
	b.run(t, rec.handle, streams.RunConfig{BackoffBase: 10 * time.Second})
	require.NoError(t, streams.NewPublisher(b.js, "vigil/test").Publish(ctx, monitorCreated()))

	require.Eventually(t, func() bool { return len(rec.deliveries()) == 2 }, 5*time.Second, 10*time.Millisecond)
	d := rec.deliveries()
	gap := d[1].at.Sub(d[0].at)
	require.GreaterOrEqual(t, gap, 150*time.Millisecond)
	require.Less(t, gap, 5*time.Second)
	require.Equal(t, uint64(2), d[1].numDelivered)
}

func TestRunPermanentDeadLetters(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	b := setup(t, streams.TopologyConfig{})
	rec := &recorder{decide: func(int) error {
		return streams.Permanent(errors.New("monitor spec is invalid"))
	}}
	b.run(t, rec.handle, streams.RunConfig{BackoffBase: 10 * time.Millisecond})
	ev := monitorCreated()
	require.NoError(t, streams.NewPublisher(b.js, "vigil/test").Publish(ctx, ev))

	dead := b.deadLetter(t)
	require.Equal(t, streams.DeadReasonPermanent, dead.Header.Get("Vigil-Dead-Reason"))
	require.Equal(t, "vigil.monitors."+ev.MonitorID+".created", dead.Header.Get("Vigil-Dead-Subject"))
	require.Equal(t, "1", dead.Header.Get("Vigil-Dead-Stream-Seq"))
	require.Equal(t, "1", dead.Header.Get("Vigil-Dead-Deliveries"))
	require.Equal(t, "monitor spec is invalid", dead.Header.Get("Vigil-Dead-Error"))
	require.Equal(t, "dead:MONITORS:scheduler:1", dead.Header.Get("Nats-Msg-Id"))
	require.Equal(t, ev.ID, dead.Header.Get("ce-id"))
	env, err := streams.DecodeEnvelope(nats.Header(dead.Header), dead.Data)
	require.NoError(t, err)
	require.Equal(t, ev.ID, env.ID)

	// Terminated: acknowledged and never delivered again.
	require.Eventually(t, func() bool { ap, _ := b.ackPending(t); return ap == 0 }, 5*time.Second, 20*time.Millisecond)
	time.Sleep(300 * time.Millisecond)
	require.Len(t, rec.deliveries(), 1)
}

func TestRunMaxDeliverDeadLetters(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	b := setup(t, streams.TopologyConfig{MaxDeliver: 3})
	rec := &recorder{decide: func(int) error { return errors.New("always broken") }}
	b.run(t, rec.handle, streams.RunConfig{BackoffBase: 10 * time.Millisecond})
	ev := monitorCreated()
	require.NoError(t, streams.NewPublisher(b.js, "vigil/test").Publish(ctx, ev))

	dead := b.deadLetter(t)
	require.Equal(t, streams.DeadReasonMaxDeliver, dead.Header.Get("Vigil-Dead-Reason"))
	require.Equal(t, "3", dead.Header.Get("Vigil-Dead-Deliveries"))
	require.Equal(t, "always broken", dead.Header.Get("Vigil-Dead-Error"))
	require.Equal(t, ev.ID, dead.Header.Get("ce-id"))
	require.Len(t, rec.deliveries(), 3)
	require.Equal(t, uint64(1), streamMsgs(t, b.js, streams.StreamDeadLetter))
}

func TestRunUndecodableDeadLetters(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	b := setup(t, streams.TopologyConfig{})
	rec := &recorder{decide: func(int) error { return nil }}
	b.run(t, rec.handle, streams.RunConfig{})

	// No CloudEvents headers at all.
	_, err := b.js.Publish(ctx, "vigil.monitors.m1.created", []byte(`{}`), jetstream.WithMsgID("raw-1"))
	require.NoError(t, err)

	dead := b.deadLetter(t)
	require.Equal(t, streams.DeadReasonPermanent, dead.Header.Get("Vigil-Dead-Reason"))
	require.Contains(t, dead.Header.Get("Vigil-Dead-Error"), "ce-id")
	require.Empty(t, rec.deliveries(), "the handler never sees an undecodable message")
}

func TestRunDrainsInFlight(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	b := setup(t, streams.TopologyConfig{})
	started := make(chan struct{})
	var finished sync.WaitGroup
	finished.Add(1)
	h := func(hctx context.Context, m streams.Message) error {
		close(started)
		defer finished.Done()
		time.Sleep(300 * time.Millisecond)
		return hctx.Err() // nil: handlers keep their context while draining
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- streams.Run(runCtx, b.js, h, streams.RunConfig{
			Stream: streams.StreamMonitors, Consumer: streams.ConsumerScheduler, Logger: zerolog.Nop(),
		})
	}()
	require.NoError(t, streams.NewPublisher(b.js, "vigil/test").Publish(ctx, monitorCreated()))
	<-started
	cancel()
	require.NoError(t, <-done)
	finished.Wait()
	require.Eventually(t, func() bool { ap, _ := b.ackPending(t); return ap == 0 }, 5*time.Second, 20*time.Millisecond,
		"the in-flight message was acked")
}

func TestRunUnknownConsumer(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	b := setup(t, streams.TopologyConfig{})
	err := streams.Run(ctx, b.js, func(context.Context, streams.Message) error { return nil },
		streams.RunConfig{Stream: streams.StreamMonitors, Consumer: "nobody"})
	require.ErrorContains(t, err, "nobody")
}

package streams_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/streams"
)

// batchRecorder is a batch handler that records every call and answers with decide.
type batchRecorder struct {
	mu     sync.Mutex
	calls  [][]string // event ids per call
	times  []time.Time
	acked  map[string]int
	decide func(call int, ids []string) error // call counts from 1
}

func (r *batchRecorder) handle(_ context.Context, ms []streams.Message) error {
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.Envelope.ID
	}
	r.mu.Lock()
	r.calls = append(r.calls, ids)
	r.times = append(r.times, time.Now())
	n := len(r.calls)
	r.mu.Unlock()
	err := r.decide(n, ids)
	if err == nil {
		r.mu.Lock()
		if r.acked == nil {
			r.acked = map[string]int{}
		}
		for _, id := range ids {
			r.acked[id]++
		}
		r.mu.Unlock()
	}
	return err
}

func (r *batchRecorder) snapshot() (calls [][]string, times []time.Time, acked map[string]int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	acked = map[string]int{}
	for k, v := range r.acked {
		acked[k] = v
	}
	return slices.Clone(r.calls), slices.Clone(r.times), acked
}

// runBatch starts RunBatch for the scheduler consumer and stops it when the test ends.
func (b *testBundle) runBatch(t *testing.T, h streams.BatchHandler, cfg streams.BatchConfig) {
	t.Helper()
	cfg.Stream, cfg.Consumer = streams.StreamMonitors, streams.ConsumerScheduler
	cfg.Logger = zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- streams.RunBatch(ctx, b.js, h, cfg) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Error("RunBatch did not return after cancel")
		}
	})
}

// publishN publishes n monitor events and returns their ids.
func publishN(t *testing.T, b *testBundle, n int) []string {
	t.Helper()
	pub := streams.NewPublisher(b.js, "vigil/test")
	ids := make([]string, n)
	for i := range n {
		ev := monitorCreated()
		ids[i] = ev.ID
		require.NoError(t, pub.Publish(testCtx(t), ev))
	}
	return ids
}

func TestRunBatchAcksWholeBatches(t *testing.T) {
	t.Parallel()
	b := setup(t, streams.TopologyConfig{})
	ids := publishN(t, b, 50) // waiting before the runner starts, so batches fill at once
	rec := &batchRecorder{decide: func(int, []string) error { return nil }}
	b.runBatch(t, rec.handle, streams.BatchConfig{Size: 20, Wait: 100 * time.Millisecond, RunConfig: streams.RunConfig{Concurrency: 2}})

	require.Eventually(t, func() bool {
		ap, p := b.ackPending(t)
		_, _, acked := rec.snapshot()
		return len(acked) == 50 && ap == 0 && p == 0
	}, 10*time.Second, 20*time.Millisecond)
	calls, _, acked := rec.snapshot()
	for _, id := range ids {
		require.Equal(t, 1, acked[id], "each message is handled once")
	}
	biggest := 0
	for _, c := range calls {
		require.LessOrEqual(t, len(c), 20, "no batch is larger than Size")
		biggest = max(biggest, len(c))
	}
	require.Greater(t, biggest, 1, "waiting messages are handled together")
}

func TestRunBatchPoisonMessageIsDeadLetteredAlone(t *testing.T) {
	t.Parallel()
	b := setup(t, streams.TopologyConfig{MaxDeliver: 3})
	ids := publishN(t, b, 10)
	poison := ids[4]
	rec := &batchRecorder{decide: func(_ int, batch []string) error {
		if slices.Contains(batch, poison) {
			return errors.New("violates a check constraint") // as one bad row fails the transaction
		}
		return nil
	}}
	b.runBatch(t, rec.handle, streams.BatchConfig{Size: 10, RunConfig: streams.RunConfig{Concurrency: 1, BackoffBase: 10 * time.Millisecond}})

	dead := b.deadLetter(t)
	require.Equal(t, poison, dead.Header.Get("ce-id"))
	require.Equal(t, streams.DeadReasonMaxDeliver, dead.Header.Get("Vigil-Dead-Reason"))
	require.Equal(t, "3", dead.Header.Get("Vigil-Dead-Deliveries"))
	require.Eventually(t, func() bool { ap, p := b.ackPending(t); return ap == 0 && p == 0 }, 5*time.Second, 20*time.Millisecond)
	_, _, acked := rec.snapshot()
	require.Len(t, acked, 9, "every other message was acked")
	for _, id := range ids {
		if id != poison {
			require.Equal(t, 1, acked[id], "a message split off a failed batch is handled once")
		}
	}
	require.Equal(t, uint64(1), streamMsgs(t, b.js, streams.StreamDeadLetter))
}

func TestRunBatchPermanentIsDeadLetteredAtOnce(t *testing.T) {
	t.Parallel()
	b := setup(t, streams.TopologyConfig{})
	ids := publishN(t, b, 6)
	poison := ids[0]
	rec := &batchRecorder{decide: func(_ int, batch []string) error {
		if slices.Contains(batch, poison) {
			return streams.Permanent(errors.New("monitor spec is invalid"))
		}
		return nil
	}}
	b.runBatch(t, rec.handle, streams.BatchConfig{Size: 6, RunConfig: streams.RunConfig{Concurrency: 1}})

	dead := b.deadLetter(t)
	require.Equal(t, poison, dead.Header.Get("ce-id"))
	require.Equal(t, streams.DeadReasonPermanent, dead.Header.Get("Vigil-Dead-Reason"))
	require.Equal(t, "1", dead.Header.Get("Vigil-Dead-Deliveries"), "split, not redelivered")
	require.Eventually(t, func() bool { ap, p := b.ackPending(t); return ap == 0 && p == 0 }, 5*time.Second, 20*time.Millisecond)
	_, _, acked := rec.snapshot()
	require.Len(t, acked, 5)
}

func TestRunBatchRetryRedeliversWithoutSplitting(t *testing.T) {
	t.Parallel()
	b := setup(t, streams.TopologyConfig{})
	publishN(t, b, 8)
	rec := &batchRecorder{decide: func(call int, _ []string) error {
		if call == 1 {
			return streams.Retry(errors.New("database unavailable"), 300*time.Millisecond)
		}
		return nil
	}}
	b.runBatch(t, rec.handle, streams.BatchConfig{Size: 8, RunConfig: streams.RunConfig{Concurrency: 1}})

	require.Eventually(t, func() bool {
		ap, p := b.ackPending(t)
		_, _, acked := rec.snapshot()
		return len(acked) == 8 && ap == 0 && p == 0
	}, 10*time.Second, 20*time.Millisecond)
	// The messages may have come in more than one batch; the first batch's are handed
	// out again only after the delay, not split and retried at once.
	calls, times, _ := rec.snapshot()
	again := -1
	for i := 1; i < len(calls) && again < 0; i++ {
		for _, id := range calls[i] {
			if slices.Contains(calls[0], id) {
				again = i
				break
			}
		}
	}
	require.Positive(t, again, "the retried batch was never handed out again (calls: %v)", calls)
	require.GreaterOrEqual(t, times[again].Sub(times[0]), 250*time.Millisecond,
		"a batch asked to retry waits for the delay instead of being split at once (calls: %v)", calls)
}

func TestRunBatchDrainsBatchInHand(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	b := setup(t, streams.TopologyConfig{})
	publishN(t, b, 3)
	started := make(chan struct{})
	var (
		once    sync.Once
		mu      sync.Mutex
		handled uint64 // the highest stream sequence a handler was given
	)
	h := func(hctx context.Context, ms []streams.Message) error {
		once.Do(func() { close(started) })
		mu.Lock()
		for _, m := range ms {
			handled = max(handled, m.StreamSeq)
		}
		mu.Unlock()
		time.Sleep(300 * time.Millisecond)
		return hctx.Err() // nil: handlers keep their context while draining
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- streams.RunBatch(runCtx, b.js, h, streams.BatchConfig{Size: 10, RunConfig: streams.RunConfig{
			Stream: streams.StreamMonitors, Consumer: streams.ConsumerScheduler, Logger: zerolog.Nop(), Concurrency: 1,
		}})
	}()
	<-started
	cancel()
	require.NoError(t, <-done)
	// Every message a handler was given is acked: batches run one at a time in stream
	// order, so the ack floor reaches the highest one. (A message the server sends to the
	// pull that was open when draining began, but which no handler got, is redelivered
	// after AckWait, as JetStream does for any delivery that is never settled.)
	mu.Lock()
	want := handled
	mu.Unlock()
	require.NotZero(t, want)
	c, err := b.js.Consumer(ctx, streams.StreamMonitors, streams.ConsumerScheduler)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		info, err := c.Info(ctx)
		return err == nil && info.AckFloor.Stream >= want
	}, 5*time.Second, 20*time.Millisecond, "the batch in hand was acked")
}

// TestBacklogs: each durable consumer's lag and pending acknowledgements, for the metrics.
func TestBacklogs(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	b := setup(t, streams.TopologyConfig{})
	publishN(t, b, 3)
	var got []streams.Backlog
	require.Eventually(t, func() bool {
		var err error
		got, err = streams.Backlogs(ctx, b.js)
		require.NoError(t, err)
		for _, bl := range got {
			if bl.Consumer == streams.ConsumerScheduler {
				return bl.Pending == 3
			}
		}
		return false
	}, 5*time.Second, 20*time.Millisecond, "%+v", got)
	require.Len(t, got, len(streams.Consumers()), "every durable consumer of the topology")
	for _, bl := range got {
		if bl.Consumer != streams.ConsumerScheduler {
			require.Zero(t, bl.Pending, bl.Consumer)
		}
	}
}

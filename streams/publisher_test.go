package streams_test

import (
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/domain/event"
	"github.com/vigilhq/vigil/streams"
	"github.com/vigilhq/vigil/streams/natstest"
)

func TestPublishDeduplicates(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	b := setup(t, streams.TopologyConfig{})
	pub := streams.NewPublisher(b.js, "vigil/test")

	ev := monitorCreated()
	require.NoError(t, pub.Publish(ctx, ev))
	require.NoError(t, pub.Publish(ctx, ev))
	require.Equal(t, uint64(1), streamMsgs(t, b.js, streams.StreamMonitors))

	// PublishAll de-duplicates too, against earlier publishes and within the batch.
	other := monitorCreated()
	require.NoError(t, pub.PublishAll(ctx, []event.Event{ev, other, other}))
	require.Equal(t, uint64(2), streamMsgs(t, b.js, streams.StreamMonitors))

	// A message without Nats-Msg-Id is refused rather than published without de-duplication.
	m := nats.NewMsg("vigil.monitors.x.created")
	require.ErrorContains(t, pub.PublishMsg(ctx, m), "Nats-Msg-Id")
}

// wireTap records, as a core subscriber sees them, the messages published on vigil.>: how
// often each message id went by, and under which atomic batch id.
type wireTap struct {
	mu      sync.Mutex
	seen    map[string]int
	batchOf map[string]string
}

func tapWire(t *testing.T, nc *nats.Conn) *wireTap {
	t.Helper()
	w := &wireTap{seen: map[string]int{}, batchOf: map[string]string{}}
	sub, err := nc.Subscribe("vigil.>", func(m *nats.Msg) {
		w.mu.Lock()
		defer w.mu.Unlock()
		id := m.Header.Get("Nats-Msg-Id")
		w.seen[id]++
		w.batchOf[id] = m.Header.Get("Nats-Batch-Id")
	})
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return w
}

// batches returns how many messages each batch id carried ("" for those sent alone).
func (w *wireTap) batches() map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]int{}
	for _, b := range w.batchOf {
		out[b]++
	}
	return out
}

// repeated returns the message ids that went by more than once, with how often.
func (w *wireTap) repeated() map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]int{}
	for id, c := range w.seen {
		if c > 1 {
			out[id] = c
		}
	}
	return out
}

func (w *wireTap) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, c := range w.seen {
		n += c
	}
	return n
}

func TestPublishAllSendsOneAtomicBatchPerStream(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	b := setup(t, streams.TopologyConfig{})
	wire := tapWire(t, b.nc)
	pub := streams.NewPublisher(b.js, "vigil/test")

	var evs []event.Event
	for i := range 100 {
		if i%5 == 0 {
			evs = append(evs, event.EvaluationDue{MonitorID: uuid.NewString(), ScheduledFor: time.Now().UTC(), At: time.Now().UTC()})
		} else {
			evs = append(evs, monitorCreated())
		}
	}
	require.NoError(t, pub.PublishAll(ctx, evs))
	require.Equal(t, uint64(80), streamMsgs(t, b.js, streams.StreamMonitors))
	require.Equal(t, uint64(20), streamMsgs(t, b.js, streams.StreamEvaluations))
	require.Eventually(t, func() bool { return wire.count() == 100 }, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, map[string]int{}, wire.repeated(), "every message went over the wire once: no batch was refused and sent again")
	sizes := wire.batches()
	require.Len(t, sizes, 2, "one atomic batch per stream: %v", sizes)
	require.NotContains(t, sizes, "", "no message went alone")
}

func TestPublishGathersConcurrentCallsIntoBatches(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	b := setup(t, streams.TopologyConfig{})
	wire := tapWire(t, b.nc)
	pub := streams.NewPublisher(b.js, "vigil/test", streams.WithAtomicBatchMin(2))

	const n = 64
	start := make(chan struct{})
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			<-start
			errs <- pub.Publish(ctx, monitorCreated())
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Equal(t, uint64(n), streamMsgs(t, b.js, streams.StreamMonitors))
	require.Eventually(t, func() bool { return wire.count() == n }, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, map[string]int{}, wire.repeated(), "every message went over the wire once")
	biggest := 0
	for id, size := range wire.batches() {
		if id != "" {
			biggest = max(biggest, size)
		}
	}
	require.Greater(t, biggest, 1, "calls made while a publish was in flight went together: %v", wire.batches())
}

// TestPublishFallsBackWhenBatchesAreRefused: a stream without atomic publish (a server older
// than 2.12, or a stream made by hand) still gets every message, once.
func TestPublishFallsBackWhenBatchesAreRefused(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	url, _ := natstest.Start(t)
	nc, js := natstest.Connect(t, url)
	_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: streams.StreamMonitors, Subjects: []string{"vigil.monitors.>"}, Storage: jetstream.FileStorage})
	require.NoError(t, err)
	wire := tapWire(t, nc)
	pub := streams.NewPublisher(js, "vigil/test", streams.WithAtomicBatchMin(2))

	evs := []event.Event{monitorCreated(), monitorCreated(), monitorCreated(), monitorCreated()}
	require.NoError(t, pub.PublishAll(ctx, evs))
	require.Equal(t, uint64(4), streamMsgs(t, js, streams.StreamMonitors), "stored once each")
	require.Eventually(t, func() bool { return wire.count() == 8 }, 5*time.Second, 10*time.Millisecond,
		"the refused batch, then each message alone")
	require.Equal(t, 4, wire.batches()[""], "each message went again alone")
}

func TestPublishAllSendsFewMessagesAlone(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	b := setup(t, streams.TopologyConfig{})
	wire := tapWire(t, b.nc)
	pub := streams.NewPublisher(b.js, "vigil/test")

	evs := make([]event.Event, streams.AtomicBatchMinDefault-1)
	for i := range evs {
		evs[i] = monitorCreated()
	}
	require.NoError(t, pub.PublishAll(ctx, evs))
	require.Equal(t, uint64(len(evs)), streamMsgs(t, b.js, streams.StreamMonitors))
	require.Eventually(t, func() bool { return wire.count() == len(evs) }, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, map[string]int{"": len(evs)}, wire.batches(), "below the minimum, no atomic batch")
}

package streams_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/streams"
)

func TestDeadLettersListShowReplayPurge(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	b := setup(t, streams.TopologyConfig{})
	var accept atomic.Bool
	handled := make(chan string, 10)
	b.run(t, func(_ context.Context, m streams.Message) error {
		if !accept.Load() {
			return streams.Permanent(errors.New("monitor spec is invalid"))
		}
		handled <- m.Envelope.ID
		return nil
	}, streams.RunConfig{})
	ids := publishN(t, b, 3)
	require.Eventually(t, func() bool { return streamMsgs(t, b.js, streams.StreamDeadLetter) == 3 }, 10*time.Second, 20*time.Millisecond)
	dl := streams.NewDeadLetters(b.js)

	all, err := dl.List(ctx, streams.DeadLetterFilter{})
	require.NoError(t, err)
	require.Len(t, all, 3)
	got := map[string]streams.DeadLetter{}
	for _, d := range all {
		got[d.EventID] = d
		require.Equal(t, streams.StreamMonitors, d.Stream)
		require.Equal(t, streams.ConsumerScheduler, d.Consumer)
		require.Equal(t, streams.DeadReasonPermanent, d.Reason)
		require.Equal(t, "monitor spec is invalid", d.Error)
		require.Equal(t, uint64(1), d.Deliveries)
		require.Contains(t, d.Subject, "vigil.monitors.")
	}
	for _, id := range ids {
		require.Contains(t, got, id)
	}
	none, err := dl.List(ctx, streams.DeadLetterFilter{Stream: streams.StreamStates})
	require.NoError(t, err)
	require.Empty(t, none, "filtered by stream")
	later, err := dl.List(ctx, streams.DeadLetterFilter{Since: time.Now().Add(time.Hour)})
	require.NoError(t, err)
	require.Empty(t, later, "filtered by time")
	two, err := dl.List(ctx, streams.DeadLetterFilter{Limit: 2})
	require.NoError(t, err)
	require.Len(t, two, 2)

	first := all[0]
	shown, err := dl.Get(ctx, first.Seq)
	require.NoError(t, err)
	require.Equal(t, first.EventID, shown.EventID)
	require.NotEmpty(t, shown.Data)

	// Replay one: the consumer gets it again, now that it can handle it.
	accept.Store(true)
	n, err := dl.Replay(ctx, streams.DeadLetterFilter{Seq: first.Seq})
	require.NoError(t, err)
	require.Equal(t, 1, n)
	select {
	case id := <-handled:
		require.Equal(t, first.EventID, id, "the replayed message carries its original event")
	case <-time.After(10 * time.Second):
		t.Fatal("the replayed message was not delivered")
	}
	left, err := dl.List(ctx, streams.DeadLetterFilter{})
	require.NoError(t, err)
	require.Len(t, left, 2, "a replayed dead letter leaves DEADLETTER")

	n, err = dl.Purge(ctx, streams.DeadLetterFilter{Stream: streams.StreamMonitors})
	require.NoError(t, err)
	require.Equal(t, 2, n)
	left, err = dl.List(ctx, streams.DeadLetterFilter{})
	require.NoError(t, err)
	require.Empty(t, left)
	_, err = dl.Get(ctx, first.Seq)
	require.ErrorIs(t, err, jetstream.ErrMsgNotFound)
}

// TestWatchMaxDeliveriesCopiesTimedOut: a message whose last delivery is never
// acknowledged, as when the process handling it is killed, reaches DEADLETTER too.
func TestWatchMaxDeliveriesCopiesTimedOut(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	b := setup(t, streams.TopologyConfig{})
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- streams.WatchMaxDeliveries(wctx, b.nc, b.js, zerolog.Nop()) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })

	cons, err := b.js.CreateOrUpdateConsumer(ctx, streams.StreamMonitors, jetstream.ConsumerConfig{
		Durable: "dying", AckPolicy: jetstream.AckExplicitPolicy, AckWait: 200 * time.Millisecond, MaxDeliver: 2,
		FilterSubject: "vigil.monitors.>",
	})
	require.NoError(t, err)
	time.Sleep(100 * time.Millisecond) // the watcher subscribes
	ids := publishN(t, b, 1)
	for range 2 { // two deliveries, neither acknowledged: the handler "died"
		msgs, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
		require.NoError(t, err)
		n := 0
		for range msgs.Messages() {
			n++
		}
		require.Equal(t, 1, n)
	}
	// A consumer that is still pulling (as a restarted replica does) gets nothing more; the
	// server gives up on the message and says so in the advisory.
	msgs, err := cons.Fetch(1, jetstream.FetchMaxWait(time.Second))
	require.NoError(t, err)
	for range msgs.Messages() {
		t.Fatal("delivered beyond MaxDeliver")
	}

	var dead []streams.DeadLetter
	require.Eventually(t, func() bool {
		dead, err = streams.NewDeadLetters(b.js).List(ctx, streams.DeadLetterFilter{})
		return err == nil && len(dead) == 1
	}, 10*time.Second, 50*time.Millisecond)
	require.Equal(t, ids[0], dead[0].EventID)
	require.Equal(t, streams.DeadReasonTimedOut, dead[0].Reason)
	require.Equal(t, "dying", dead[0].Consumer)
	require.Equal(t, uint64(2), dead[0].Deliveries)
	require.Equal(t, uint64(1), dead[0].StreamSeq)
}

package streams_test

import (
	"context"
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

type testBundle struct {
	url string
	nc  *nats.Conn
	js  jetstream.JetStream
}

// setup starts an embedded server, connects to it and ensures the topology.
func setup(t *testing.T, cfg streams.TopologyConfig) *testBundle {
	t.Helper()
	url, _ := natstest.Start(t)
	nc, js := natstest.Connect(t, url)
	require.NoError(t, streams.EnsureTopology(context.Background(), js, cfg))
	return &testBundle{url: url, nc: nc, js: js}
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func monitorCreated() event.MonitorCreated {
	return event.MonitorCreated{MonitorChange: event.MonitorChange{
		ID:        uuid.NewString(),
		MonitorID: uuid.NewString(),
		UserID:    uuid.NewString(),
		Version:   1,
		At:        time.Date(2026, 3, 1, 12, 30, 0, 123456789, time.UTC),
	}}
}

func streamMsgs(t *testing.T, js jetstream.JetStream, stream string) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), stream)
	require.NoError(t, err)
	info, err := s.Info(context.Background())
	require.NoError(t, err)
	return info.State.Msgs
}

// TestEnsureTopologyEnablesAtomicPublishOnOlderStreams: a stream made before atomic batches
// (an older Vigil, or a server upgraded since) gets them at the next start-up, and keeps
// its messages.
func TestEnsureTopologyEnablesAtomicPublishOnOlderStreams(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	url, _ := natstest.Start(t)
	_, js := natstest.Connect(t, url)
	_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: streams.StreamMonitors, Subjects: []string{"vigil.monitors.>"},
		Storage: jetstream.FileStorage, MaxAge: streams.MaxAgeDefault, Duplicates: streams.DuplicateWindowDefault})
	require.NoError(t, err)
	_, err = js.Publish(ctx, "vigil.monitors.m1.created", []byte(`{}`))
	require.NoError(t, err)

	require.NoError(t, streams.EnsureTopology(ctx, js, streams.TopologyConfig{}))
	s, err := js.Stream(ctx, streams.StreamMonitors)
	require.NoError(t, err)
	si, err := s.Info(ctx)
	require.NoError(t, err)
	require.True(t, si.Config.AllowAtomicPublish)
	require.Equal(t, uint64(1), si.State.Msgs)
}

func TestEnsureTopology(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	b := setup(t, streams.TopologyConfig{})
	// A second run changes nothing and does not fail.
	require.NoError(t, streams.EnsureTopology(ctx, b.js, streams.TopologyConfig{}))

	var names []string
	for name := range b.js.StreamNames(ctx).Name() {
		names = append(names, name)
	}
	require.ElementsMatch(t, []string{
		streams.StreamMonitors, streams.StreamEvaluations, streams.StreamStates,
		streams.StreamNotifications, streams.StreamDeadLetter,
	}, names)

	s, err := b.js.Stream(ctx, streams.StreamEvaluations)
	require.NoError(t, err)
	si, err := s.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, jetstream.FileStorage, si.Config.Storage)
	require.Equal(t, jetstream.LimitsPolicy, si.Config.Retention)
	require.Equal(t, streams.MaxAgeDefault, si.Config.MaxAge)
	require.Equal(t, streams.DuplicateWindowDefault, si.Config.Duplicates)
	require.Equal(t, []string{"vigil.evaluations.>"}, si.Config.Subjects)
	require.True(t, si.Config.AllowAtomicPublish, "publishers send atomic batches")

	want := map[string]struct {
		stream, filter string
		ackWait        time.Duration
	}{
		streams.ConsumerScheduler: {streams.StreamMonitors, "vigil.monitors.>", 30 * time.Second},
		streams.ConsumerEvaluator: {streams.StreamEvaluations, "vigil.evaluations.due.>", 60 * time.Second},
		streams.ConsumerRecorder:  {streams.StreamEvaluations, "vigil.evaluations.completed.>", 30 * time.Second},
		streams.ConsumerMatcher:   {streams.StreamStates, "vigil.states.changed.>", 30 * time.Second},
		streams.ConsumerMailer:    {streams.StreamNotifications, "vigil.notifications.email.>", 30 * time.Second},
		streams.ConsumerWebhooks:  {streams.StreamNotifications, "vigil.notifications.webhook.>", 30 * time.Second},
	}
	total := 0
	for _, stream := range names {
		s, err := b.js.Stream(ctx, stream)
		require.NoError(t, err)
		for range s.ConsumerNames(ctx).Name() {
			total++
		}
	}
	require.Equal(t, len(want), total)
	for name, w := range want {
		c, err := b.js.Consumer(ctx, w.stream, name)
		require.NoError(t, err, name)
		cfg := c.CachedInfo().Config
		require.Equal(t, name, cfg.Durable)
		require.Equal(t, w.filter, cfg.FilterSubject, name)
		require.Equal(t, w.ackWait, cfg.AckWait, name)
		require.Equal(t, jetstream.AckExplicitPolicy, cfg.AckPolicy)
		require.Equal(t, jetstream.DeliverAllPolicy, cfg.DeliverPolicy)
		require.Equal(t, streams.ConsumerMaxDeliverDefault, cfg.MaxDeliver)
		require.Equal(t, 1000, cfg.MaxAckPending)
	}

	// An override of MaxDeliver updates the consumers in place.
	require.NoError(t, streams.EnsureTopology(ctx, b.js, streams.TopologyConfig{MaxDeliver: 3}))
	c, err := b.js.Consumer(ctx, streams.StreamStates, streams.ConsumerMatcher)
	require.NoError(t, err)
	require.Equal(t, 3, c.CachedInfo().Config.MaxDeliver)
}

// TestEnsureTopologyAppliesChangedSettings: a setting changed since the last start-up is
// applied to the stream and the consumers that exist; unchanged ones are left as they are.
func TestEnsureTopologyAppliesChangedSettings(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	url, _ := natstest.Start(t)
	_, js := natstest.Connect(t, url)
	require.NoError(t, streams.EnsureTopology(ctx, js, streams.TopologyConfig{MaxAge: time.Hour, MaxDeliver: 4}))
	require.NoError(t, streams.EnsureTopology(ctx, js, streams.TopologyConfig{MaxAge: 2 * time.Hour, MaxDeliver: 6}))
	s, err := js.Stream(ctx, streams.StreamEvaluations)
	require.NoError(t, err)
	si, err := s.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, 2*time.Hour, si.Config.MaxAge)
	c, err := js.Consumer(ctx, streams.StreamEvaluations, streams.ConsumerEvaluator)
	require.NoError(t, err)
	require.Equal(t, 6, c.CachedInfo().Config.MaxDeliver)
}

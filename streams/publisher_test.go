package streams_test

import (
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/domain/event"
	"github.com/vigilhq/vigil/streams"
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

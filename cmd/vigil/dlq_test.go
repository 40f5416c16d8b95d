package main

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/domain/event"
	"github.com/vigilhq/vigil/streams"
	"github.com/vigilhq/vigil/streams/natstest"
)

// TestDLQCommand: a message a consumer rejected is listed, shown, replayed to its consumer
// and purged with `vigil dlq`.
func TestDLQCommand(t *testing.T) {
	t.Parallel()
	url, js := natstest.StartWithTopology(t, streams.TopologyConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	accept := make(chan struct{})
	handled := make(chan string, 4)
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- streams.Run(rctx, js, func(_ context.Context, m streams.Message) error {
			select {
			case <-accept:
				handled <- m.Envelope.ID
				return nil
			default:
				return streams.Permanent(errors.New("spec is not valid JSON"))
			}
		}, streams.RunConfig{Stream: streams.StreamMonitors, Consumer: streams.ConsumerScheduler, Logger: zerolog.Nop()})
	}()
	t.Cleanup(func() { stop(); <-done })
	pub := streams.NewPublisher(js, "vigil/test")
	evs := []event.MonitorCreated{
		{MonitorChange: event.MonitorChange{ID: "created-1", MonitorID: "0192f000-0000-7000-8000-000000000001", Version: 1, At: time.Now()}},
		{MonitorChange: event.MonitorChange{ID: "created-2", MonitorID: "0192f000-0000-7000-8000-000000000002", Version: 1, At: time.Now()}},
	}
	for _, ev := range evs {
		require.NoError(t, pub.Publish(ctx, ev))
	}
	env := func(k string) string {
		return map[string]string{"NATS_URL": url, "DATABASE_URL": "postgres://unused"}[k]
	}
	vigil := func(args ...string) (string, int) {
		var out, errOut bytes.Buffer
		code := run(ctx, args, env, &out, &errOut)
		return out.String() + errOut.String(), code
	}
	var out string
	require.Eventually(t, func() bool {
		var code int
		out, code = vigil("dlq", "list")
		return code == 0 && strings.Count(out, "spec is not valid JSON") == 2
	}, 10*time.Second, 50*time.Millisecond, "listed: %s", out)
	require.Contains(t, out, "MONITORS")
	require.Contains(t, out, "created-1")
	require.Contains(t, out, streams.DeadReasonPermanent)

	out, code := vigil("dlq", "list", "--stream", "states")
	require.Zero(t, code, out)
	require.Contains(t, out, "no dead letters")

	// Handlers run at once, so the dead letters' order is not the publishing order.
	dead, err := streams.NewDeadLetters(js).List(ctx, streams.DeadLetterFilter{})
	require.NoError(t, err)
	var seq string
	for _, d := range dead {
		if d.EventID == "created-1" {
			seq = strconv.FormatUint(d.Seq, 10)
		}
	}
	require.NotEmpty(t, seq)
	out, code = vigil("dlq", "show", seq)
	require.Zero(t, code, out)
	require.Contains(t, out, "subject:     vigil.monitors.0192f000-0000-7000-8000-000000000001.created")
	require.Contains(t, out, `"monitor_id": "0192f000-0000-7000-8000-000000000001"`)

	out, code = vigil("dlq", "replay")
	require.NotZero(t, code, "replay wants a selection")
	require.Contains(t, out, "--all")

	close(accept)
	out, code = vigil("dlq", "replay", "--id", seq)
	require.Zero(t, code, out)
	require.Contains(t, out, "replayed 1 dead letters")
	select {
	case id := <-handled:
		require.Equal(t, "created-1", id)
	case <-time.After(10 * time.Second):
		t.Fatal("the replayed message did not reach its consumer")
	}

	out, code = vigil("dlq", "purge", "--all")
	require.Zero(t, code, out)
	require.Contains(t, out, "purged 1 dead letters")
	out, code = vigil("dlq", "list")
	require.Zero(t, code, out)
	require.Contains(t, out, "no dead letters")

	out, code = vigil("dlq", "list", "--since", "yesterday")
	require.NotZero(t, code)
	require.Contains(t, out, "--since")
}

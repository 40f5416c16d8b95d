package streams_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/vigilhq/vigil/adapters/postgres"
	"github.com/vigilhq/vigil/adapters/postgres/pgtest"
	"github.com/vigilhq/vigil/streams"
)

// spans returns a tracer recording every span, and what it recorded.
func spans(t *testing.T) (trace.Tracer, *tracetest.SpanRecorder) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp.Tracer("test"), rec
}

// ended returns the recorded spans named name once there are n of them.
func ended(t *testing.T, rec *tracetest.SpanRecorder, name string, n int) []sdktrace.ReadOnlySpan {
	t.Helper()
	var out []sdktrace.ReadOnlySpan
	require.Eventually(t, func() bool {
		out = out[:0]
		for _, s := range rec.Ended() {
			if s.Name() == name {
				out = append(out, s)
			}
		}
		return len(out) >= n
	}, 10*time.Second, 20*time.Millisecond, "%d spans %q", n, name)
	return out
}

func spanContextOf(tp string) trace.SpanContext {
	return trace.SpanContextFromContext(streams.WithTraceparent(context.Background(), tp))
}

// TestHandlersRunInASpanOfTheMessagesTrace: a consumer's handler runs in a consumer span,
// the child of the traceparent the message carries, and what the handler publishes
// carries that span on; a failed handling marks the span failed.
func TestHandlersRunInASpanOfTheMessagesTrace(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	b := setup(t, streams.TopologyConfig{})
	tracer, rec := spans(t)
	var mu sync.Mutex
	var handled []string
	b.run(t, func(ctx context.Context, m streams.Message) error {
		mu.Lock()
		handled = append(handled, streams.Traceparent(ctx))
		mu.Unlock()
		if m.NumDelivered == 1 && len(handled) == 1 {
			return errors.New("the first delivery fails")
		}
		return nil
	}, streams.RunConfig{Tracer: tracer, BackoffBase: 10 * time.Millisecond, BackoffMax: 20 * time.Millisecond})

	parent := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	ev := monitorCreated()
	require.NoError(t, streams.NewPublisher(b.js, "vigil/test").Publish(streams.WithTraceparent(ctx, parent), ev))

	got := ended(t, rec, "process "+streams.StreamMonitors, 2)
	want := spanContextOf(parent)
	for i, s := range got[:2] {
		require.Equal(t, trace.SpanKindConsumer, s.SpanKind())
		require.Equal(t, want.TraceID(), s.SpanContext().TraceID(), "the message's trace goes on")
		require.Equal(t, want.SpanID(), s.Parent().SpanID(), "as the child of the span that published it")
		require.True(t, s.Parent().IsRemote())
		if i == 0 {
			require.Equal(t, codes.Error, s.Status().Code, "the failed delivery")
		} else {
			require.Equal(t, codes.Unset, s.Status().Code)
		}
		attrs := map[string]string{}
		for _, a := range s.Attributes() {
			attrs[string(a.Key)] = a.Value.String()
		}
		require.Equal(t, ev.EventID(), attrs["messaging.message.id"])
		require.Equal(t, streams.ConsumerScheduler, attrs["messaging.consumer.group.name"])
	}
	mu.Lock()
	defer mu.Unlock()
	for i, tp := range handled[:2] {
		sc := spanContextOf(tp)
		require.Equal(t, got[i].SpanContext().SpanID(), sc.SpanID(), "the handler's context is its span: what it publishes is its child")
	}
}

// TestABatchIsTheChildOfItsFirstMessageLinkedToTheOthers: one span for the batch, whose
// parent is the first message's trace and whose links are the others'.
func TestABatchIsTheChildOfItsFirstMessageLinkedToTheOthers(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	b := setup(t, streams.TopologyConfig{})
	tracer, rec := spans(t)
	pub := streams.NewPublisher(b.js, "vigil/test")
	parents := []string{
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
		"00-11111111111111111111111111111111-2222222222222222-01",
	}
	for _, tp := range parents {
		require.NoError(t, pub.Publish(streams.WithTraceparent(ctx, tp), monitorCreated()))
	}
	b.runBatch(t, func(context.Context, []streams.Message) error { return nil },
		streams.BatchConfig{Size: 3, Wait: time.Second, RunConfig: streams.RunConfig{Tracer: tracer}})

	// However the messages were batched (all three at once, with a Wait of a second), each
	// trace is the parent or a link of one batch span.
	var traces []trace.TraceID
	require.Eventually(t, func() bool {
		traces = traces[:0]
		for _, s := range rec.Ended() {
			if s.Name() != "process "+streams.StreamMonitors {
				continue
			}
			traces = append(traces, s.Parent().TraceID())
			for _, l := range s.Links() {
				traces = append(traces, l.SpanContext.TraceID())
			}
		}
		return len(traces) >= len(parents)
	}, 10*time.Second, 20*time.Millisecond)
	var want []trace.TraceID
	for _, tp := range parents {
		want = append(want, spanContextOf(tp).TraceID())
	}
	require.ElementsMatch(t, want, traces, "every message's trace is the parent or a link of a batch span")
}

// TestRelayPublishesInASpanOfTheStoredTrace: an event written to the outbox inside a span
// is published in a producer span, the child of that one, and the message carries the
// producer span, so its consumer's span is the producer's child.
func TestRelayPublishesInASpanOfTheStoredTrace(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	b := setup(t, streams.TopologyConfig{})
	pool := pgtest.New(t)
	tracer, rec := spans(t)

	reqCtx, req := tracer.Start(ctx, "POST /api/monitors")
	ev := monitorCreated()
	require.NoError(t, postgres.InTx(ctx, pool, func(tx pgx.Tx) error {
		return streams.AppendOutbox(reqCtx, tx, "vigil/api", ev)
	}))
	req.End()
	untraced := monitorCreated()
	appendInTx(t, pool, false, untraced)

	relay := streams.NewRelay(pool, streams.NewPublisher(b.js, "vigil/relay"), streams.RelayConfig{Logger: testLogger(t), Tracer: tracer})
	n, err := relay.Flush(ctx)
	require.NoError(t, err)
	require.Equal(t, 2, n)

	published := ended(t, rec, "publish vigil.monitors."+ev.MonitorID+".created", 1)[0]
	require.Equal(t, trace.SpanKindProducer, published.SpanKind())
	require.Equal(t, req.SpanContext().TraceID(), published.SpanContext().TraceID())
	require.Equal(t, req.SpanContext().SpanID(), published.Parent().SpanID())
	for _, s := range rec.Ended() {
		require.NotContains(t, s.Name(), untraced.MonitorID, "an event written outside any trace gets no publish span")
	}

	s, err := b.js.Stream(ctx, streams.StreamMonitors)
	require.NoError(t, err)
	msg, err := s.GetLastMsgForSubject(ctx, "vigil.monitors."+ev.MonitorID+".created")
	require.NoError(t, err)
	require.Equal(t, published.SpanContext().SpanID(), spanContextOf(msg.Header.Get("traceparent")).SpanID())
	msg, err = s.GetLastMsgForSubject(ctx, "vigil.monitors."+untraced.MonitorID+".created")
	require.NoError(t, err)
	require.Empty(t, msg.Header.Get("traceparent"))
}

package streams

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// W3C trace context travels in the traceparent header of every message: the outbox stores it
// with the event, the relay publishes it from a span of its own, and consumers run their
// handlers in a span that continues it, so one trace follows a request from the API to the
// email it ends in. The attributes follow OpenTelemetry's messaging conventions.

// WithTraceparent returns ctx continuing the trace of a W3C traceparent (a remote parent for
// the next span started from it); an empty or malformed one leaves ctx as it is.
func WithTraceparent(ctx context.Context, traceparent string) context.Context {
	if traceparent == "" {
		return ctx
	}
	return propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier{HeaderTraceparent: traceparent})
}

// Traceparent returns the W3C traceparent of the span ctx carries, or "" when it carries none.
func Traceparent(ctx context.Context) string {
	c := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, c)
	return c[HeaderTraceparent]
}

// tracerOr returns t, or a tracer that records nothing when t is nil.
func tracerOr(t trace.Tracer) trace.Tracer {
	if t == nil {
		return noop.NewTracerProvider().Tracer("")
	}
	return t
}

// startProcess starts the span of a consumer handling messages of stream: the child of the
// first message's trace, linked to the others' (a batch handles several at once).
func startProcess(ctx context.Context, t trace.Tracer, stream, consumer string, ms []Message) (context.Context, trace.Span) {
	if len(ms) > 0 {
		ctx = WithTraceparent(ctx, ms[0].Envelope.Traceparent)
	}
	attrs := []attribute.KeyValue{
		attribute.String("messaging.system", "nats"),
		attribute.String("messaging.operation.type", "process"),
		attribute.String("messaging.destination.name", stream),
		attribute.String("messaging.consumer.group.name", consumer),
	}
	var links []trace.Link
	switch {
	case len(ms) == 1:
		attrs = append(attrs, attribute.String("messaging.message.id", ms[0].Envelope.ID),
			attribute.String("cloudevents.event_type", ms[0].Envelope.Type))
	case len(ms) > 1:
		attrs = append(attrs, attribute.Int("messaging.batch.message_count", len(ms)))
		for _, m := range ms[1:] {
			sc := trace.SpanContextFromContext(WithTraceparent(context.Background(), m.Envelope.Traceparent))
			if sc.IsValid() {
				links = append(links, trace.Link{SpanContext: sc})
			}
		}
	}
	return t.Start(ctx, "process "+stream, trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attrs...), trace.WithLinks(links...))
}

// endSpan ends span, marking it failed when err is not nil.
func endSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

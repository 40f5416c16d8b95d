package httpapi_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/vigilhq/vigil/adapters/httpapi"
)

// TestRequestsRunInServerSpans: each request is a server span named by its route pattern,
// the child of the caller's traceparent when it sent one; the handlers' context is that
// span (what they write to the outbox carries it on); a 5xx marks it failed, and a path
// that matched no route does not name the span.
func TestRequestsRunInServerSpans(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	var failing error
	var inHandler trace.SpanContext
	s := httpapi.New(httpapi.Config{Logger: zerolog.Nop(), Tracer: tp.Tracer("test"), Checks: map[string]httpapi.Checker{
		"postgres": checkFunc(func(ctx context.Context) error { inHandler = trace.SpanContextFromContext(ctx); return failing }),
	}})
	do := func(path, traceparent string) {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		if traceparent != "" {
			req.Header.Set("traceparent", traceparent)
		}
		s.Handler().ServeHTTP(httptest.NewRecorder(), req)
	}
	attrs := func(s sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
		m := map[attribute.Key]attribute.Value{}
		for _, a := range s.Attributes() {
			m[a.Key] = a.Value
		}
		return m
	}

	do("/readyz", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	failing = errors.New("database is down")
	do("/readyz", "")
	do("/nowhere/123", "")

	spans := rec.Ended()
	require.Len(t, spans, 3)
	ok, down, unmatched := spans[0], spans[1], spans[2]
	require.Equal(t, "GET /readyz", ok.Name())
	require.Equal(t, trace.SpanKindServer, ok.SpanKind())
	require.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", ok.SpanContext().TraceID().String(), "the caller's trace goes on")
	require.Equal(t, "00f067aa0ba902b7", ok.Parent().SpanID().String())
	require.Equal(t, int64(http.StatusOK), attrs(ok)["http.response.status_code"].AsInt64())
	require.Equal(t, codes.Unset, ok.Status().Code)

	require.False(t, down.Parent().IsValid(), "no traceparent: a new trace")
	require.Equal(t, down.SpanContext().SpanID(), inHandler.SpanID(), "the handler runs in the request's span")
	require.Equal(t, int64(http.StatusServiceUnavailable), attrs(down)["http.response.status_code"].AsInt64())
	require.Equal(t, codes.Error, down.Status().Code)

	require.Equal(t, "GET", unmatched.Name(), "a path no route matched never names a span")
	require.Equal(t, int64(http.StatusNotFound), attrs(unmatched)["http.response.status_code"].AsInt64())
	require.Equal(t, codes.Unset, unmatched.Status().Code, "a 4xx is the client's")
}

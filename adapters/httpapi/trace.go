package httpapi

import (
	"net/http"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// traceRequests runs each request in a server span, the child of the caller's W3C
// traceparent when it sent one, so the events the request writes to the outbox carry its
// trace on through the pipeline. The span is named by route pattern, never by path, as
// the metrics are. A 5xx marks it failed; a 4xx is the client's and does not.
func (s *Server) traceRequests(next echo.HandlerFunc) echo.HandlerFunc {
	tracer := s.cfg.Tracer
	if tracer == nil {
		tracer = noop.NewTracerProvider().Tracer("")
	}
	return func(c echo.Context) error {
		req := c.Request()
		ctx := propagation.TraceContext{}.Extract(req.Context(), propagation.HeaderCarrier(req.Header))
		route := c.Path()
		name := req.Method
		if route != "" {
			name += " " + route
		}
		ctx, span := tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
			attribute.String("http.request.method", req.Method), attribute.String("http.route", route)))
		defer span.End()
		c.SetRequest(req.WithContext(ctx))
		err := next(c)
		status := c.Response().Status
		span.SetAttributes(attribute.Int("http.response.status_code", status))
		if status >= http.StatusInternalServerError {
			span.SetStatus(codes.Error, http.StatusText(status))
		}
		return err
	}
}

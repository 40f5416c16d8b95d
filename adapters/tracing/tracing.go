// Package tracing builds the OpenTelemetry tracer provider of a Vigil process. With an OTLP
// endpoint, spans are sampled as the standard OTEL_TRACES_SAMPLER variables say (every
// trace by default, a caller's decision kept) and sent over OTLP/HTTP in batches; the
// exporter's own OTEL_EXPORTER_OTLP_* variables (headers, timeout, compression) apply.
// Without one, nothing is recorded or sent, but every span still gets its trace and span
// ids, so traceparent headers go on from the API to the email and logs can be matched by
// trace id.
package tracing

import (
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Config says where spans go and what process made them.
type Config struct {
	// Endpoint is the full OTLP/HTTP traces URL (http://collector:4318/v1/traces); "" keeps
	// every span in the process.
	Endpoint string
	// Instance names the process (service.instance.id), Roles what it runs (vigil.roles).
	Instance string
	Roles    []string
	// Version is Vigil's (service.version); optional.
	Version string
}

// Provider makes the tracers of one process. Shut it down on exit to send the last spans.
type Provider struct {
	tp *sdktrace.TracerProvider
}

// New returns the provider cfg describes. It connects to nothing until there are spans to send.
func New(ctx context.Context, cfg Config) (*Provider, error) {
	attrs := []attribute.KeyValue{
		attribute.String("service.name", "vigil"),
		attribute.String("service.instance.id", cfg.Instance),
		attribute.StringSlice("vigil.roles", cfg.Roles),
	}
	if cfg.Version != "" {
		attrs = append(attrs, attribute.String("service.version", cfg.Version))
	}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(resource.NewSchemaless(attrs...))}
	if cfg.Endpoint == "" {
		opts = append(opts, sdktrace.WithSampler(sdktrace.NeverSample()))
	} else {
		exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(cfg.Endpoint))
		if err != nil {
			return nil, fmt.Errorf("OTLP trace exporter for %s: %w", cfg.Endpoint, err)
		}
		opts = append(opts, sdktrace.WithBatcher(exp))
	}
	return &Provider{tp: sdktrace.NewTracerProvider(opts...)}, nil
}

// Tracer returns the tracer of one part of Vigil (streams, httpapi).
func (p *Provider) Tracer(name string) trace.Tracer {
	return p.tp.Tracer("github.com/vigilhq/vigil/" + name)
}

// Shutdown sends the spans still buffered and stops the exporter, waiting at most until
// ctx ends. A collector that cannot be reached loses those spans, never blocks the exit.
func (p *Provider) Shutdown(ctx context.Context) error {
	if err := p.tp.Shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("shut down tracing: %w", err)
	}
	return nil
}

// Package metrics exposes Vigil's Prometheus metrics: the Go runtime and the process, AI
// provider calls (it is the chain's Observer), the messages the stream consumers handle,
// HTTP requests, the PostgreSQL pool, and, read at each scrape, the outbox backlog, the
// schedulers' claim lag and the durable consumers' lag.
//
// Everything lives in the Registry New returns, never in Prometheus' default registry, so two
// Vigil processes in one test do not share counters. Label values come from code, not from
// users, but models and stream names are passed through as given: each value is cut to
// LabelMaxRunes characters (and made valid UTF-8) so that no caller can blow up a series
// name.
package metrics

import (
	"math"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vigilhq/vigil/adapters/ai/chain"
)

// LabelMaxRunes is the most characters a label value keeps.
const LabelMaxRunes = 64

// AIDurationBuckets are the bounds, in seconds, of vigil_ai_call_duration_seconds: from a
// rule evaluated in milliseconds to a slow model answering in a minute.
var AIDurationBuckets = []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60}

// MessageDurationBuckets are the bounds, in seconds, of vigil_message_duration_seconds. A
// handler may wait for an AI call, so they reach two minutes.
var MessageDurationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}

// Registry holds Vigil's metrics and serves them. Make one with New: the zero Registry is not
// usable.
type Registry struct {
	reg *prometheus.Registry

	aiCalls    *prometheus.CounterVec
	aiDuration *prometheus.HistogramVec
	aiTokens   *prometheus.CounterVec
	aiCost     *prometheus.CounterVec

	messages        *prometheus.CounterVec
	messageDuration *prometheus.HistogramVec

	deliveries *prometheus.CounterVec

	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec

	evaluations        *prometheus.CounterVec
	evaluationDuration prometheus.Histogram
	fetchDuration      prometheus.Histogram
	stateChanges       *prometheus.CounterVec
	deliveryLatency    *prometheus.HistogramVec
	suppressed         *prometheus.CounterVec
}

var _ chain.Observer = (*Registry)(nil)

// New returns a Registry with the Go runtime and process collectors and Vigil's metrics.
func New() *Registry {
	r := &Registry{
		reg: prometheus.NewRegistry(),
		aiCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_ai_calls_total",
			Help: "AI provider calls by outcome: ok, cached, retryable_error, error, invalid, breaker_open, timeout or canceled.",
		}, []string{"provider", "model", "operation", "outcome"}),
		aiDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vigil_ai_call_duration_seconds",
			Help:    "Latency of AI provider calls that reached the provider, failed ones included.",
			Buckets: AIDurationBuckets,
		}, []string{"provider", "operation"}),
		aiTokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_ai_tokens_total",
			Help: "Tokens AI providers reported, by direction: input or output.",
		}, []string{"provider", "model", "direction"}),
		aiCost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_ai_cost_usd_total",
			Help: "What AI providers billed, in USD, failed attempts included.",
		}, []string{"provider", "model"}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_messages_total",
			Help: "Stream messages handled, by outcome: ack, retry or dead.",
		}, []string{"stream", "consumer", "outcome"}),
		messageDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vigil_message_duration_seconds",
			Help:    "Time spent handling one stream message.",
			Buckets: MessageDurationBuckets,
		}, []string{"stream", "consumer"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_notification_attempts_total",
			Help: "Notification delivery attempts by channel and outcome: sent, retry or failed (failed: for good, the schedule ran out or the recipient refused).",
		}, []string{"channel", "outcome"}),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_http_requests_total",
			Help: "HTTP requests answered, by method, route pattern and status.",
		}, []string{"method", "route", "status"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vigil_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by method and route pattern.",
			Buckets: HTTPDurationBuckets,
		}, []string{"method", "route"}),
		evaluations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_evaluations_total",
			Help: "Evaluations recorded, by status: succeeded, abstained or failed.",
		}, []string{"status"}),
		evaluationDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "vigil_evaluation_duration_seconds",
			Help:    "Time an evaluation took, from its start to its result: fetch, extraction and judgement.",
			Buckets: AIDurationBuckets,
		}),
		fetchDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "vigil_source_fetch_duration_seconds",
			Help:    "Time to fetch (or render) a monitor's source, for evaluations that fetched one.",
			Buckets: AIDurationBuckets,
		}),
		stateChanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_state_changes_total",
			Help: "Monitor state changes recorded, by the state left and the state entered.",
		}, []string{"from", "to"}),
		deliveryLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vigil_notification_delivery_seconds",
			Help:    "From a state change to the end of the attempt that delivered its notification, by channel.",
			Buckets: []float64{0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600},
		}, []string{"channel"}),
		suppressed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_notifications_suppressed_total",
			Help: "Notifications held back instead of sent, by channel and reason: unconfirmed, unsubscribed or action_off.",
		}, []string{"channel", "reason"}),
	}
	// Fresh collectors on a fresh registry: registering can only fail on a programming error.
	r.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		r.aiCalls, r.aiDuration, r.aiTokens, r.aiCost,
		r.messages, r.messageDuration, r.deliveries, r.httpRequests, r.httpDuration,
		r.evaluations, r.evaluationDuration, r.fetchDuration, r.stateChanges, r.deliveryLatency, r.suppressed,
	)
	return r
}

// Handler serves the metrics in the Prometheus exposition format.
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{})
}

// ObserveAICall counts one call of the AI provider chain. Cache hits and calls an open
// breaker refused are counted but not timed: they did not wait for a provider, and their
// zero latency would hide the providers' own.
func (r *Registry) ObserveAICall(c chain.Call) {
	provider, model, op := label(c.Provider), label(c.Model), label(c.Operation)
	r.aiCalls.WithLabelValues(provider, model, op, label(c.Outcome)).Inc()
	if c.Outcome != chain.OutcomeCached && c.Outcome != chain.OutcomeBreakerOpen {
		r.aiDuration.WithLabelValues(provider, op).Observe(seconds(c.Latency))
	}
	if c.InputTokens > 0 {
		r.aiTokens.WithLabelValues(provider, model, "input").Add(float64(c.InputTokens))
	}
	if c.OutputTokens > 0 {
		r.aiTokens.WithLabelValues(provider, model, "output").Add(float64(c.OutputTokens))
	}
	// A counter only goes up, and one NaN or infinity would stick to it forever.
	if c.Cost > 0 && !math.IsInf(c.Cost, 1) {
		r.aiCost.WithLabelValues(provider, model).Add(c.Cost)
	}
}

// ObserveMessage counts one message a consumer handled and how long it took. outcome is
// "ack", "retry" or "dead".
func (r *Registry) ObserveMessage(stream, consumer, outcome string, d time.Duration) {
	stream, consumer = label(stream), label(consumer)
	r.messages.WithLabelValues(stream, consumer, label(outcome)).Inc()
	r.messageDuration.WithLabelValues(stream, consumer).Observe(seconds(d))
}

// ObserveDelivery counts one notification delivery attempt: outcome is the status it left
// the notification in (sent, pending for a retry, failed).
func (r *Registry) ObserveDelivery(channel, outcome string) {
	r.deliveries.WithLabelValues(label(channel), label(outcome)).Inc()
}

// label makes s a safe label value: valid UTF-8, at most LabelMaxRunes characters.
// Prometheus panics on invalid UTF-8.
func label(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, string(utf8.RuneError))
	}
	n := 0
	for i := range s {
		if n == LabelMaxRunes {
			return s[:i]
		}
		n++
	}
	return s
}

func seconds(d time.Duration) float64 {
	return max(d, 0).Seconds()
}

// ObserveEvaluation counts one recorded evaluation by status and times it and, when it
// fetched its source, the fetch (fetch 0: it reused another's fetch, or needed none).
func (r *Registry) ObserveEvaluation(status string, took, fetch time.Duration) {
	r.evaluations.WithLabelValues(label(status)).Inc()
	r.evaluationDuration.Observe(seconds(took))
	if fetch > 0 {
		r.fetchDuration.Observe(seconds(fetch))
	}
}

// ObserveStateChange counts one monitor state change.
func (r *Registry) ObserveStateChange(from, to string) {
	r.stateChanges.WithLabelValues(label(from), label(to)).Inc()
}

// ObserveDelivered times one notification from its state change to the end of the attempt
// that delivered it.
func (r *Registry) ObserveDelivered(channel string, latency time.Duration) {
	r.deliveryLatency.WithLabelValues(label(channel)).Observe(seconds(latency))
}

// ObserveSuppressed counts n notifications of a channel held back for reason (a
// HoldBack code).
func (r *Registry) ObserveSuppressed(channel, reason string, n int) {
	if n > 0 {
		r.suppressed.WithLabelValues(label(channel), label(reason)).Add(float64(n))
	}
}

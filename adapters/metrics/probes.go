package metrics

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// ProbeTimeout bounds what one scrape waits for a probe: a slow database must not make
// Prometheus time out on the whole page.
const ProbeTimeout = 2 * time.Second

// HTTPDurationBuckets are the bounds, in seconds, of vigil_http_request_duration_seconds:
// from a cached read to an export or a validation waiting on an AI provider.
var HTTPDurationBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// PipelineProbe reads the pipeline's backlogs in PostgreSQL when metrics are scraped.
type PipelineProbe interface {
	// OutboxBacklog returns how many events wait to be published and how long the oldest
	// has waited (0 when none does).
	OutboxBacklog(ctx context.Context) (n int64, oldest time.Duration, err error)
	// ClaimLag returns how long the most overdue active monitor has been due: now minus its
	// next_run_at, 0 when none is due.
	ClaimLag(ctx context.Context) (time.Duration, error)
}

// ConsumerState is one durable consumer's backlog.
type ConsumerState struct {
	Stream, Consumer string
	Pending          uint64 // messages not yet delivered to it: its lag
	AckPending       uint64 // delivered and not yet acknowledged
	Redelivered      uint64 // delivered more than once and not yet acknowledged
}

// ConsumerProbe reads the durable consumers' backlogs in JetStream when metrics are
// scraped.
type ConsumerProbe interface {
	ConsumerStates(ctx context.Context) ([]ConsumerState, error)
}

var (
	descProbeUp = prometheus.NewDesc("vigil_probe_up",
		"1 when the probe answered at the last scrape, 0 when it failed or timed out.", []string{"probe"}, nil)
	descOutboxBacklog = prometheus.NewDesc("vigil_outbox_backlog",
		"Events written to the outbox and not yet published to JetStream.", nil, nil)
	descOutboxAge = prometheus.NewDesc("vigil_outbox_oldest_age_seconds",
		"How long the oldest unpublished outbox event has waited.", nil, nil)
	descClaimLag = prometheus.NewDesc("vigil_scheduler_claim_lag_seconds",
		"Now minus next_run_at of the most overdue active monitor: how far the schedulers are behind.", nil, nil)
	descConsumerPending = prometheus.NewDesc("vigil_consumer_pending_messages",
		"Messages of the stream not yet delivered to the durable consumer: its lag.", []string{"stream", "consumer"}, nil)
	descConsumerAckPending = prometheus.NewDesc("vigil_consumer_ack_pending_messages",
		"Messages delivered to the durable consumer and not yet acknowledged.", []string{"stream", "consumer"}, nil)
	descConsumerRedelivered = prometheus.NewDesc("vigil_consumer_redelivered_messages",
		"Messages delivered to the durable consumer more than once and not yet acknowledged.", []string{"stream", "consumer"}, nil)
)

// pipelineCollector asks its probes at each scrape.
type pipelineCollector struct {
	pipeline  PipelineProbe
	consumers ConsumerProbe
}

func (c pipelineCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descProbeUp
	if c.pipeline != nil {
		ch <- descOutboxBacklog
		ch <- descOutboxAge
		ch <- descClaimLag
	}
	if c.consumers != nil {
		ch <- descConsumerPending
		ch <- descConsumerAckPending
		ch <- descConsumerRedelivered
	}
}

func (c pipelineCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), ProbeTimeout)
	defer cancel()
	up := func(probe string, err error) {
		v := 1.0
		if err != nil {
			v = 0
		}
		ch <- prometheus.MustNewConstMetric(descProbeUp, prometheus.GaugeValue, v, probe)
	}
	if c.pipeline != nil {
		n, oldest, err := c.pipeline.OutboxBacklog(ctx)
		up("outbox", err)
		if err == nil {
			ch <- prometheus.MustNewConstMetric(descOutboxBacklog, prometheus.GaugeValue, float64(n))
			ch <- prometheus.MustNewConstMetric(descOutboxAge, prometheus.GaugeValue, seconds(oldest))
		}
		lag, err := c.pipeline.ClaimLag(ctx)
		up("scheduler", err)
		if err == nil {
			ch <- prometheus.MustNewConstMetric(descClaimLag, prometheus.GaugeValue, seconds(lag))
		}
	}
	if c.consumers != nil {
		states, err := c.consumers.ConsumerStates(ctx)
		up("consumers", err)
		for _, s := range states {
			stream, consumer := label(s.Stream), label(s.Consumer)
			ch <- prometheus.MustNewConstMetric(descConsumerPending, prometheus.GaugeValue, float64(s.Pending), stream, consumer)
			ch <- prometheus.MustNewConstMetric(descConsumerAckPending, prometheus.GaugeValue, float64(s.AckPending), stream, consumer)
			ch <- prometheus.MustNewConstMetric(descConsumerRedelivered, prometheus.GaugeValue, float64(s.Redelivered), stream, consumer)
		}
	}
}

// WatchPipeline reports the outbox backlog, the schedulers' claim lag (from pipeline) and
// the durable consumers' lag and pending acknowledgements (from consumers) at each scrape;
// either may be nil. Call it once per Registry.
func (r *Registry) WatchPipeline(pipeline PipelineProbe, consumers ConsumerProbe) {
	r.reg.MustRegister(pipelineCollector{pipeline: pipeline, consumers: consumers})
}

// PoolStats is a PostgreSQL connection pool; *pgxpool.Pool satisfies it.
type PoolStats interface {
	Stat() *pgxpool.Stat
}

var (
	descPoolConns = prometheus.NewDesc("vigil_db_pool_connections",
		"Connections of the pool by state: acquired (in use), idle, constructing.", []string{"state"}, nil)
	descPoolMax      = prometheus.NewDesc("vigil_db_pool_max_connections", "The pool's size limit (DATABASE_MAX_CONNS).", nil, nil)
	descPoolAcquires = prometheus.NewDesc("vigil_db_pool_acquires_total",
		"Connections handed out by the pool.", nil, nil)
	descPoolEmptyAcquires = prometheus.NewDesc("vigil_db_pool_empty_acquires_total",
		"Acquisitions that had to wait for a connection because none was idle.", nil, nil)
	descPoolCanceledAcquires = prometheus.NewDesc("vigil_db_pool_canceled_acquires_total",
		"Acquisitions given up because their context ended first.", nil, nil)
	descPoolAcquireWait = prometheus.NewDesc("vigil_db_pool_acquire_wait_seconds_total",
		"Time spent waiting to acquire connections, summed.", nil, nil)
)

type poolCollector struct{ pool PoolStats }

func (c poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPoolConns, descPoolMax, descPoolAcquires, descPoolEmptyAcquires,
		descPoolCanceledAcquires, descPoolAcquireWait} {
		ch <- d
	}
}

func (c poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.pool.Stat()
	ch <- prometheus.MustNewConstMetric(descPoolConns, prometheus.GaugeValue, float64(s.AcquiredConns()), "acquired")
	ch <- prometheus.MustNewConstMetric(descPoolConns, prometheus.GaugeValue, float64(s.IdleConns()), "idle")
	ch <- prometheus.MustNewConstMetric(descPoolConns, prometheus.GaugeValue, float64(s.ConstructingConns()), "constructing")
	ch <- prometheus.MustNewConstMetric(descPoolMax, prometheus.GaugeValue, float64(s.MaxConns()))
	ch <- prometheus.MustNewConstMetric(descPoolAcquires, prometheus.CounterValue, float64(s.AcquireCount()))
	ch <- prometheus.MustNewConstMetric(descPoolEmptyAcquires, prometheus.CounterValue, float64(s.EmptyAcquireCount()))
	ch <- prometheus.MustNewConstMetric(descPoolCanceledAcquires, prometheus.CounterValue, float64(s.CanceledAcquireCount()))
	ch <- prometheus.MustNewConstMetric(descPoolAcquireWait, prometheus.CounterValue, s.AcquireDuration().Seconds())
}

// WatchPool reports the process's PostgreSQL pool at each scrape. Call it once per Registry.
func (r *Registry) WatchPool(pool PoolStats) {
	r.reg.MustRegister(poolCollector{pool: pool})
}

// ObserveHTTP counts one HTTP request by method, route (the pattern, such as
// /api/monitors/:id, never the path a client sent, so ids do not make series) and status,
// and how long it took.
func (r *Registry) ObserveHTTP(method, route string, status int, d time.Duration) {
	if route == "" {
		route = "unmatched"
	}
	if !httpMethods[method] {
		method = "other"
	}
	route = label(route)
	r.httpRequests.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
	r.httpDuration.WithLabelValues(method, route).Observe(seconds(d))
}

// httpMethods are the methods counted as themselves; any other is "other", so a client
// cannot make series of its own.
var httpMethods = map[string]bool{http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true, http.MethodOptions: true}

// BreakerProbe tells the state of each AI provider's circuit breaker; *chain.Chain is one.
type BreakerProbe interface {
	Providers() []string
	// BreakerState is "closed", "open" or "half-open".
	BreakerState(provider string) string
}

// breakerStates are the states vigil_ai_breaker_state has a series for, so a dashboard
// sees a state drop to 0 rather than vanish.
var breakerStates = []string{"closed", "half-open", "open"}

var descBreakerState = prometheus.NewDesc("vigil_ai_breaker_state",
	"Each AI provider's circuit breaker: 1 for the state it is in (closed, half-open or open), 0 for the others.",
	[]string{"provider", "state"}, nil)

type breakerCollector struct{ probe BreakerProbe }

func (c breakerCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descBreakerState }

func (c breakerCollector) Collect(ch chan<- prometheus.Metric) {
	for _, p := range c.probe.Providers() {
		current := c.probe.BreakerState(p)
		for _, s := range breakerStates {
			v := 0.0
			if s == current {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(descBreakerState, prometheus.GaugeValue, v, label(p), s)
		}
	}
}

// WatchBreakers reports the AI providers' circuit breakers at each scrape. Call it once
// per Registry.
func (r *Registry) WatchBreakers(probe BreakerProbe) {
	r.reg.MustRegister(breakerCollector{probe: probe})
}

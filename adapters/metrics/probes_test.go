package metrics_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/metrics"
	"github.com/vigilhq/vigil/adapters/postgres/pgtest"
)

type fakePipeline struct {
	backlog int64
	oldest  time.Duration
	lag     time.Duration
	err     error
}

func (f *fakePipeline) OutboxBacklog(context.Context) (int64, time.Duration, error) {
	return f.backlog, f.oldest, f.err
}

func (f *fakePipeline) ClaimLag(context.Context) (time.Duration, error) { return f.lag, f.err }

type fakeConsumers []metrics.ConsumerState

func (f fakeConsumers) ConsumerStates(context.Context) ([]metrics.ConsumerState, error) {
	return f, nil
}

// TestPipelineMetricsAreReadAtScrape: the outbox backlog and age, the claim lag and each
// consumer's lag and pending acks are what the probes say at each scrape, and a probe that
// fails shows as vigil_probe_up 0 rather than as stale numbers.
func TestPipelineMetricsAreReadAtScrape(t *testing.T) {
	t.Parallel()
	r := metrics.New()
	p := &fakePipeline{backlog: 12, oldest: 3 * time.Second, lag: 1500 * time.Millisecond}
	r.WatchPipeline(p, fakeConsumers{{Stream: "EVALUATIONS", Consumer: "recorder", Pending: 40, AckPending: 7, Redelivered: 2}})
	requireLines(t, scrape(t, r),
		"vigil_outbox_backlog 12",
		"vigil_outbox_oldest_age_seconds 3",
		"vigil_scheduler_claim_lag_seconds 1.5",
		`vigil_consumer_pending_messages{consumer="recorder",stream="EVALUATIONS"} 40`,
		`vigil_consumer_ack_pending_messages{consumer="recorder",stream="EVALUATIONS"} 7`,
		`vigil_consumer_redelivered_messages{consumer="recorder",stream="EVALUATIONS"} 2`,
		`vigil_probe_up{probe="outbox"} 1`,
		`vigil_probe_up{probe="consumers"} 1`,
	)
	p.backlog, p.err = 13, errors.New("database is down")
	text := scrape(t, r)
	requireLines(t, text, `vigil_probe_up{probe="outbox"} 0`, `vigil_probe_up{probe="scheduler"} 0`)
	require.NotContains(t, text, "vigil_outbox_backlog ", "no stale number while the probe fails")
}

// TestPoolMetrics reads a real pool's statistics.
func TestPoolMetrics(t *testing.T) {
	t.Parallel()
	pool := pgtest.New(t)
	_, err := pool.Exec(context.Background(), `SELECT 1`)
	require.NoError(t, err)
	r := metrics.New()
	r.WatchPool(pool)
	text := scrape(t, r)
	requireLines(t, text, "vigil_db_pool_max_connections 8", `vigil_db_pool_connections{state="acquired"} 0`)
	require.Contains(t, text, "vigil_db_pool_acquires_total ")
	require.NotContains(t, text, "vigil_db_pool_acquires_total 0\n", "the query acquired a connection")
}

// TestObserveHTTP: requests by method, route pattern and status, timed; a method a client
// made up is "other" and an unmatched path "unmatched", so clients cannot make series.
func TestObserveHTTP(t *testing.T) {
	t.Parallel()
	r := metrics.New()
	r.ObserveHTTP(http.MethodGet, "/api/monitors/:id", 200, 12*time.Millisecond)
	r.ObserveHTTP(http.MethodGet, "/api/monitors/:id", 404, time.Millisecond)
	r.ObserveHTTP("BREW", "", 404, time.Millisecond)
	text := scrape(t, r)
	requireLines(t, text,
		`vigil_http_requests_total{method="GET",route="/api/monitors/:id",status="200"} 1`,
		`vigil_http_requests_total{method="GET",route="/api/monitors/:id",status="404"} 1`,
		`vigil_http_requests_total{method="other",route="unmatched",status="404"} 1`,
		`vigil_http_request_duration_seconds_count{method="GET",route="/api/monitors/:id"} 2`,
		`vigil_http_request_duration_seconds_bucket{method="GET",route="/api/monitors/:id",le="0.025"} 2`,
	)
	require.False(t, strings.Contains(text, "BREW"))
}

// TestObservePipelineOutcomes: evaluations by status with their time and fetch time (none
// for an evaluation that fetched nothing), state changes by edge, and delivery latency.
func TestObservePipelineOutcomes(t *testing.T) {
	t.Parallel()
	r := metrics.New()
	r.ObserveEvaluation("succeeded", 300*time.Millisecond, 120*time.Millisecond)
	r.ObserveEvaluation("failed", 2*time.Second, 0)
	r.ObserveStateChange("inactive", "active")
	r.ObserveDelivered("webhook", 800*time.Millisecond)
	requireLines(t, scrape(t, r),
		`vigil_evaluations_total{status="succeeded"} 1`,
		`vigil_evaluations_total{status="failed"} 1`,
		`vigil_evaluation_duration_seconds_count 2`,
		`vigil_source_fetch_duration_seconds_count 1`,
		`vigil_source_fetch_duration_seconds_bucket{le="0.25"} 1`,
		`vigil_state_changes_total{from="inactive",to="active"} 1`,
		`vigil_notification_delivery_seconds_bucket{channel="webhook",le="1"} 1`,
	)
}

// TestObserveSuppressed: notifications held back count by channel and reason; none is no
// series at all.
func TestObserveSuppressed(t *testing.T) {
	t.Parallel()
	r := metrics.New()
	r.ObserveSuppressed("email", "unconfirmed", 2)
	r.ObserveSuppressed("email", "unconfirmed", 1)
	r.ObserveSuppressed("webhook", "action_off", 1)
	r.ObserveSuppressed("email", "unsubscribed", 0)
	text := scrape(t, r)
	requireLines(t, text,
		`vigil_notifications_suppressed_total{channel="email",reason="unconfirmed"} 3`,
		`vigil_notifications_suppressed_total{channel="webhook",reason="action_off"} 1`,
	)
	require.NotContains(t, text, `reason="unsubscribed"`)
}

type fakeBreakers map[string]string

func (f fakeBreakers) Providers() []string             { return []string{"claude", "fallback"} }
func (f fakeBreakers) BreakerState(name string) string { return f[name] }

// TestBreakerStateIsReadAtScrape: each provider has a series per state, 1 for the one it
// is in, and a change shows at the next scrape.
func TestBreakerStateIsReadAtScrape(t *testing.T) {
	t.Parallel()
	r := metrics.New()
	b := fakeBreakers{"claude": "open", "fallback": "closed"}
	r.WatchBreakers(b)
	requireLines(t, scrape(t, r),
		`vigil_ai_breaker_state{provider="claude",state="open"} 1`,
		`vigil_ai_breaker_state{provider="claude",state="closed"} 0`,
		`vigil_ai_breaker_state{provider="claude",state="half-open"} 0`,
		`vigil_ai_breaker_state{provider="fallback",state="closed"} 1`,
	)
	b["claude"] = "half-open"
	requireLines(t, scrape(t, r),
		`vigil_ai_breaker_state{provider="claude",state="open"} 0`,
		`vigil_ai_breaker_state{provider="claude",state="half-open"} 1`,
	)
}

package main_test

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/vigilhq/vigil/adapters/postgres/pgtest"
	"github.com/vigilhq/vigil/adapters/smtp/smtptest"
	"github.com/vigilhq/vigil/emailtpl"
	"github.com/vigilhq/vigil/streams"
	"github.com/vigilhq/vigil/streams/natstest"
)

// exportedSpan is what a test collector keeps of a span.
type exportedSpan struct {
	traceID, spanID, parentID, name, consumer, instance string
}

// otlpCollector receives spans over OTLP/HTTP (protobuf), as an OpenTelemetry collector does.
type otlpCollector struct {
	URL   string
	mu    sync.Mutex
	spans []exportedSpan
}

func newOTLPCollector(t *testing.T) *otlpCollector {
	t.Helper()
	c := &otlpCollector{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, err := io.ReadAll(r.Body)
		if r.URL.Path != "/v1/traces" || err != nil {
			http.Error(w, "not a trace export", http.StatusBadRequest)
			return
		}
		var req collectortrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(raw, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		for _, rs := range req.GetResourceSpans() {
			var instance string
			for _, a := range rs.GetResource().GetAttributes() {
				if a.GetKey() == "service.instance.id" {
					instance = a.GetValue().GetStringValue()
				}
			}
			for _, ss := range rs.GetScopeSpans() {
				for _, s := range ss.GetSpans() {
					e := exportedSpan{traceID: hex.EncodeToString(s.GetTraceId()), spanID: hex.EncodeToString(s.GetSpanId()),
						parentID: hex.EncodeToString(s.GetParentSpanId()), name: s.GetName(), instance: instance}
					for _, a := range s.GetAttributes() {
						if a.GetKey() == "messaging.consumer.group.name" {
							e.consumer = a.GetValue().GetStringValue()
						}
					}
					c.spans = append(c.spans, e)
				}
			}
		}
		c.mu.Unlock()
		out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	t.Cleanup(srv.Close)
	c.URL = srv.URL
	return c
}

func (c *otlpCollector) trace(id string) []exportedSpan {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []exportedSpan
	for _, s := range c.spans {
		if s.traceID == id {
			out = append(out, s)
		}
	}
	return out
}

// TestOneTraceFromTheAPIToTheEmail runs each role as its own process, exporting spans over
// OTLP to a collector, and creates a monitor whose first evaluation makes it active, with
// a traceparent of the caller's: the request, the outbox's publications and every
// consumer on the way to the email (scheduler, evaluator, recorder, matcher, mailer) are
// spans of that one trace, each the child of the one before.
func TestOneTraceFromTheAPIToTheEmail(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	natsURL, _ := natstest.Start(t)
	dbURL := pgtest.NewURL(t)
	mail := smtptest.Start(t)
	src, price := priceSource(t)
	price.Store(50) // below 80 from the first evaluation: unknown -> active
	collector := newOTLPCollector(t)

	apiAddr := freeAddr(t)
	env := pipelineEnv(t, dbURL, natsURL, mail.URL(), "LOG_LEVEL=info", "HTTP_ADDR="+apiAddr, "VIGIL_RATE_LIMITS=off",
		// Only the monitor's creation schedules it: the periodic claim would start a trace of its own.
		"SCHEDULER_TICK=1h",
		"OTEL_EXPORTER_OTLP_ENDPOINT="+collector.URL, "OTEL_BSP_SCHEDULE_DELAY=100")
	roles := newRoles(t, bin, env)
	for _, role := range []string{"api", "scheduler", "evaluator", "recorder", "matcher", "mailer"} {
		roles.start(role)
	}
	api := newAPIClient(t, "http://"+apiAddr)
	api.waitReady(t)
	api.register(t, "ann@example.com")
	var actions struct {
		Actions []struct {
			ID string `json:"id"`
		} `json:"actions"`
	}
	api.call(t, http.MethodGet, "/api/actions", "", http.StatusOK, &actions)
	require.Len(t, actions.Actions, 1)

	traceID, callerSpan := randomHex(t, 16), randomHex(t, 8)
	api.traceparent = "00-" + traceID + "-" + callerSpan + "-01"
	var m struct {
		ID string `json:"id"`
	}
	api.call(t, http.MethodPost, "/api/monitors", fmt.Sprintf(`{"prompt":"Tell me when the price drops below $80","source_url":%q,
		"interval":"1h","triggers":[{"action_id":%q,"condition":"becomes_active"}]}`, src.URL+"/price", actions.Actions[0].ID),
		http.StatusCreated, &m)
	api.traceparent = ""

	var alert bool
	require.Eventually(t, func() bool {
		for _, msg := range mail.Messages() {
			alert = alert || (msg.Subject != emailtpl.WelcomeSubject && strings.Contains(msg.Text, "50"))
		}
		return alert
	}, 45*time.Second, 100*time.Millisecond, "the alert email")

	// Every span on the way, in the caller's trace.
	type step struct{ name, consumer string }
	want := []step{
		{"POST /api/monitors", ""},
		{"publish vigil.monitors." + m.ID + ".created", ""},
		{"process " + streams.StreamMonitors, streams.ConsumerScheduler},
		{"process " + streams.StreamEvaluations, streams.ConsumerEvaluator},
		{"process " + streams.StreamEvaluations, streams.ConsumerRecorder},
		{"publish vigil.states.changed." + m.ID, ""},
		{"process " + streams.StreamStates, streams.ConsumerMatcher},
		{"process " + streams.StreamNotifications, streams.ConsumerMailer},
	}
	var spans []exportedSpan
	complete := func() bool {
		spans = collector.trace(traceID)
		for _, w := range want {
			found := false
			for _, s := range spans {
				found = found || (s.name == w.name && s.consumer == w.consumer)
			}
			if !found {
				return false
			}
		}
		return true
	}
	for deadline := time.Now().Add(30 * time.Second); !complete(); time.Sleep(100 * time.Millisecond) {
		require.True(t, time.Now().Before(deadline), "trace %s is missing spans; it has %+v", traceID, spans)
	}

	// One connected trace: every span's parent is the caller's span or another of its spans.
	ids := map[string]bool{callerSpan: true}
	for _, s := range spans {
		ids[s.spanID] = true
	}
	for _, s := range spans {
		require.True(t, ids[s.parentID], "span %q (%s) has a parent outside the trace", s.name, s.instance)
	}
	var processes []string
	for _, s := range spans {
		processes = append(processes, s.instance)
	}
	for _, role := range []string{"api", "scheduler", "evaluator", "recorder", "matcher", "mailer"} {
		require.Contains(t, processes, role, "the %s process's spans", role)
	}
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b)
}

package metrics_test

import (
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	promodel "github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/ai/chain"
	"github.com/vigilhq/vigil/adapters/metrics"
	"github.com/vigilhq/vigil/adapters/postgres/pgtest"
)

// exportedNames returns every metric name a fully wired Registry exports, histogram series
// included.
func exportedNames(t *testing.T) map[string]bool {
	t.Helper()
	r := metrics.New()
	r.ObserveAICall(chain.Call{Provider: "claude", Model: "m", Operation: "extract", Outcome: chain.OutcomeOK, Latency: time.Second,
		InputTokens: 1, OutputTokens: 1, Cost: 0.01})
	r.ObserveMessage("EVALUATIONS", "recorder", "ack", time.Millisecond)
	r.ObserveDelivery("email", "sent")
	r.ObserveHTTP("GET", "/healthz", 200, time.Millisecond)
	r.ObserveEvaluation("succeeded", time.Second, time.Millisecond)
	r.ObserveStateChange("inactive", "active")
	r.ObserveDelivered("email", time.Second)
	r.ObserveSuppressed("email", "unconfirmed", 1)
	r.WatchBreakers(fakeBreakers{"claude": "closed"})
	r.WatchPipeline(&fakePipeline{}, fakeConsumers{{Stream: "S", Consumer: "c"}})
	r.WatchPool(pgtest.New(t))
	names := map[string]bool{}
	typeLine := regexp.MustCompile(`^# TYPE (\S+) (\S+)$`)
	for l := range strings.Lines(scrape(t, r)) {
		m := typeLine.FindStringSubmatch(strings.TrimSpace(l))
		if m == nil {
			continue
		}
		names[m[1]] = true
		if m[2] == "histogram" {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				names[m[1]+suffix] = true
			}
		}
	}
	require.True(t, names["vigil_http_requests_total"])
	return names
}

// metricsOf returns the metric names a PromQL expression selects.
func metricsOf(t *testing.T, expr string) []string {
	t.Helper()
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	require.NoError(t, err, expr)
	var out []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			out = append(out, vs.Name)
		}
		return nil
	})
	require.NotEmpty(t, out, "%s selects no metric", expr)
	return out
}

// TestOpsFilesAreValid: the alert rules load in Prometheus (its own rule parser), the
// dashboard has the shape Grafana imports, and every expression in either names only
// metrics this binary exports, so neither can drift from the code.
func TestOpsFilesAreValid(t *testing.T) {
	t.Parallel()
	files, err := metrics.OpsFiles()
	require.NoError(t, err)
	names := exportedNames(t)

	groups, errs := rulefmt.Parse(files["alerts.yaml"], false, promodel.UTF8Validation, parser.NewParser(parser.Options{}), slog.Default())
	require.Empty(t, errs)
	alerts := map[string]bool{}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			require.NotEmpty(t, r.Alert, "every rule is an alert")
			require.NotEmpty(t, r.Annotations["summary"], r.Alert)
			require.Contains(t, []string{"warning", "critical"}, r.Labels["severity"], r.Alert)
			alerts[r.Alert] = true
			for _, m := range metricsOf(t, r.Expr) {
				require.True(t, names[m], "%s uses %s, which Vigil does not export", r.Alert, m)
			}
		}
	}
	for _, want := range []string{"VigilConsumerLagging", "VigilOutboxStale", "VigilDeadLetters", "VigilHTTPErrors",
		"VigilNotificationsFailing", "VigilAISpendHigh", "VigilAIBreakerOpen"} {
		require.True(t, alerts[want], "no %s alert", want)
	}

	raw, err := os.ReadFile(filepath.Join("ops", "dashboard.schema.json"))
	require.NoError(t, err)
	var schema openapi3.Schema
	require.NoError(t, json.Unmarshal(raw, &schema))
	var dash any
	require.NoError(t, json.Unmarshal(files["dashboard.json"], &dash))
	require.NoError(t, schema.VisitJSON(dash), "dashboard.json does not have the shape Grafana imports")
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	require.NoError(t, json.Unmarshal(files["dashboard.json"], &d))
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			for _, m := range metricsOf(t, tg.Expr) {
				require.True(t, names[m], "panel %q uses %s, which Vigil does not export", p.Title, m)
			}
		}
	}
	// A schema that checks nothing would pass anything: a panel without targets must fail.
	var broken map[string]any
	require.NoError(t, json.Unmarshal(files["dashboard.json"], &broken))
	broken["panels"].([]any)[0].(map[string]any)["targets"] = []any{}
	require.Error(t, schema.VisitJSON(broken))
}

// TestWriteOps: `vigil ops export DIR` writes both files as embedded.
func TestWriteOps(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "ops")
	written, err := metrics.WriteOps(dir)
	require.NoError(t, err)
	require.Len(t, written, 2)
	files, err := metrics.OpsFiles()
	require.NoError(t, err)
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err)
		require.Equal(t, want, got, name)
	}
}

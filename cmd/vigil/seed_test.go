package main

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vigilhq/vigil/adapters/ai/fallback"
	"github.com/vigilhq/vigil/adapters/httpapi"
	"github.com/vigilhq/vigil/adapters/source"
	"github.com/vigilhq/vigil/domain/ai"
	"github.com/vigilhq/vigil/domain/monitor"
)

// TestDemoMonitorsWorkOnTheDemoSource checks that every seeded demo prompt is understood by
// the rules and judges the demo source, so `make run` shows state changes, not failures.
func TestDemoMonitorsWorkOnTheDemoSource(t *testing.T) {
	t.Parallel()
	demo := httptest.NewServer(httpapi.New(httpapi.Config{Logger: zerolog.Nop(), DemoSource: true}).Handler())
	t.Cleanup(demo.Close)
	rules := fallback.New(time.Now)
	fetch := source.New(source.Config{AllowPrivate: true, Fresh: -1}, time.Now)
	ctx := context.Background()
	for _, d := range demoMonitors {
		spec, _, err := rules.Classify(ctx, d.prompt, ai.Hints{SourceURL: demo.URL + d.path})
		if err != nil {
			t.Fatalf("%s: classify: %v", d.name, err)
		}
		doc, err := fetch.Fetch(ctx, demo.URL+d.path)
		if err != nil {
			t.Fatalf("%s: fetch: %v", d.name, err)
		}
		facts, _, err := rules.Extract(ctx, spec, doc)
		if err != nil {
			t.Fatalf("%s: extract with %q: %v", d.name, spec.Condition, err)
		}
		if why := monitor.Untrusted(facts, monitor.MinConfidenceDefault, string(doc.Body), doc.Text); why != "" {
			t.Fatalf("%s: %s", d.name, why)
		}
		v, _, err := rules.Evaluate(ctx, spec, facts, doc)
		if err != nil || v.State == monitor.StateUnknown {
			t.Fatalf("%s: evaluate %q: %+v %v", d.name, spec.Condition, v, err)
		}
		if !strings.Contains(spec.Condition, "price") {
			t.Errorf("%s: condition %q does not watch the price", d.name, spec.Condition)
		}
	}
}

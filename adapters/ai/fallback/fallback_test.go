package fallback_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/adapters/ai/fallback"
	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/ai"
	"github.com/vigilhq/vigil/domain/monitor"
)

func TestClassify(t *testing.T) {
	t.Parallel()
	p := fallback.New(time.Now)
	tests := []struct{ prompt, condition, fact, unit string }{
		{"Tell me when the price drops below $80", "price < 80", "price", "USD"},
		{"alert me when the temperature is above 30.5", "temperature > 30.5", "temperature", ""},
		{"price at least 1,200", "price >= 1200", "price", ""},
		{"when the stock count is at most 3k", "count <= 3000", "count", ""},
		{"Tell me when it costs under €15", "price < 15", "price", "EUR"},
	}
	for _, tt := range tests {
		spec, u, err := p.Classify(context.Background(), tt.prompt, ai.Hints{})
		if err != nil {
			t.Fatalf("Classify(%q): %v", tt.prompt, err)
		}
		if spec.Condition != tt.condition || spec.Facts[0].Name != tt.fact || spec.Facts[0].Unit != tt.unit || spec.Kind != monitor.KindCurrentState {
			t.Errorf("Classify(%q) = %+v", tt.prompt, spec)
		}
		if u.Provider != fallback.Name {
			t.Errorf("usage provider = %q", u.Provider)
		}
	}
	_, _, err := p.Classify(context.Background(), "tell me something nice", ai.Hints{})
	if domain.ErrorCode(err) != domain.EINVALID || !strings.Contains(domain.ErrorMessage(err), "Prompts that work") {
		t.Fatalf("unparseable prompt: %v", err)
	}
}

func TestExtractAndEvaluate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := fallback.New(time.Now)
	spec, _, err := p.Classify(ctx, "price below 80", ai.Hints{})
	if err != nil {
		t.Fatal(err)
	}
	docs := []struct {
		name string
		doc  ai.Document
		want float64
	}{
		{"json by name", ai.Document{ContentType: "application/json", Body: []byte(`{"item":{"title":"x","price":"$1,075.50"}}`)}, 1075.5},
		{"json array", ai.Document{Body: []byte(`[{"sku":1},{"price":79}]`)}, 79},
		{"html", ai.Document{ContentType: "text/html", Body: []byte(`<html><script>var price=1</script><p>Our price: <b>$64.99</b> today</p></html>`)}, 64.99},
		{"text", ai.Document{ContentType: "text/plain", Body: []byte("Sale! Price 81 USD")}, 81},
	}
	for _, d := range docs {
		facts, _, err := p.Extract(ctx, spec, d.doc)
		if err != nil {
			t.Fatalf("%s: Extract: %v", d.name, err)
		}
		if len(facts) != 1 || facts[0].Number == nil || *facts[0].Number != d.want || facts[0].Evidence == "" {
			t.Fatalf("%s: facts = %+v, want %v", d.name, facts, d.want)
		}
		v, _, err := p.Evaluate(ctx, spec, facts, d.doc)
		if err != nil {
			t.Fatalf("%s: Evaluate: %v", d.name, err)
		}
		want := monitor.StateInactive
		if d.want < 80 {
			want = monitor.StateActive
		}
		if v.State != want || v.Explanation == "" {
			t.Errorf("%s: verdict = %+v, want %s", d.name, v, want)
		}
	}
	pointerSpec := spec
	pointerSpec.Facts = []monitor.FactSpec{{Name: "price", Type: monitor.FactNumber, Selector: "/data/1/p"}}
	facts, _, err := p.Extract(ctx, pointerSpec, ai.Document{Body: []byte(`{"data":[{"p":1},{"p":77}]}`)})
	if err != nil || *facts[0].Number != 77 {
		t.Fatalf("pointer extract = %+v, %v", facts, err)
	}
	if _, _, err := p.Extract(ctx, spec, ai.Document{ContentType: "text/plain", Body: []byte("nothing here")}); domain.ErrorCode(err) != domain.EINVALID {
		t.Fatalf("missing fact: %v", err)
	}
	v, _, err := p.Evaluate(ctx, spec, nil, ai.Document{})
	if err != nil || v.State != monitor.StateUnknown {
		t.Fatalf("no facts: %+v %v", v, err)
	}
}

func TestSuggestedInterval(t *testing.T) {
	t.Parallel()
	p := fallback.New(time.Now)
	for prompt, want := range map[string]string{
		"Tell me when the price drops below $80":  "1h0m0s",
		"alert me when BTC rises 5% in 24 hours":  "5m0s",
		"followers increase by 1.5k over a week":  "1h0m0s",
		"temperature rises by 3 within 2 hours":   "5m0s",
		"the price increases 10% within 12 hours": "30m0s",
	} {
		spec, _, err := p.Classify(context.Background(), prompt, ai.Hints{})
		if err != nil {
			t.Fatalf("Classify(%q): %v", prompt, err)
		}
		if spec.SuggestedInterval != want || spec.Validate() != nil {
			t.Errorf("Classify(%q).SuggestedInterval = %q, want %q (valid: %v)", prompt, spec.SuggestedInterval, want, spec.Validate())
		}
	}
}

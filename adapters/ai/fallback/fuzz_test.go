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

// FuzzClassify checks that any prompt gives either a valid spec whose condition compiles
// or an EINVALID error with a message, never a panic.
func FuzzClassify(f *testing.F) {
	for _, seed := range append([]string{
		"", " ", "price", "below", "drops below $", "rises 5% within", "contains", `says "`, "in stock",
		"when the price drops below $1,200.50", "BTC over 1.5M", "rises by 99999999999999999999999% in 9999999 weeks",
		"falls below -0.5 °F", "when the page contains “Café ☕”", "score changes by 3% within the last 30 minutes",
		"price > 1e999", "is 5% higher than yesterday", "\xff\xfe", "no longer contains ''", "at least 3k or more",
		"x is 1 200 300", "any change in", "changes changes changes", "$.5 below", "in 0 days", "within 0.0001 minutes",
		"the price is below $80 and it is in stock", "above 100 or below 50 or at 75", `"a" appears and "b" disappears`,
		"doubles within a year", "halves and doubles", "is not above", "plummets by a third in 9999 years", `"and" and "or"`,
	}, fallback.Examples...) {
		f.Add(seed)
	}
	p := fallback.New(time.Now)
	f.Fuzz(func(t *testing.T, prompt string) {
		spec, _, err := p.Classify(context.Background(), prompt, ai.Hints{})
		if err != nil {
			if domain.ErrorCode(err) != domain.EINVALID || domain.ErrorMessage(err) == "" {
				t.Fatalf("Classify(%q) error %v, want EINVALID with a message", prompt, err)
			}
			return
		}
		if err := spec.Validate(); err != nil {
			t.Fatalf("Classify(%q) = %+v: invalid spec: %v", prompt, spec, err)
		}
		if spec.Kind == monitor.KindCurrentState {
			facts := make([]monitor.Fact, 0, len(spec.Facts))
			for _, fs := range spec.Facts {
				switch fs.Type {
				case monitor.FactBoolean:
					v := true
					facts = append(facts, monitor.Fact{Key: fs.Name, Bool: &v, Confidence: 1})
				case monitor.FactText:
					v := "x"
					facts = append(facts, monitor.Fact{Key: fs.Name, Text: &v, Confidence: 1})
				default:
					facts = append(facts, monitor.NumberFact(fs.Name, 1, "", time.Time{}))
				}
			}
			if _, _, err := p.Evaluate(context.Background(), spec, facts, ai.Document{}); err != nil {
				t.Fatalf("Classify(%q) condition %q does not evaluate: %v", prompt, spec.Condition, err)
			}
		}
	})
}

// FuzzExtract checks that extraction never panics, whatever the document.
func FuzzExtract(f *testing.F) {
	for _, seed := range []struct{ ct, body string }{
		{"application/json", `{"a":{"price":"$1,075.50"},"availability":"InStock"}`},
		{"text/html", `<p>Price: <b>$64.99</b></p><script type="application/ld+json">{"availability":"OutOfStock"}</script>`},
		{"text/plain", "1.5k followers, price 3"},
		{"", "<<<>>>"}, {"", "[1,2"}, {"text/html", "<p>price</p>5k"},
	} {
		f.Add(seed.ct, seed.body)
	}
	p := fallback.New(time.Now)
	specs := []monitor.Spec{
		{Facts: []monitor.FactSpec{{Name: "price", Type: monitor.FactNumber}, {Name: "in_stock", Type: monitor.FactBoolean}}},
		{Facts: []monitor.FactSpec{{Name: "price", Type: monitor.FactNumber, Selector: "/a/price"}, {Name: "title", Type: monitor.FactText, Selector: "p"}}},
		{Facts: []monitor.FactSpec{{Name: "contains_sold_out", Type: monitor.FactBoolean, Selector: "text:sold out"}, {Name: "status", Type: monitor.FactText}}},
	}
	f.Fuzz(func(t *testing.T, ct, body string) {
		for _, spec := range specs {
			facts, _, err := p.Extract(context.Background(), spec, ai.Document{ContentType: ct, Body: []byte(body)})
			if err != nil {
				if domain.ErrorCode(err) != domain.EINVALID {
					t.Fatalf("Extract error %v, want EINVALID", err)
				}
				continue
			}
			for _, fact := range facts {
				if fact.Evidence != "" && !strings.HasPrefix(fact.Evidence, "/") && !strings.Contains(body, fact.Evidence) {
					t.Fatalf("evidence %q is not in the document", fact.Evidence)
				}
			}
		}
	})
}

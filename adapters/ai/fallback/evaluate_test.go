package fallback_test

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/ai"
	"github.com/vigilhq/vigil/domain/monitor"
)

func TestEvaluate(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	numberFact := func(key string, v float64) monitor.Fact { return monitor.NumberFact(key, v, "USD", at) }
	boolFact := func(key string, v bool) monitor.Fact {
		return monitor.Fact{Key: key, Bool: &v, Confidence: 0.8, ObservedAt: at}
	}
	textFact := func(key, v string) monitor.Fact {
		return monitor.Fact{Key: key, Text: &v, Confidence: 1, ObservedAt: at}
	}
	price := []monitor.FactSpec{{Name: "price", Type: monitor.FactNumber, Unit: "USD"}}
	stock := []monitor.FactSpec{{Name: "in_stock", Type: monitor.FactBoolean}}
	two := []monitor.FactSpec{{Name: "price", Type: monitor.FactNumber}, {Name: "status", Type: monitor.FactText}}

	tests := []struct {
		name        string
		facts       []monitor.FactSpec
		condition   string
		values      []monitor.Fact
		state       monitor.State
		confidence  float64
		explanation string
	}{
		{"below holds", price, "price < 80", []monitor.Fact{numberFact("price", 64.99)}, monitor.StateActive, 1,
			`The price is 64.99 USD, so "price < 80" holds.`},
		{"below does not hold", price, "price < 80", []monitor.Fact{numberFact("price", 80)}, monitor.StateInactive, 1,
			`The price is 80 USD, so "price < 80" does not hold.`},
		{"equality with a double", price, "price == 80.0", []monitor.Fact{numberFact("price", 80)}, monitor.StateActive, 1, ""},
		{"boolean fact", stock, "in_stock == true", []monitor.Fact{boolFact("in_stock", true)}, monitor.StateActive, 0.8,
			`The item is in stock, so "in_stock == true" holds.`},
		{"contains fact", []monitor.FactSpec{{Name: "contains_sold_out", Type: monitor.FactBoolean, Selector: "text:Sold out"}}, "contains_sold_out == false",
			[]monitor.Fact{boolFact("contains_sold_out", true)}, monitor.StateInactive, 0.8,
			`The page contains "Sold out", so "contains_sold_out == false" does not hold.`},
		{"two facts and string functions", two, `price > 10.0 && status.startsWith("Ship")`,
			[]monitor.Fact{numberFact("price", 12), textFact("status", "Shipped")}, monitor.StateActive, 1,
			`The price is 12 and the status is "Shipped", so "price > 10.0 && status.startsWith(\"Ship\")" holds.`},
		{"missing fact abstains", price, "price < 80", nil, monitor.StateUnknown, 0,
			`No price was extracted, so the condition "price < 80" cannot be judged.`},
		{"wrongly typed fact abstains", price, "price < 80", []monitor.Fact{textFact("price", "cheap")}, monitor.StateUnknown, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			spec := monitor.Spec{Kind: monitor.KindCurrentState, Facts: tt.facts, Condition: tt.condition}
			v, u, err := b.p.Evaluate(b.ctx, spec, tt.values, ai.Document{})
			require.NoError(t, err)
			require.Equal(t, "fallback", u.Provider)
			require.NoError(t, v.Validate())
			require.Equal(t, tt.state, v.State)
			require.InDelta(t, tt.confidence, v.Confidence, 1e-9)
			if tt.explanation != "" {
				require.Equal(t, tt.explanation, v.Explanation)
			}
		})
	}
}

func TestEvaluateInvalid(t *testing.T) {
	t.Parallel()
	facts := []monitor.FactSpec{{Name: "price", Type: monitor.FactNumber}}
	values := []monitor.Fact{monitor.NumberFact("price", 5, "", time.Time{})}
	tests := []struct{ name, condition, message string }{
		{"syntax error", "price <", "is not valid"},
		{"unknown variable", "cost < 5", "undeclared reference"},
		{"not boolean", "price + 1.0", "not true or false"},
		{"int and double equality", "price == 5", "no matching overload"},
		{"empty", "", "no condition"},
		{"too costly", "[1,2,3,4,5,6,7,8,9,10].all(a, [1,2,3,4,5,6,7,8,9,10].all(b, [1,2,3,4,5,6,7,8,9,10].all(c, [1,2,3,4,5,6,7,8,9,10].all(d, a+b+c+d > 0)))) && price > 1.0", "could not be evaluated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			spec := monitor.Spec{Kind: monitor.KindCurrentState, Facts: facts, Condition: tt.condition}
			_, _, err := b.p.Evaluate(b.ctx, spec, values, ai.Document{})
			require.Equal(t, domain.EINVALID, domain.ErrorCode(err), "%v", err)
			require.Contains(t, domain.ErrorMessage(err)+" "+err.Error(), tt.message)
		})
	}
}

func TestEvaluateHistoricalAbstains(t *testing.T) {
	t.Parallel()
	b := setup(t)
	spec, _, err := b.p.Classify(b.ctx, "when the price rises 5% within 24 hours", ai.Hints{})
	require.NoError(t, err)
	v, _, err := b.p.Evaluate(b.ctx, spec, []monitor.Fact{monitor.NumberFact("price", 5, "", time.Time{})}, ai.Document{})
	require.NoError(t, err)
	require.Equal(t, monitor.StateUnknown, v.State)
	require.Equal(t, "historical comparison is done by Vigil from stored facts", v.Explanation)
}

// TestEvaluateConcurrent shares one provider's program cache between goroutines; run it
// with -race.
func TestEvaluateConcurrent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	spec := monitor.Spec{Kind: monitor.KindCurrentState, Facts: []monitor.FactSpec{{Name: "price", Type: monitor.FactNumber}}}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := spec
			s.Condition = []string{"price < 80", "price > 80"}[i%2]
			for j := range 50 {
				v, _, err := b.p.Evaluate(b.ctx, s, []monitor.Fact{monitor.NumberFact("price", float64(j*3), "", time.Time{})}, ai.Document{})
				require.NoError(t, err)
				require.NotEqual(t, monitor.StateUnknown, v.State)
			}
		}()
	}
	wg.Wait()
}

// TestPipeline runs prompts through Classify, Extract and Evaluate as the evaluator does.
func TestPipeline(t *testing.T) {
	t.Parallel()
	tests := []struct {
		prompt string
		doc    ai.Document
		state  monitor.State
	}{
		{"Tell me when the price drops below $80", ai.Document{ContentType: "text/html", Body: []byte(`<p>Price: <b>$79.00</b></p>`)}, monitor.StateActive},
		{"when BTC goes over $100k", ai.Document{ContentType: "application/json", Body: []byte(`{"data":{"amount":"97,000.50"}}`)}, monitor.StateInactive},
		{"Tell me when it is back in stock", ai.Document{ContentType: "text/html", Body: []byte(`<button>Add to cart</button>`)}, monitor.StateActive},
		{`when the page no longer contains "Sold out"`, ai.Document{ContentType: "text/html", Body: []byte(`<p>SOLD OUT</p>`)}, monitor.StateInactive},
		{"when the temperature is at least 30 °C", ai.Document{ContentType: "text/plain", Body: []byte("Temperature: 31.5 °C")}, monitor.StateActive},
	}
	for _, tt := range tests {
		t.Run(tt.prompt, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			spec, _, err := b.p.Classify(b.ctx, tt.prompt, ai.Hints{})
			require.NoError(t, err)
			facts, _, err := b.p.Extract(b.ctx, spec, tt.doc)
			require.NoError(t, err)
			v, _, err := b.p.Evaluate(b.ctx, spec, facts, tt.doc)
			require.NoError(t, err)
			require.Equal(t, tt.state, v.State, v.Explanation)
		})
	}
}

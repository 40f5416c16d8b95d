package fallback_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/ai/fallback"
	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/ai"
	"github.com/vigilhq/vigil/domain/monitor"
)

// testBundle holds what the provider tests share.
type testBundle struct {
	ctx context.Context
	p   *fallback.Provider
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	clock := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return &testBundle{ctx: context.Background(), p: fallback.New(func() time.Time { return clock })}
}

func TestClassifyGrammar(t *testing.T) {
	t.Parallel()
	type fact struct {
		name string
		typ  monitor.FactType
		unit string
	}
	tests := []struct {
		prompt    string
		fact      fact
		condition string              // current_state
		change    *monitor.ChangeRule // historical_change
	}{
		// Comparisons.
		{prompt: "Tell me when the price drops below $80", fact: fact{"price", monitor.FactNumber, "USD"}, condition: "price < 80"},
		{prompt: "price falls below 79.99 dollars", fact: fact{"price", monitor.FactNumber, "USD"}, condition: "price < 79.99"},
		{prompt: "when the price is under 1 200 EUR", fact: fact{"price", monitor.FactNumber, "EUR"}, condition: "price < 1200"},
		{prompt: "tell me if it costs less than £15.50", fact: fact{"price", monitor.FactNumber, "GBP"}, condition: "price < 15.5"},
		{prompt: "Alert me when the temperature is above 30.5", fact: fact{"temperature", monitor.FactNumber, ""}, condition: "temperature > 30.5"},
		{prompt: "when the temperature rises above 25 °C", fact: fact{"temperature", monitor.FactNumber, "°C"}, condition: "temperature > 25"},
		{prompt: "BTC goes over $100k", fact: fact{"price", monitor.FactNumber, "USD"}, condition: "price > 100000"},
		{prompt: "when bitcoin is more than 1.5M USD", fact: fact{"price", monitor.FactNumber, "USD"}, condition: "price > 1500000"},
		{prompt: "notify me when the score exceeds 1,000,000", fact: fact{"score", monitor.FactNumber, ""}, condition: "score > 1000000"},
		{prompt: "when the stock count is at least 3k", fact: fact{"count", monitor.FactNumber, ""}, condition: "count >= 3000"},
		{prompt: "when the interest rate is at most 4.5%", fact: fact{"rate", monitor.FactNumber, "%"}, condition: "rate <= 4.5"},
		{prompt: "when the rating equals 5", fact: fact{"rating", monitor.FactNumber, ""}, condition: "rating == 5.0"},
		{prompt: "when the status code is 503", fact: fact{"code", monitor.FactNumber, ""}, condition: "code == 503.0"},
		{prompt: "when there are 10 or more followers", fact: fact{"followers", monitor.FactNumber, ""}, condition: "followers >= 10"},
		{prompt: "when humidity < 40%", fact: fact{"humidity", monitor.FactNumber, "%"}, condition: "humidity < 40"},
		{prompt: "when the exchange rate is below 0.85 EUR", fact: fact{"rate", monitor.FactNumber, "EUR"}, condition: "rate < 0.85"},
		{prompt: "when it drops below €2 million", fact: fact{"price", monitor.FactNumber, "EUR"}, condition: "price < 2000000"},
		// Any change.
		{prompt: "Tell me when the status changes", fact: fact{"status", monitor.FactText, ""}, change: &monitor.ChangeRule{Fact: "status", Measure: "any", Operator: "changes"}},
		{prompt: "any change in the bitcoin price", fact: fact{"price", monitor.FactNumber, ""}, change: &monitor.ChangeRule{Fact: "price", Measure: "any", Operator: "changes"}},
		{prompt: "let me know when the page changes.", fact: fact{"page", monitor.FactText, ""}, change: &monitor.ChangeRule{Fact: "page", Measure: "any", Operator: "changes"}},
		// Changes by an amount over a window.
		{prompt: "Tell me when bitcoin rises 5% within 24 hours", fact: fact{"price", monitor.FactNumber, ""},
			change: &monitor.ChangeRule{Fact: "price", Measure: "percent", Operator: "increases", Threshold: 5, Window: "24h", Baseline: monitor.BaselineWithin}},
		{prompt: "when the price jumps by 8% in 12 hours", fact: fact{"price", monitor.FactNumber, ""},
			change: &monitor.ChangeRule{Fact: "price", Measure: "percent", Operator: "increases", Threshold: 8, Window: "12h", Baseline: monitor.BaselineWithin}},
		{prompt: "when the price drops by $10 in a day", fact: fact{"price", monitor.FactNumber, "USD"},
			change: &monitor.ChangeRule{Fact: "price", Measure: "absolute", Operator: "decreases", Threshold: 10, Window: "24h", Baseline: monitor.BaselineWithin}},
		{prompt: "when the temperature falls by 5 degrees within 24h", fact: fact{"temperature", monitor.FactNumber, "°C"},
			change: &monitor.ChangeRule{Fact: "temperature", Measure: "absolute", Operator: "decreases", Threshold: 5, Window: "24h", Baseline: monitor.BaselineWithin}},
		{prompt: "alert me if followers increase by 1.5k over a week", fact: fact{"followers", monitor.FactNumber, ""},
			change: &monitor.ChangeRule{Fact: "followers", Measure: "absolute", Operator: "increases", Threshold: 1500, Window: "168h", Baseline: monitor.BaselineSince}},
		{prompt: "the price decreases by 10 percent compared with 30 days ago", fact: fact{"price", monitor.FactNumber, ""},
			change: &monitor.ChangeRule{Fact: "price", Measure: "percent", Operator: "decreases", Threshold: 10, Window: "720h", Baseline: monitor.BaselineSince}},
		{prompt: "when the rate goes up by 0.25", fact: fact{"rate", monitor.FactNumber, ""},
			change: &monitor.ChangeRule{Fact: "rate", Measure: "absolute", Operator: "increases", Threshold: 0.25}},
		{prompt: "when the score changes by more than 3% within the last 30 minutes", fact: fact{"score", monitor.FactNumber, ""},
			change: &monitor.ChangeRule{Fact: "score", Measure: "percent", Operator: "changes", Threshold: 3, Window: "30m", Baseline: monitor.BaselineWithin}},
		{prompt: "when the price is 5% higher than a week ago", fact: fact{"price", monitor.FactNumber, ""},
			change: &monitor.ChangeRule{Fact: "price", Measure: "percent", Operator: "increases", Threshold: 5, Window: "168h", Baseline: monitor.BaselineSince}},
		{prompt: "when the price changes over 24 hours", fact: fact{"price", monitor.FactNumber, ""}, change: &monitor.ChangeRule{Fact: "price", Measure: "any", Operator: "changes"}},
		// Contains and stock.
		{prompt: `Tell me when the page mentions "pre-order"`, fact: fact{"contains_pre_order", monitor.FactBoolean, ""}, condition: "contains_pre_order == true"},
		{prompt: "when the page contains Tickets on sale.", fact: fact{"contains_tickets_on_sale", monitor.FactBoolean, ""}, condition: "contains_tickets_on_sale == true"},
		{prompt: `Tell me when the page no longer contains "Sold out"`, fact: fact{"contains_sold_out", monitor.FactBoolean, ""}, condition: "contains_sold_out == false"},
		{prompt: "when the site doesn't mention ‘maintenance’", fact: fact{"contains_maintenance", monitor.FactBoolean, ""}, condition: "contains_maintenance == false"},
		{prompt: "when the banner says anything other than 'Coming soon'", fact: fact{"contains_coming_soon", monitor.FactBoolean, ""}, condition: "contains_coming_soon == false"},
		{prompt: `when the status says "Shipped"`, fact: fact{"contains_shipped", monitor.FactBoolean, ""}, condition: "contains_shipped == true"},
		{prompt: "Tell me when it is back in stock", fact: fact{"in_stock", monitor.FactBoolean, ""}, condition: "in_stock == true"},
		{prompt: "when the PS5 is in stock", fact: fact{"in_stock", monitor.FactBoolean, ""}, condition: "in_stock == true"},
		{prompt: "alert me if it sells out? I mean when it's sold out", fact: fact{"in_stock", monitor.FactBoolean, ""}, condition: "in_stock == false"},
	}
	for _, tt := range tests {
		t.Run(tt.prompt, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			spec, u, err := b.p.Classify(b.ctx, tt.prompt, ai.Hints{})
			require.NoError(t, err)
			require.NoError(t, spec.Validate())
			require.Equal(t, fallback.Name, u.Provider)
			require.Equal(t, fallback.Model, u.Model)
			require.Len(t, spec.Facts, 1)
			require.Equal(t, tt.fact.name, spec.Facts[0].Name, "fact name")
			require.Equal(t, tt.fact.typ, spec.Facts[0].Type, "fact type")
			require.Equal(t, tt.fact.unit, spec.Facts[0].Unit, "fact unit")
			require.NotEmpty(t, spec.Summary)
			require.True(t, spec.NeedsSource)
			if tt.change != nil {
				require.Equal(t, monitor.KindHistoricalChange, spec.Kind)
				require.Equal(t, tt.change, spec.Change)
				require.Empty(t, spec.Condition)
				return
			}
			require.Equal(t, monitor.KindCurrentState, spec.Kind)
			require.Equal(t, tt.condition, spec.Condition)
			require.Nil(t, spec.Change)
		})
	}
}

func TestClassifyRejects(t *testing.T) {
	t.Parallel()
	tests := []struct{ prompt, message string }{
		{"tell me something nice", `Could not find a condition in "tell me something nice"`},
		{"", "The prompt is empty."},
		{"when the price drops below a lot", `Found "drops below" but no number after it ("a lot")`},
		{"when the price increases", `Found "increases" but not by how much`},
		{"when the price rises by 5% within a fortnight", `Could not read the window "a fortnight" after "within"`},
		{"when the page contains", `Found "contains" but no text after it`},
		{`when the page says ""`, `Found "says" but no text after it`},
	}
	for _, tt := range tests {
		t.Run(tt.prompt, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			_, _, err := b.p.Classify(b.ctx, tt.prompt, ai.Hints{})
			require.Error(t, err)
			require.Equal(t, domain.EINVALID, domain.ErrorCode(err))
			msg := domain.ErrorMessage(err)
			require.Contains(t, msg, tt.message)
			require.Contains(t, msg, "Prompts that work")
			for _, ex := range fallback.Examples {
				require.Contains(t, msg, ex)
			}
			var de *domain.Error
			require.ErrorAs(t, err, &de)
			require.NotEmpty(t, de.Fields["prompt"])
		})
	}
}

// TestExamplesClassify keeps the examples shown to users honest.
func TestExamplesClassify(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, ex := range fallback.Examples {
		spec, _, err := b.p.Classify(b.ctx, ex, ai.Hints{})
		require.NoError(t, err, ex)
		require.NoError(t, spec.Validate(), ex)
		require.Empty(t, spec.Warnings, ex)
	}
}

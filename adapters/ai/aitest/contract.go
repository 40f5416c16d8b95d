package aitest

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/ai"
	"github.com/vigilhq/vigil/domain/monitor"
)

// Contract inputs, exported so provider tests can reuse them.
const (
	PromptBelow80       = "Tell me when the price drops below $80"
	PromptUnmonitorable = "Write me a poem about the sea"
)

// PriceSpec returns the current_state spec "price < 80.0" over one number fact.
func PriceSpec() monitor.Spec {
	return monitor.Spec{
		Kind:        monitor.KindCurrentState,
		Summary:     "Price drops below $80",
		Facts:       []monitor.FactSpec{{Name: "price", Type: monitor.FactNumber, Unit: "USD", Description: "the product's price"}},
		Condition:   "price < 80.0",
		NeedsSource: true,
		Confidence:  1,
	}
}

// PriceDocument returns a JSON source document holding {"price": price}.
func PriceDocument(price string) ai.Document {
	return ai.Document{
		URL:         "https://shop.example/api/product/42",
		ContentType: "application/json",
		Body:        []byte(`{"price": ` + price + `}`),
		FetchedAt:   time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC),
	}
}

// RunContract runs the cases every ai.Provider must pass. newProvider is called once per
// case, with the case's own t, so it can start a fake server tied to that case.
func RunContract(t *testing.T, newProvider func(t *testing.T) ai.Provider) {
	t.Helper()

	t.Run("classify current_state", func(t *testing.T) {
		t.Parallel()
		spec, u, err := newProvider(t).Classify(t.Context(), PromptBelow80, ai.Hints{})
		require.NoError(t, err)
		requireUsage(t, u)
		require.NoError(t, spec.Validate())
		require.Equal(t, monitor.KindCurrentState, spec.Kind)
		require.Nil(t, spec.Change)
		var numbers []string
		for _, f := range spec.Facts {
			if f.Type == monitor.FactNumber {
				numbers = append(numbers, f.Name)
			}
		}
		require.NotEmpty(t, numbers, "the spec needs a number fact: %+v", spec.Facts)
		mentioned := false
		for _, name := range numbers {
			mentioned = mentioned || strings.Contains(spec.Condition, name)
		}
		require.True(t, mentioned, "condition %q mentions none of the number facts %v", spec.Condition, numbers)
		require.Contains(t, spec.Condition, "80")
	})

	t.Run("classify rejects an unmonitorable prompt", func(t *testing.T) {
		t.Parallel()
		_, u, err := newProvider(t).Classify(t.Context(), PromptUnmonitorable, ai.Hints{})
		require.Error(t, err)
		requireUsage(t, u)
		require.ErrorIs(t, err, domain.ErrInvalid)
		var de *domain.Error
		require.True(t, errors.As(err, &de))
		require.NotEmpty(t, strings.TrimSpace(de.Message))
		_, isProviderError := ai.AsError(err)
		require.False(t, isProviderError, "a rejection is an answer, not a provider failure: %v", err)
	})

	t.Run("extract a number from JSON", func(t *testing.T) {
		t.Parallel()
		facts, u, err := newProvider(t).Extract(t.Context(), PriceSpec(), PriceDocument("64.5"))
		require.NoError(t, err)
		requireUsage(t, u)
		require.Len(t, facts, 1)
		require.NoError(t, PriceSpec().ValidateFacts(facts))
		f := facts[0]
		require.Equal(t, "price", f.Key)
		require.NotNil(t, f.Number)
		require.InDelta(t, 64.5, *f.Number, 1e-9)
		require.NotEmpty(t, f.Evidence)
		require.Greater(t, f.Confidence, 0.0)
	})

	t.Run("evaluate active", func(t *testing.T) {
		t.Parallel()
		facts := []monitor.Fact{monitor.NumberFact("price", 64.5, "USD", time.Now())}
		v, u, err := newProvider(t).Evaluate(t.Context(), PriceSpec(), facts, PriceDocument("64.5"))
		require.NoError(t, err)
		requireUsage(t, u)
		require.NoError(t, v.Validate())
		require.Equal(t, monitor.StateActive, v.State)
		require.NotEmpty(t, v.Explanation)
	})

	t.Run("evaluate inactive", func(t *testing.T) {
		t.Parallel()
		facts := []monitor.Fact{monitor.NumberFact("price", 95, "USD", time.Now())}
		v, u, err := newProvider(t).Evaluate(t.Context(), PriceSpec(), facts, ai.Document{})
		require.NoError(t, err)
		requireUsage(t, u)
		require.Equal(t, monitor.StateInactive, v.State)
		require.NotEmpty(t, v.Explanation)
	})

	t.Run("classify then extract then evaluate", func(t *testing.T) {
		t.Parallel()
		p := newProvider(t)
		spec, _, err := p.Classify(t.Context(), PromptBelow80, ai.Hints{SourceURL: "https://shop.example/api/product/42"})
		require.NoError(t, err)
		facts, _, err := p.Extract(t.Context(), spec, PriceDocument("64.5"))
		require.NoError(t, err)
		require.NoError(t, spec.ValidateFacts(facts))
		v, _, err := p.Evaluate(t.Context(), spec, facts, PriceDocument("64.5"))
		require.NoError(t, err)
		require.Equal(t, monitor.StateActive, v.State, v.Explanation)
	})
}

func requireUsage(t *testing.T, u ai.Usage) {
	t.Helper()
	require.NotEmpty(t, u.Provider, "usage must name the provider")
	require.NotEmpty(t, u.Model, "usage must name the model")
	require.GreaterOrEqual(t, u.Latency, time.Duration(0))
	require.GreaterOrEqual(t, u.Cost, 0.0)
	require.GreaterOrEqual(t, u.InputTokens, 0)
	require.GreaterOrEqual(t, u.OutputTokens, 0)
}

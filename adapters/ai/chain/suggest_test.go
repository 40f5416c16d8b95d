package chain

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/ai"
	"github.com/vigilhq/vigil/domain/monitor"
)

// suggester is a scripted provider that can also suggest selectors.
type suggester struct{ *fake }

func (s suggester) SuggestSelector(ctx context.Context, _ ai.SelectorRequest, _ ai.Document) (string, ai.Usage, error) {
	u, err := s.next(ctx)
	if err != nil {
		return "", u, err
	}
	return "." + s.name + "-price", u, nil
}

func setupSuggest(t *testing.T, cfg Config) (*Chain, *fake, *fake, *fake) {
	t.Helper()
	claude, openai, rules := newFake("claude"), newFake("openai"), newFake("fallback")
	cfg.Logger = zerolog.Nop()
	c, err := New([]Named{
		{Name: "claude", Label: "Claude", Provider: suggester{claude}},
		{Name: "openai", Label: "OpenAI", Provider: suggester{openai}},
		{Name: "fallback", Label: "Rules", Provider: rules},
	}, cfg)
	require.NoError(t, err)
	return c, claude, openai, rules
}

var suggestReq = ai.SelectorRequest{Spec: spec, Fact: monitor.FactSpec{Name: "price", Type: monitor.FactNumber, Selector: ".price"},
	LastGood: monitor.NumberFact("price", 120, "USD", time.Time{})}

func TestSuggestSelectorFailsOverAndIsCached(t *testing.T) {
	t.Parallel()
	c, claude, openai, rules := setupSuggest(t, testConfig())
	claude.script(step{err: retryable(0)})
	sel, u, err := c.SuggestSelector(context.Background(), suggestReq, doc)
	require.NoError(t, err)
	require.Equal(t, ".openai-price", sel)
	require.Equal(t, "openai", u.Provider)
	require.Contains(t, u.Notes, "Claude is unavailable; asked with OpenAI instead.")
	require.Equal(t, int32(3), claude.calls.Load(), "Claude is retried first")
	require.Zero(t, rules.calls.Load(), "the rules cannot suggest selectors and are not asked")

	// The same question about the same page is answered from the cache.
	_, u, err = c.SuggestSelector(context.Background(), suggestReq, doc)
	require.NoError(t, err)
	require.True(t, u.Cached)
	require.Equal(t, int32(1), openai.calls.Load())

	// When every provider that can suggest fails, the error says so.
	openai.script(step{err: permanent()})
	other := doc
	other.Body = []byte(`{"cost": 120}`)
	_, _, err = c.SuggestSelector(context.Background(), suggestReq, other)
	require.Equal(t, domain.EUNAVAILABLE, domain.ErrorCode(err))
	require.Contains(t, domain.ErrorMessage(err), "No AI provider could answer")
}

func TestSuggestSelectorNeedsAnAIProviderAndBudget(t *testing.T) {
	t.Parallel()
	rulesOnly, err := New([]Named{{Name: "fallback", Label: "Rules", Provider: newFake("fallback")}}, Config{Logger: zerolog.Nop()})
	require.NoError(t, err)
	_, _, err = rulesOnly.SuggestSelector(context.Background(), suggestReq, doc)
	require.True(t, errors.Is(err, ai.ErrNoSuggester), "%v", err)

	cfg := testConfig()
	cfg.MonthlyBudget, cfg.Spend = 5, &spendStore{spent: map[string]float64{"spender": 5}}
	c, claude, openai, _ := setupSuggest(t, cfg)
	_, _, err = c.SuggestSelector(ai.WithUser(context.Background(), "spender"), suggestReq, doc)
	require.Equal(t, domain.EUNAVAILABLE, domain.ErrorCode(err))
	require.Contains(t, domain.ErrorMessage(err), "monthly AI budget is spent")
	require.Zero(t, claude.calls.Load()+openai.calls.Load(), "a spent budget asks no AI provider")
}

package chain

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/ai/fallback"
	"github.com/vigilhq/vigil/domain/ai"
	"github.com/vigilhq/vigil/domain/monitor"
)

// TestExtractUserSelectorsExactly checks that facts whose selector the user gave are read
// by Config.Exact where the selector says, and only the others by the providers.
func TestExtractUserSelectorsExactly(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.Exact = fallback.New(time.Now)
	b := setup(t, cfg)
	doc := ai.Document{URL: "https://example.com/p", ContentType: "application/json", Body: []byte(`{"price": 75, "inventory": {"left": 3}}`)}
	stock := monitor.FactSpec{Name: "stock", Type: monitor.FactNumber, Selector: "/inventory/left", SelectorBy: monitor.SelectorByUser}
	mixed := monitor.Spec{Kind: monitor.KindCurrentState, Condition: "price < 80 && stock > 0",
		Facts: []monitor.FactSpec{{Name: "price", Type: monitor.FactNumber}, stock}}

	facts, u, err := b.chain.Extract(context.Background(), mixed, doc)
	require.NoError(t, err)
	require.Equal(t, "claude", u.Provider, "the fact without a user selector went to the first provider")
	require.Len(t, facts, 2)
	require.Equal(t, "price", facts[0].Key)
	require.Equal(t, "claude", facts[0].Evidence)
	require.Equal(t, "stock", facts[1].Key)
	require.Equal(t, 3.0, *facts[1].Number)
	require.Equal(t, "/inventory/left", facts[1].Evidence)
	require.Equal(t, int32(1), b.claude.calls.Load())

	only := monitor.Spec{Kind: monitor.KindCurrentState, Condition: "stock > 0", Facts: []monitor.FactSpec{stock}}
	facts, u, err = b.chain.Extract(context.Background(), only, doc)
	require.NoError(t, err)
	require.Equal(t, fallback.Name, u.Provider)
	require.Zero(t, u.Cost)
	require.Len(t, facts, 1)
	require.Equal(t, 3.0, *facts[0].Number)
	require.Equal(t, int32(1), b.claude.calls.Load(), "no model call when every fact has the user's selector")

	missing := monitor.Spec{Kind: monitor.KindCurrentState, Condition: "stock > 0",
		Facts: []monitor.FactSpec{{Name: "stock", Type: monitor.FactNumber, Selector: "/nope", SelectorBy: monitor.SelectorByUser}}}
	_, _, err = b.chain.Extract(context.Background(), missing, doc)
	require.ErrorContains(t, err, "Could not find the stock")
	require.Equal(t, int32(1), b.claude.calls.Load(), "a selector that matches nothing is not guessed by a model")
}

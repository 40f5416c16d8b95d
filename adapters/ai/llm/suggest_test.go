package llm_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/ai/llm"
	"github.com/vigilhq/vigil/domain/ai"
	"github.com/vigilhq/vigil/domain/monitor"
)

// The suggestion is written against the markup, so the model is shown the raw page, with
// the fact, its broken selector and its last good value.
func TestSuggestContentShowsTheMarkup(t *testing.T) {
	t.Parallel()
	good := monitor.NumberFact("price", 120, "USD", time.Time{})
	good.Evidence, good.Locator = "$120.00", "body > span.price"
	req := ai.SelectorRequest{Fact: monitor.FactSpec{Name: "price", Type: monitor.FactNumber, Selector: "span.price"}, LastGood: good}
	doc := ai.Document{Body: []byte(`<b data-testid="price-now">$120.00</b>`), Text: "$120.00", ContentType: "text/html"}
	content, err := llm.SuggestContent(req, doc, 10_000)
	require.NoError(t, err)
	require.Contains(t, content, `"selector":"span.price"`)
	require.Contains(t, content, `"value":120`)
	require.Contains(t, content, `"evidence":"$120.00"`)
	require.Contains(t, content, `<b data-testid="price-now">`, "the markup, not only the text")

	short, err := llm.SuggestContent(req, ai.Document{Body: []byte(strings.Repeat("x", 100))}, 10)
	require.NoError(t, err)
	require.Contains(t, short, `"truncated":true`)
}

func TestDecodeSelector(t *testing.T) {
	t.Parallel()
	sel, err := llm.DecodeSelector([]byte(`{"selector":"  [data-testid=price-now] ","reason":"moved"}`))
	require.NoError(t, err)
	require.Equal(t, "[data-testid=price-now]", sel)
	sel, err = llm.DecodeSelector([]byte(`{"selector":"","reason":"not on the page"}`))
	require.NoError(t, err)
	require.Empty(t, sel, "the model says the fact is gone")
	for _, bad := range []string{`{"reason":"x"}`, `{"selector":"a\nb"}`, `{"selector":"` + strings.Repeat("a", 501) + `"}`, `not json`} {
		_, err := llm.DecodeSelector([]byte(bad))
		require.Error(t, err, bad)
	}
}

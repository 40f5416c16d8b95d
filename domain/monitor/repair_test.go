package monitor_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/domain/monitor"
)

func TestVerifyRepair(t *testing.T) {
	t.Parallel()
	num := func(v float64, unit string) *monitor.Fact {
		f := monitor.NumberFact("price", v, unit, time.Time{})
		return &f
	}
	text := func(s string) *monitor.Fact { return &monitor.Fact{Key: "status", Text: &s} }
	for _, tc := range []struct {
		name     string
		good     monitor.Fact
		found    *monitor.Fact
		verified bool
		reason   string
	}{
		{"same number", *num(120, "USD"), num(120, "USD"), true, ""},
		{"same number, parsed apart", *num(1299.99, "EUR"), num(1299.99+1e-10, "EUR"), true, ""},
		{"another number", *num(120, "USD"), num(99, "USD"), false, "reads 99 USD, not the last good value 120 USD"},
		{"another unit", *num(120, "USD"), num(120, "EUR"), false, "in another unit"},
		{"nothing", *num(120, "USD"), nil, false, "finds nothing"},
		{"same text, other spacing", *text("In stock"), text("  In stock "), true, ""},
		{"a number for a text", *text("120"), num(120, ""), false, "not the last good value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ok, why := monitor.VerifyRepair(tc.good, tc.found)
			require.Equal(t, tc.verified, ok)
			require.Contains(t, why, tc.reason)
		})
	}
}

func TestRepairedSelectorIsReadExactly(t *testing.T) {
	t.Parallel()
	spec := monitor.Spec{Facts: []monitor.FactSpec{{Name: "price", Type: monitor.FactNumber, Selector: ".price", SelectorBy: monitor.SelectorByUser},
		{Name: "stock", Type: monitor.FactText, Selector: "stock"}}}
	out, err := spec.WithRepairedSelector("price", " .price-now ")
	require.NoError(t, err)
	f, ok := out.Fact("price")
	require.True(t, ok)
	require.Equal(t, ".price-now", f.Selector)
	require.True(t, f.Exact())
	require.Equal(t, ".price", spec.Facts[0].Selector, "the original spec is left alone")
	stock, _ := out.Fact("stock")
	require.False(t, stock.Exact(), "a classification's keyword is a hint, not an exact selector")
	_, err = spec.WithRepairedSelector("volume", ".v")
	require.Error(t, err)
	require.Empty(t, out.UserSelectors()["price"], "a repair is not the user's selector")
}

func TestSnippetIsOneCappedLine(t *testing.T) {
	t.Parallel()
	require.Equal(t, "New look! $120", monitor.Snippet("  New look!\n\n\t$120  "))
	long := monitor.Snippet(strings.Repeat("é ", 1000))
	require.Equal(t, monitor.SnippetMaxRunes, len([]rune(long)))
	require.True(t, strings.HasSuffix(long, "…"))
}

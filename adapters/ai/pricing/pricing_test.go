package pricing_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/ai/pricing"
)

func TestDefault(t *testing.T) {
	t.Parallel()
	d := pricing.Default()
	require.Equal(t, pricing.Price{InputPerMTok: 3, OutputPerMTok: 15}, d["claude-sonnet-4-5"])
	require.Equal(t, pricing.Price{InputPerMTok: 0.15, OutputPerMTok: 0.6}, d["gpt-4o-mini"])
	d["gpt-4o"] = pricing.Price{}
	require.Equal(t, 2.5, pricing.Default()["gpt-4o"].InputPerMTok, "Default must return a fresh table")
}

func TestCost(t *testing.T) {
	t.Parallel()
	d := pricing.Default()
	tests := []struct {
		model   string
		in, out int
		want    float64
	}{
		{"claude-sonnet-4-5", 1_000_000, 1_000_000, 18},
		{"claude-sonnet-4-5", 2000, 500, 0.0135},
		{"claude-sonnet-4-5-20250929", 2000, 500, 0.0135},
		{"gpt-4o-mini-2024-07-18", 1_000_000, 0, 0.15},
		{"gpt-4o-2024-08-06", 0, 1_000_000, 10},
		{"llama3.1:8b", 1_000_000, 1_000_000, 0},
		{"gpt-4o-mini-preview", 1_000_000, 0, 0},
		{"", 10, 10, 0},
	}
	for _, tt := range tests {
		require.InDelta(t, tt.want, d.Cost(tt.model, tt.in, tt.out), 1e-12, tt.model)
	}
	var empty pricing.Table
	require.Zero(t, empty.Cost("gpt-4o", 1000, 1000))
}

func TestParse(t *testing.T) {
	t.Parallel()
	got, err := pricing.Parse(" gpt-4o=2.5/10, my-model = 0.5 / 1.25 ,,")
	require.NoError(t, err)
	require.Equal(t, pricing.Table{
		"gpt-4o":   {InputPerMTok: 2.5, OutputPerMTok: 10},
		"my-model": {InputPerMTok: 0.5, OutputPerMTok: 1.25},
	}, got)

	got, err = pricing.Parse("")
	require.NoError(t, err)
	require.Empty(t, got)

	for spec, want := range map[string]string{
		"gpt-4o":                 `missing "="`,
		"=1/2":                   "missing model name",
		"gpt-4o=2.5":             `missing "/"`,
		"gpt-4o=x/10":            `input price: "x" is not a number`,
		"gpt-4o=1/ten":           `output price: "ten" is not a number`,
		"gpt-4o=-1/10":           `"-1" is negative`,
		"gpt-4o=NaN/10":          "not a number",
		"a=1/2,a=3/4":            `model "a" is priced twice`,
		"ok=1/2,bad,worse=1/x/2": `entry 2 "bad"`,
	} {
		_, err := pricing.Parse(spec)
		require.ErrorContains(t, err, want, spec)
		require.ErrorContains(t, err, "model=input/output", spec)
	}
	_, err = pricing.Parse("ok=1/2,bad,worse=1/x")
	require.ErrorContains(t, err, `entry 3 "worse=1/x"`, "every bad entry is reported")
}

func TestMerge(t *testing.T) {
	t.Parallel()
	base := pricing.Table{"a": {InputPerMTok: 1, OutputPerMTok: 2}, "b": {InputPerMTok: 3, OutputPerMTok: 4}}
	over := pricing.Table{"b": {InputPerMTok: 5, OutputPerMTok: 6}, "c": {}}
	got := base.Merge(over)
	require.Equal(t, pricing.Table{"a": {InputPerMTok: 1, OutputPerMTok: 2}, "b": {InputPerMTok: 5, OutputPerMTok: 6}, "c": {}}, got)
	require.Equal(t, 3.0, base["b"].InputPerMTok, "Merge must not modify its receiver")
	require.Len(t, pricing.Table(nil).Merge(nil), 0)
}

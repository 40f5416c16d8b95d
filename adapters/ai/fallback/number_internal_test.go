package fallback

import (
	"fmt"
	"math"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestReadNumber(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in           string
		decimalComma bool
		want         float64
	}{
		{in: "$1,299", want: 1299},
		{in: "$1,299.00", want: 1299},
		{in: "1.299,00 €", want: 1299},
		{in: "1.299,00 €", decimalComma: true, want: 1299},
		{in: "1.299 €", want: 1299}, // a euro after the number: continental writing
		{in: "12,50 €", want: 12.5},
		{in: "¥1299", want: 1299},
		{in: "¥1,299", want: 1299},
		{in: "12 990 kr", want: 12990},
		{in: "12\u00a0990,50\u00a0kr", want: 12990.5},
		{in: "1\u202f299,99 €", want: 1299.99},
		{in: "CHF 1'299.50", want: 1299.5},
		{in: "Fr. 1’299.50", want: 1299.5},
		{in: "US$ 2,500.25", want: 2500.25},
		{in: "R$ 1.299,90", want: 1299.9},
		{in: "49,90 zł", want: 49.9},
		{in: "1,299", decimalComma: true, want: 1.299},
		{in: "1.299", decimalComma: true, want: 1299},
		{in: "1.299", want: 1.299},
		{in: "0,500", want: 0.5},
		{in: "1.2345", want: 1.2345},
		{in: "1,234,567.89", want: 1234567.89},
		{in: "1.234.567,89", want: 1234567.89},
		{in: "1.234.567", want: 1234567},
		{in: "-3", want: -3},
		{in: "1.5k followers", want: 1500},
		{in: "2M", want: 2e6},
		{in: "€2,500.25", want: 2500.25},
		{in: "Price: 79.50 USD", want: 79.5},
	}
	for _, tt := range tests {
		got, ok := readNumber(tt.in, tt.decimalComma)
		require.True(t, ok, tt.in)
		require.InDelta(t, tt.want, got, 1e-9, "%q (decimal comma %v)", tt.in, tt.decimalComma)
	}
	for _, in := range []string{"", "no number", "$", "€ ,"} {
		_, ok := readNumber(in, false)
		require.False(t, ok, in)
	}
}

func TestLangDecimalComma(t *testing.T) {
	t.Parallel()
	for tag, want := range map[string]bool{"de": true, "de-DE": true, "fr_FR": true, "sv-SE": true, "pt-BR": true,
		"en": false, "en-US": false, "ja": false, "de-CH": false, "es-MX": false, "": false} {
		require.Equal(t, want, langDecimalComma(tag), tag)
	}
}

// FuzzReadNumber checks that any text reads as a finite number or none, and that a price
// written in any of the supported styles reads back as itself.
func FuzzReadNumber(f *testing.F) {
	for _, s := range []string{"$1,299", "1.299,00 €", "12 990 kr", "¥1299", "CHF 1'299.50", "-0,5", "9999999999999999999999k"} {
		f.Add(s, false, int64(129900), uint8(0))
	}
	f.Fuzz(func(t *testing.T, s string, decimalComma bool, cents int64, style uint8) {
		if v, ok := readNumber(s, decimalComma); ok && (math.IsNaN(v) || math.IsInf(v, 0)) {
			t.Fatalf("readNumber(%q) = %v: not a finite number", s, v)
		}
		cents = max(cents, -cents) % 1e13 // up to 99 billion
		whole, frac := cents/100, cents%100
		group := func(sep string) string {
			d := strconv.FormatInt(whole, 10)
			for i := len(d) - 3; i > 0; i -= 3 {
				d = d[:i] + sep + d[i:]
			}
			return d
		}
		var text string
		switch style % 5 {
		case 0:
			text = fmt.Sprintf("$%s.%02d", group(","), frac)
		case 1:
			text = fmt.Sprintf("%s,%02d €", group("."), frac)
		case 2:
			text = fmt.Sprintf("%s,%02d\u00a0kr", group("\u00a0"), frac)
		case 3:
			text = fmt.Sprintf("CHF %s.%02d", group("'"), frac)
		case 4:
			text = fmt.Sprintf("%s,%02d zł", group(" "), frac)
		}
		v, ok := readNumber(text, decimalComma)
		if !ok || math.Abs(v-float64(cents)/100) > 1e-6*math.Max(1, v) {
			t.Fatalf("readNumber(%q) = %v, %v; want %v", text, v, ok, float64(cents)/100)
		}
	})
}

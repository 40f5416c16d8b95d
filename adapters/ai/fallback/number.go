package fallback

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
)

// numberPattern matches a number as people write it: an optional currency before it,
// thousands separators (1,200 or 1 200), decimals, a k/M suffix or a scale word, and an
// optional unit after it (%, USD, dollars, EUR, °C...). Submatches: 1 currency before,
// 2 digits, 3 attached suffix, 4 scale word, 5 unit after.
const numberPattern = `([$€£]|\b(?:usd|eur|gbp)\s?)?\s?` +
	`(-?(?:\d{1,3}(?:,\d{3})+|\d{1,3}(?: \d{3})+\b|\d+)(?:\.\d+)?|-?\.\d+)` +
	`(?:([km])\b|\s?(thousand|million|billion|bn)\b)?` +
	`(?:\s?(%|percent\b|per cent\b|usd\b|dollars?\b|bucks\b|eur\b|euros?\b|€|gbp\b|pounds?\b|£|°\s?[cf]\b|°|degrees?(?:\s(?:celsius|fahrenheit|c|f))?\b|celsius\b|fahrenheit\b|ms\b|milliseconds?\b|seconds?\b|secs?\b))?`

var (
	// promptNumberRe matches numbers in a lower-cased prompt.
	promptNumberRe = regexp.MustCompile(numberPattern)
	// docNumberRe matches numbers in documents: currency before, separators and decimals.
	docNumberRe = regexp.MustCompile(`(?:[$€£]\s?)?-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?`)
)

// amount is a number read from a prompt.
type amount struct {
	value   float64
	unit    string // USD, EUR, GBP, %, °C, °F or ""
	percent bool
	text    string // the matched text, for messages
}

// parseAmount reads the submatches of promptNumberRe (m[0] is the whole match).
func parseAmount(m []string) (amount, error) {
	a := amount{text: strings.TrimSpace(m[0])}
	digits := strings.NewReplacer(",", "", " ", "").Replace(m[2])
	v, err := strconv.ParseFloat(digits, 64)
	if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
		return amount{}, fmt.Errorf("read number %q: not a finite number", m[2])
	}
	switch strings.ToLower(m[3] + m[4]) {
	case "k", "thousand":
		v *= 1e3
	case "m", "million":
		v *= 1e6
	case "billion", "bn":
		v *= 1e9
	}
	if math.IsInf(v, 0) {
		return amount{}, fmt.Errorf("read number %q: too large", m[2])
	}
	a.value = v
	a.unit = unitOf(strings.TrimSpace(strings.ToLower(m[1])), strings.ToLower(m[5]))
	a.percent = a.unit == "%"
	return a, nil
}

// unitOf normalises the currency before a number and the unit word after it.
func unitOf(before, after string) string {
	switch before {
	case "$", "usd":
		return "USD"
	case "€", "eur":
		return "EUR"
	case "£", "gbp":
		return "GBP"
	}
	switch {
	case after == "":
		return ""
	case after == "%" || strings.HasPrefix(after, "per"):
		return "%"
	case after == "usd" || strings.HasPrefix(after, "dollar") || after == "bucks":
		return "USD"
	case after == "eur" || after == "€" || strings.HasPrefix(after, "euro"):
		return "EUR"
	case after == "gbp" || after == "£" || strings.HasPrefix(after, "pound"):
		return "GBP"
	case after == "ms" || strings.HasPrefix(after, "milli"):
		return "ms"
	case strings.HasPrefix(after, "sec"):
		return "s"
	case strings.HasSuffix(after, "f") || strings.Contains(after, "fahrenheit"):
		return "°F"
	default: // °, °c, degrees, celsius
		return "°C"
	}
}

// parseDocNumber reads a number found in a document or a JSON string value, such as
// "$1,075.50", "1 075.50", "-3" or "1.5k". It reports false when s holds no number.
func parseDocNumber(s string) (float64, bool) {
	m := docNumberRe.FindStringIndex(s)
	if m == nil {
		return 0, false
	}
	tok := s[m[0]:m[1]]
	tok = strings.TrimLeft(tok, "$€£ \t")
	v, err := strconv.ParseFloat(strings.ReplaceAll(tok, ",", ""), 64)
	if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, false
	}
	rest := s[m[1]:]
	if len(rest) > 0 && (len(rest) == 1 || !isLetter(rest[1])) {
		switch rest[0] {
		case 'k', 'K':
			v *= 1e3
		case 'M':
			v *= 1e6
		}
	}
	return v, true
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// celNumber writes v as a CEL literal. Ordering comparisons accept an int literal against a
// double fact (cross-type numeric comparisons are on), which reads best ("price < 80");
// equality in CEL needs the same type on both sides, so == and != get a double ("80.0"), as
// do numbers too large for an int literal.
func celNumber(v float64, op string) string {
	s := strconv.FormatFloat(v, 'f', -1, 64)
	integral := !strings.Contains(s, ".")
	if integral && (op == "==" || op == "!=" || math.Abs(v) >= 1e15) {
		s += ".0"
	}
	return s
}

// formatNumber writes v for people: no exponent, no trailing zeros.
func formatNumber(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

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
	// docNumberRe matches numbers as documents write them in many locales: a currency
	// before, digits grouped in threes by one kind of separator ("1,299", "1.299",
	// "12 990" with a plain, no-break or narrow no-break space, "1'299"), and decimals
	// after "." or ",". Which separator is the decimal one is readNumber's decision.
	docNumberRe = regexp.MustCompile(`(?:(?:[$€£¥₹₩]|(?:US|CA|AU|NZ|HK|R)\$|CHF|Fr\.)\s?)?-?` +
		`(?:\d{1,3}(?:,\d{3})+\b|\d{1,3}(?:\.\d{3})+\b|\d{1,3}(?:[ \x{00a0}\x{202f}]\d{3})+\b|\d{1,3}(?:['’]\d{3})+\b|\d+)` +
		`(?:[.,]\d+)?`)
	// decimalCommaAfterRe matches what follows a number written the continental way:
	// "1.299 €", "12 990 kr", "49,90 zł".
	decimalCommaAfterRe = regexp.MustCompile(`^[\s\x{00a0}\x{202f}]?(?:€|eur\b|kr\b|kr\.|sek\b|nok\b|dkk\b|zł|pln\b|kč|czk\b|₽|руб|rub\b|ft\b|huf\b|lei\b|ron\b|₺|tl\b|r\$|brl\b)`)
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

// parseDocNumber reads the first number in s, a text found in a document or a JSON
// string value, such as "$1,075.50", "1.299,00 €", "12 990 kr", "¥1299", "-3" or "1.5k",
// the English way where the writing is ambiguous. It reports false when s holds none.
func parseDocNumber(s string) (float64, bool) { return readNumber(s, false) }

// readNumber reads the first number in s. decimalComma says the document writes numbers
// the continental way, so that an ambiguous "1.299" is 1299 and "1,299" is 1.299; a
// currency after the number that is written that way ("1.299 €") says so too.
func readNumber(s string, decimalComma bool) (float64, bool) {
	m := docNumberRe.FindStringIndex(s)
	if m == nil {
		return 0, false
	}
	rest := s[m[1]:]
	if decimalCommaAfterRe.MatchString(strings.ToLower(rest)) {
		decimalComma = true
	}
	v, ok := numberValue(s[m[0]:m[1]], decimalComma)
	if !ok {
		return 0, false
	}
	if len(rest) > 0 && (len(rest) == 1 || !isLetter(rest[1])) {
		switch rest[0] {
		case 'k', 'K':
			v *= 1e3
		case 'M':
			v *= 1e6
		}
	}
	if math.IsInf(v, 0) {
		return 0, false
	}
	return v, true
}

// numberValue reads a token docNumberRe matched. With both "." and "," in it, the last
// one is the decimal separator; with one of them appearing more than once, it groups
// thousands; with one appearing once before exactly three digits ("1,299"), the locale
// decides; before any other count of digits, it is the decimal separator. Spaces and
// apostrophes only ever group.
func numberValue(tok string, decimalComma bool) (float64, bool) {
	digits := strings.TrimLeftFunc(tok, func(r rune) bool { return r != '-' && (r < '0' || r > '9') }) // the currency
	digits = strings.NewReplacer(" ", "", "\u00a0", "", "\u202f", "", "'", "", "’", "").Replace(digits)
	dot, comma := strings.LastIndexByte(digits, '.'), strings.LastIndexByte(digits, ',')
	decimal := byte(0)
	switch {
	case dot >= 0 && comma >= 0:
		decimal = digits[max(dot, comma)]
	case dot >= 0 || comma >= 0:
		sep := byte('.')
		at := dot
		if comma >= 0 {
			sep, at = ',', comma
		}
		whole := strings.TrimPrefix(digits[:at], "-")
		switch {
		case strings.Count(digits, string(sep)) > 1:
		case len(digits)-at-1 != 3 || whole == "0":
			decimal = sep
		case (sep == ',') == decimalComma:
			decimal = sep
		}
	}
	var b strings.Builder
	for i := 0; i < len(digits); i++ {
		switch c := digits[i]; {
		case c == decimal:
			b.WriteByte('.')
		case c == '.' || c == ',':
		default:
			b.WriteByte(c)
		}
	}
	v, err := strconv.ParseFloat(b.String(), 64)
	if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, false
	}
	return v, true
}

// decimalCommaLanguages write numbers "1.299,50": a language tag (html lang) of one of
// them, outside Switzerland and Mexico, makes a page's ambiguous numbers read that way.
var decimalCommaLanguages = map[string]bool{
	"bg": true, "ca": true, "cs": true, "da": true, "de": true, "el": true, "es": true, "et": true, "eu": true, "fi": true,
	"fr": true, "gl": true, "hr": true, "hu": true, "id": true, "is": true, "it": true, "lt": true, "lv": true, "nb": true,
	"nl": true, "nn": true, "no": true, "pl": true, "pt": true, "ro": true, "ru": true, "sk": true, "sl": true, "sr": true,
	"sv": true, "tr": true, "uk": true, "vi": true,
}

// langDecimalComma reports whether a language tag such as "de-DE" writes decimal commas.
func langDecimalComma(tag string) bool {
	lang, region, _ := strings.Cut(strings.ToLower(strings.TrimSpace(strings.ReplaceAll(tag, "_", "-"))), "-")
	if region == "ch" || region == "li" || region == "mx" {
		return false
	}
	return decimalCommaLanguages[lang]
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

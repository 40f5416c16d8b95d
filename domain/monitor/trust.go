package monitor

import (
	"fmt"
	"strings"
	"unicode"
)

// MinConfidenceDefault is the confidence below which a fact is not trusted.
const MinConfidenceDefault = 0.6

// Untrusted returns why facts cannot be trusted to judge the monitor, or "" when they can:
// a fact whose confidence is below minConfidence, or whose evidence is not found in the
// document body, makes the evaluation abstain instead of alerting on a made-up value.
// Evidence that is a JSON pointer ("/data/price") is checked by the extractor itself.
func Untrusted(facts []Fact, body []byte, minConfidence float64) string {
	var doc string
	for _, f := range facts {
		if f.Confidence < minConfidence {
			return fmt.Sprintf("Vigil was not sure enough about the %s (confidence %.2f) to judge it; no alert was sent.", f.Key, f.Confidence)
		}
		if f.Evidence == "" || strings.HasPrefix(f.Evidence, "/") {
			continue
		}
		if doc == "" {
			doc = squash(string(body))
		}
		if !strings.Contains(doc, squash(f.Evidence)) {
			return fmt.Sprintf("The evidence given for the %s is not in the source, so it was not trusted; no alert was sent.", f.Key)
		}
	}
	return ""
}

// squash lower-cases s and drops white space, so evidence matches across reflowed text.
func squash(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return unicode.ToLower(r)
	}, s)
}

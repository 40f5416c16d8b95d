package monitor

import (
	"fmt"
	"strings"
	"unicode"
)

// MinConfidenceDefault is the confidence below which a fact is not trusted.
const MinConfidenceDefault = 0.6

// Untrusted returns why facts cannot be trusted to judge the monitor, or "" when they can:
// a fact whose confidence is below minConfidence, or whose evidence is found in none of the
// document's forms (its raw body, its visible text), makes the evaluation abstain instead
// of alerting on a made-up value. Evidence that is a JSON pointer ("/data/price") is checked
// by the extractor itself.
func Untrusted(facts []Fact, minConfidence float64, document ...string) string {
	var forms []string
	for _, f := range facts {
		if f.Confidence < minConfidence {
			return fmt.Sprintf("Vigil was not sure enough about the %s (confidence %.2f) to judge it; no alert was sent.", f.Key, f.Confidence)
		}
		if f.Evidence == "" || strings.HasPrefix(f.Evidence, "/") {
			continue
		}
		if forms == nil {
			for _, d := range document {
				forms = append(forms, squash(d))
			}
		}
		evidence, found := squash(f.Evidence), false
		for _, d := range forms {
			found = found || strings.Contains(d, evidence)
		}
		if !found {
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

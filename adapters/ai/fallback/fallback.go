// Package fallback is the rule-based AI provider: no network, no cost, deterministic. It
// understands a small prompt grammar (a fact compared with a number: "drops below $80",
// "above 1,200", "at least 3k") and extracts numbers from JSON (a JSON pointer or the first
// field named like the fact) and from HTML or text (the number nearest the fact's keyword).
//
// This is the walking skeleton's provider; the full grammar (changes, percentages over
// windows, contains, CEL conditions) arrives with the AI provider layer.
package fallback

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/ai"
	"github.com/vigilhq/vigil/domain/monitor"
)

// Name and Model identify this provider in usage records.
const (
	Name  = "fallback"
	Model = "rules-v1"
)

// Provider is the rule-based provider.
type Provider struct {
	now func() time.Time
}

var _ ai.Provider = (*Provider)(nil)

// New returns the rule-based provider.
func New(now func() time.Time) *Provider { return &Provider{now: now} }

// Examples are prompts the grammar understands, shown when a prompt is not understood.
var Examples = []string{
	"Tell me when the price drops below $80",
	"Alert me when the temperature is above 30",
	"Let me know when the stock count is at least 5",
}

var (
	comparisonRe = regexp.MustCompile(`(?i)\b(drops below|falls below|goes below|below|under|less than|lower than|at most|rises above|goes above|above|over|more than|greater than|higher than|exceeds|at least)\s*(?:[$€£]\s*)?(-?[0-9][0-9,]*(?:\.[0-9]+)?)\s*([km])?\b`)
	conditionRe  = regexp.MustCompile(`^\s*([a-z_][a-z0-9_]*)\s*(<=|>=|<|>|==|!=)\s*(-?[0-9]+(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?)\s*$`)
	numberRe     = regexp.MustCompile(`-?[0-9][0-9,]*(?:\.[0-9]+)?`)
	tagRe        = regexp.MustCompile(`(?is)<script.*?</script>|<style.*?</style>|<[^>]+>`)
	spaceRe      = regexp.MustCompile(`\s+`)
	factNames    = []string{"price", "temperature", "count", "stock", "rate", "score", "value"}
)

func usage(start, end time.Time) ai.Usage {
	return ai.Usage{Provider: Name, Model: Model, Latency: end.Sub(start)}
}

// Classify implements ai.Provider.
func (p *Provider) Classify(_ context.Context, prompt string, _ ai.Hints) (monitor.Spec, ai.Usage, error) {
	start := p.now()
	m := comparisonRe.FindStringSubmatch(prompt)
	if m == nil {
		return monitor.Spec{}, usage(start, p.now()), &domain.Error{Code: domain.EINVALID,
			Message: fmt.Sprintf("Could not find a comparison such as \"below 80\" or \"above $1,200\" in the prompt. Prompts that work: %q.", Examples),
			Fields:  map[string]string{"prompt": "no comparison with a number was found"}}
	}
	threshold, err := parseNumber(m[2], m[3])
	if err != nil {
		return monitor.Spec{}, usage(start, p.now()), domain.Errorf(domain.EINVALID, "Could not read the number %q in the prompt.", m[2])
	}
	op := operator(strings.ToLower(m[1]))
	name, unit := factName(prompt)
	spec := monitor.Spec{
		Kind:        monitor.KindCurrentState,
		Summary:     fmt.Sprintf("%s %s %s", name, words[op], strconv.FormatFloat(threshold, 'f', -1, 64)),
		Facts:       []monitor.FactSpec{{Name: name, Type: monitor.FactNumber, Unit: unit, Description: "the " + name + " on the source"}},
		Condition:   fmt.Sprintf("%s %s %s", name, op, strconv.FormatFloat(threshold, 'f', -1, 64)),
		NeedsSource: true,
		Confidence:  1,
	}
	return spec, usage(start, p.now()), nil
}

var words = map[string]string{"<": "below", "<=": "at most", ">": "above", ">=": "at least"}

func operator(phrase string) string {
	switch phrase {
	case "at most":
		return "<="
	case "at least":
		return ">="
	case "drops below", "falls below", "goes below", "below", "under", "less than", "lower than":
		return "<"
	}
	return ">"
}

func factName(prompt string) (name, unit string) {
	lower := strings.ToLower(prompt)
	if strings.ContainsAny(prompt, "$") {
		unit = "USD"
	} else if strings.Contains(prompt, "€") {
		unit = "EUR"
	} else if strings.Contains(prompt, "£") {
		unit = "GBP"
	}
	for _, n := range factNames {
		if strings.Contains(lower, n) {
			return n, unit
		}
	}
	if unit != "" {
		return "price", unit
	}
	return "value", unit
}

func parseNumber(digits, suffix string) (float64, error) {
	v, err := strconv.ParseFloat(strings.ReplaceAll(digits, ",", ""), 64)
	if err != nil {
		return 0, err
	}
	switch strings.ToLower(suffix) {
	case "k":
		v *= 1e3
	case "m":
		v *= 1e6
	}
	return v, nil
}

// Extract implements ai.Provider.
func (p *Provider) Extract(_ context.Context, spec monitor.Spec, doc ai.Document) ([]monitor.Fact, ai.Usage, error) {
	start := p.now()
	facts := make([]monitor.Fact, 0, len(spec.Facts))
	for _, fs := range spec.Facts {
		var (
			v        float64
			evidence string
			ok       bool
		)
		if isJSON(doc) {
			v, evidence, ok = fromJSON(doc.Body, fs)
		} else {
			v, evidence, ok = fromText(doc.Body, fs)
		}
		if !ok {
			return nil, usage(start, p.now()), domain.Errorf(domain.EINVALID, "Could not find the %s in the source.", fs.Name)
		}
		f := monitor.NumberFact(fs.Name, v, fs.Unit, doc.FetchedAt)
		f.Evidence = evidence
		facts = append(facts, f)
	}
	return facts, usage(start, p.now()), nil
}

func isJSON(doc ai.Document) bool {
	if strings.HasSuffix(doc.ContentType, "json") {
		return true
	}
	b := bytes.TrimSpace(doc.Body)
	return len(b) > 0 && (b[0] == '{' || b[0] == '[') && json.Valid(b)
}

func fromJSON(body []byte, fs monitor.FactSpec) (float64, string, bool) {
	var root any
	if err := json.Unmarshal(body, &root); err != nil {
		return 0, "", false
	}
	if strings.HasPrefix(fs.Selector, "/") {
		v, ok := pointer(root, fs.Selector)
		n, isNum := number(v)
		return n, fs.Selector, ok && isNum
	}
	return find(root, strings.ToLower(fs.Name), "")
}

// pointer resolves an RFC 6901 JSON pointer.
func pointer(v any, ptr string) (any, bool) {
	for _, tok := range strings.Split(ptr, "/")[1:] {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch node := v.(type) {
		case map[string]any:
			next, ok := node[tok]
			if !ok {
				return nil, false
			}
			v = next
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(node) {
				return nil, false
			}
			v = node[i]
		default:
			return nil, false
		}
	}
	return v, true
}

// find returns the first numeric field named key, depth first, and its pointer.
func find(v any, key, path string) (float64, string, bool) {
	switch node := v.(type) {
	case map[string]any:
		for k, child := range node {
			if strings.ToLower(k) == key {
				if n, ok := number(child); ok {
					return n, path + "/" + k, true
				}
			}
		}
		for k, child := range node {
			if n, p, ok := find(child, key, path+"/"+k); ok {
				return n, p, true
			}
		}
	case []any:
		for i, child := range node {
			if n, p, ok := find(child, key, path+"/"+strconv.Itoa(i)); ok {
				return n, p, true
			}
		}
	}
	return 0, "", false
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case string:
		m := numberRe.FindString(n)
		if m == "" {
			return 0, false
		}
		f, err := parseNumber(m, "")
		return f, err == nil
	}
	return 0, false
}

// fromText finds the first number after the fact's keyword in the visible text.
func fromText(body []byte, fs monitor.FactSpec) (float64, string, bool) {
	text := spaceRe.ReplaceAllString(html.UnescapeString(tagRe.ReplaceAllString(string(body), " ")), " ")
	keyword := strings.ToLower(fs.Name)
	if fs.Selector != "" && !strings.HasPrefix(fs.Selector, "/") {
		keyword = strings.ToLower(fs.Selector)
	}
	lower := strings.ToLower(text)
	for from := 0; ; {
		i := strings.Index(lower[from:], keyword)
		if i < 0 {
			return 0, "", false
		}
		i += from
		window := text[i:min(len(text), i+len(keyword)+80)]
		if loc := numberRe.FindStringIndex(window[len(keyword):]); loc != nil {
			raw := window[len(keyword)+loc[0] : len(keyword)+loc[1]]
			if v, err := parseNumber(raw, ""); err == nil {
				return v, strings.TrimSpace(window[:len(keyword)+loc[1]]), true
			}
		}
		from = i + len(keyword)
	}
}

// Evaluate implements ai.Provider: it applies the spec's condition to the facts.
func (p *Provider) Evaluate(_ context.Context, spec monitor.Spec, facts []monitor.Fact, _ ai.Document) (monitor.Verdict, ai.Usage, error) {
	start := p.now()
	m := conditionRe.FindStringSubmatch(spec.Condition)
	if m == nil {
		return monitor.Verdict{}, usage(start, p.now()), domain.Errorf(domain.EINVALID, "The rule-based provider cannot evaluate the condition %q.", spec.Condition)
	}
	threshold, _ := strconv.ParseFloat(m[3], 64)
	for _, f := range facts {
		if f.Key != m[1] || f.Number == nil {
			continue
		}
		v := *f.Number
		var holds bool
		switch m[2] {
		case "<":
			holds = v < threshold
		case "<=":
			holds = v <= threshold
		case ">":
			holds = v > threshold
		case ">=":
			holds = v >= threshold
		case "==":
			holds = v == threshold
		case "!=":
			holds = v != threshold
		}
		state, verb := monitor.StateInactive, "does not hold"
		if holds {
			state, verb = monitor.StateActive, "holds"
		}
		explanation := fmt.Sprintf("The %s is %s, so %q %s.", f.Key, strconv.FormatFloat(v, 'f', -1, 64), spec.Condition, verb)
		return monitor.Verdict{State: state, Confidence: 1, Explanation: explanation}, usage(start, p.now()), nil
	}
	return monitor.Verdict{State: monitor.StateUnknown, Explanation: fmt.Sprintf("No %s was extracted, so the condition cannot be judged.", m[1])}, usage(start, p.now()), nil
}

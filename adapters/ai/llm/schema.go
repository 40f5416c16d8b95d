package llm

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/monitor"
)

// Answer names, one per operation: the tool the model is forced to call, or the name of the
// response schema.
const (
	RecordSpec    = "record_spec"
	RecordFacts   = "record_facts"
	RecordVerdict = "record_verdict"
)

// The schemas list every property as required and allow null for optional values, the
// form OpenAI's strict structured outputs demand too, so both providers describe the same
// answer the same way. Ranges and patterns are in descriptions and checked by Validate.

func nullable(typ, description string) map[string]any {
	return map[string]any{"type": []string{typ, "null"}, "description": description}
}

func typed(typ, description string) map[string]any {
	return map[string]any{"type": typ, "description": description}
}

func enum(description string, values ...string) map[string]any {
	return map[string]any{"type": "string", "enum": values, "description": description}
}

// object returns a closed object schema requiring all of props.
func object(props map[string]any) map[string]any {
	required := make([]string, 0, len(props))
	for k := range props {
		required = append(required, k)
	}
	sort.Strings(required)
	return map[string]any{"type": "object", "properties": props, "required": required, "additionalProperties": false}
}

// SpecSchema is the JSON schema of a classification answer (record_spec).
func SpecSchema() map[string]any {
	fact := object(map[string]any{
		"name":        typed("string", "Lowercase snake_case identifier matching ^[a-z][a-z0-9_]{0,62}$, unique in the spec."),
		"type":        enum("The value's type.", "number", "text", "boolean"),
		"unit":        nullable("string", "Unit of the value, such as USD, %, items; null when none."),
		"description": typed("string", "What to read from the source."),
		"selector":    nullable("string", "JSON pointer, CSS selector or keyword locating the value; null when unknown."),
	})
	change := object(map[string]any{
		"fact":      typed("string", "Name of the fact whose history is compared."),
		"measure":   enum("any: any change; absolute: threshold in the fact's unit; percent: threshold in percent.", "any", "absolute", "percent"),
		"operator":  enum("Direction of the change that alerts.", "increases", "decreases", "changes"),
		"threshold": typed("number", "Non-negative size of the change that alerts; 0 for measure any."),
		"window":    nullable("string", "Comparison window as a Go duration (30m, 24h, 168h); null to compare with the previous run."),
	})
	return object(map[string]any{
		"rejection":          nullable("string", "Null, unless the request cannot be monitored: then one or two sentences saying why and how to rephrase it."),
		"kind":               enum("current_state: a condition on the latest facts; historical_change: a change of a fact over time, compared by Vigil.", "current_state", "historical_change"),
		"summary":            typed("string", "One short sentence describing the monitor."),
		"facts":              map[string]any{"type": "array", "items": fact, "description": "The facts to extract on every run, 1 to 5."},
		"condition":          nullable("string", "current_state only: CEL expression over fact names that is true when the user should be alerted, e.g. price < 80.0; otherwise null."),
		"change":             map[string]any{"anyOf": []any{change, map[string]any{"type": "null"}}, "description": "historical_change only: the change rule; otherwise null."},
		"needs_source":       typed("boolean", "True when the facts must be read from a specific page or API."),
		"suggested_interval": nullable("string", "How often the monitor is worth checking, as a Go duration: 5m for fast markets such as crypto, 1h for shop prices and stock, 24h for slow pages; null when unsure."),
		"confidence":         typed("number", "From 0 to 1."),
		"warnings":           map[string]any{"type": "array", "items": map[string]any{"type": "string"}, "description": "Short notes for the user about assumptions; empty when none."},
	})
}

// FactsSchema is the JSON schema of an extraction answer (record_facts) for spec.
func FactsSchema(spec monitor.Spec) map[string]any {
	names := make([]string, 0, len(spec.Facts))
	for _, f := range spec.Facts {
		names = append(names, f.Name)
	}
	fact := object(map[string]any{
		"key":        enum("The fact's name in the spec.", names...),
		"number":     nullable("number", "The value of a number fact; otherwise null."),
		"text":       nullable("string", "The value of a text fact; otherwise null."),
		"bool":       nullable("boolean", "The value of a boolean fact; otherwise null."),
		"unit":       nullable("string", "The value's unit as found; null when none."),
		"evidence":   typed("string", "Verbatim passage of the document showing the value; empty when not found."),
		"confidence": typed("number", "From 0 to 1; 0 when not found."),
	})
	return object(map[string]any{
		"facts": map[string]any{"type": "array", "items": fact, "description": "One entry per fact of the spec."},
	})
}

// VerdictSchema is the JSON schema of an evaluation answer (record_verdict).
func VerdictSchema() map[string]any {
	return object(map[string]any{
		"state":       enum("active: the condition holds; inactive: it does not; unknown: the facts cannot decide.", "active", "inactive", "unknown"),
		"confidence":  typed("number", "From 0 to 1."),
		"explanation": typed("string", "One or two plain sentences quoting the deciding values."),
	})
}

// maxRejectionLen caps a model-written rejection shown to users.
const maxRejectionLen = 500

// The decode functions return a *domain.Error for a definite answer that is not a result
// (the model rejected the prompt, a fact is not in the document) and any other error for
// an answer Vigil cannot use.

// DecodeSpec reads a record_spec answer.
func DecodeSpec(raw []byte) (monitor.Spec, error) {
	var answer struct {
		monitor.Spec
		Rejection *string `json:"rejection"`
	}
	if err := json.Unmarshal(raw, &answer); err != nil {
		return monitor.Spec{}, fmt.Errorf("decode spec: %w", err)
	}
	if answer.Rejection != nil && strings.TrimSpace(*answer.Rejection) != "" {
		reason := strings.TrimSpace(*answer.Rejection)
		if r := []rune(reason); len(r) > maxRejectionLen {
			reason = string(r[:maxRejectionLen]) + "…"
		}
		return monitor.Spec{}, &domain.Error{Code: domain.EINVALID, Message: reason, Fields: map[string]string{"prompt": reason}}
	}
	spec := answer.Spec
	if spec.Kind != monitor.KindHistoricalChange {
		spec.Change = nil
	}
	if err := spec.Validate(); err != nil {
		return monitor.Spec{}, flatten("invalid spec", err)
	}
	return spec, nil
}

// DecodeFacts reads a record_facts answer for spec. Facts the model could not find (no
// value) make an EINVALID *domain.Error, as for the rule-based provider.
func DecodeFacts(raw []byte, spec monitor.Spec, observedAt time.Time) ([]monitor.Fact, error) {
	var answer struct {
		Facts []monitor.Fact `json:"facts"`
	}
	if err := json.Unmarshal(raw, &answer); err != nil {
		return nil, fmt.Errorf("decode facts: %w", err)
	}
	units := make(map[string]string, len(spec.Facts))
	for _, f := range spec.Facts {
		units[f.Name] = f.Unit
	}
	facts := make([]monitor.Fact, 0, len(answer.Facts))
	found := make(map[string]bool, len(answer.Facts))
	for _, f := range answer.Facts {
		if f.Number == nil && f.Text == nil && f.Bool == nil {
			continue // not in the document
		}
		if f.Unit == "" {
			f.Unit = units[f.Key]
		}
		f.ObservedAt = observedAt
		facts = append(facts, f)
		found[f.Key] = true
	}
	if err := spec.ValidateFacts(facts); err != nil {
		return nil, flatten("invalid facts", err)
	}
	var missing []string
	for _, f := range spec.Facts {
		if !found[f.Name] {
			missing = append(missing, f.Name)
		}
	}
	if len(missing) > 0 {
		return nil, &domain.Error{Code: domain.EINVALID,
			Message: fmt.Sprintf("Could not find the %s in the source.", strings.Join(missing, ", ")),
			Fields:  map[string]string{"facts": "not found: " + strings.Join(missing, ", "), "fact": missing[0]}}
	}
	return facts, nil
}

// DecodeVerdict reads a record_verdict answer.
func DecodeVerdict(raw []byte) (monitor.Verdict, error) {
	var v monitor.Verdict
	if err := json.Unmarshal(raw, &v); err != nil {
		return monitor.Verdict{}, fmt.Errorf("decode verdict: %w", err)
	}
	v.Explanation = strings.TrimSpace(v.Explanation)
	if err := v.Validate(); err != nil {
		return monitor.Verdict{}, flatten("invalid verdict", err)
	}
	return v, nil
}

// flatten turns a validation error into a plain error listing its fields, so that a
// provider error wrapping it is not mistaken for the user's EINVALID input.
func flatten(what string, err error) error {
	de, ok := err.(*domain.Error)
	if !ok || len(de.Fields) == 0 {
		return fmt.Errorf("%s: %s", what, err.Error())
	}
	keys := make([]string, 0, len(de.Fields))
	for k := range de.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + " " + de.Fields[k]
	}
	return fmt.Errorf("%s: %s", what, strings.Join(parts, "; "))
}

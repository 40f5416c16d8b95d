package monitor

import (
	"strconv"
	"time"
)

// FactType is the type of a fact's value.
type FactType string

// Fact types.
const (
	FactNumber  FactType = "number"
	FactText    FactType = "text"
	FactBoolean FactType = "boolean"
)

// Spec is the classification of a prompt: what to extract and how to judge it.
type Spec struct {
	Kind        Kind        `json:"kind"`
	Summary     string      `json:"summary"`
	Facts       []FactSpec  `json:"facts"`
	Condition   string      `json:"condition,omitempty"` // for current_state: an expression over facts
	Change      *ChangeRule `json:"change,omitempty"`    // for historical_change
	NeedsSource bool        `json:"needs_source"`
	// SuggestedInterval is how often the monitor is worth checking, as a Go duration ("1h");
	// the default interval when the user gives none.
	SuggestedInterval string   `json:"suggested_interval,omitempty"`
	Confidence        float64  `json:"confidence"`
	Warnings          []string `json:"warnings,omitempty"`
}

// FactSpec names one fact to extract from the source.
type FactSpec struct {
	Name        string   `json:"name"`
	Type        FactType `json:"type"`
	Unit        string   `json:"unit,omitempty"`
	Description string   `json:"description,omitempty"`
	Selector    string   `json:"selector,omitempty"` // CSS, XPath, JSON pointer or path, "text:", "re:" or a keyword
	// SelectorBy is SelectorByUser when the user gave the selector, SelectorByRepair when
	// Vigil put a verified repair in its place, "" when the classification gave it.
	SelectorBy string `json:"selector_by,omitempty"`
}

// ChangeRule describes a historical_change monitor: the system compares stored facts.
type ChangeRule struct {
	Fact      string  `json:"fact"`
	Measure   string  `json:"measure"`  // any | absolute | percent
	Operator  string  `json:"operator"` // increases | decreases | changes
	Threshold float64 `json:"threshold"`
	Window    string  `json:"window,omitempty"` // Go duration, e.g. 24h
	// Baseline says how Window is read: "within" (default: a move at any point inside the
	// window counts) or "since" (compare with the value one window ago).
	Baseline string `json:"baseline,omitempty"`
}

// Fact is one extracted, typed value. Exactly one of Number, Text and Bool is set.
type Fact struct {
	Key      string   `json:"key"`
	Number   *float64 `json:"number,omitempty"`
	Text     *string  `json:"text,omitempty"`
	Bool     *bool    `json:"bool,omitempty"`
	Unit     string   `json:"unit,omitempty"`
	Evidence string   `json:"evidence,omitempty"`
	// Locator is where in the source the value was found (a CSS path, a JSON pointer, a
	// JSON-LD path), for a user to check it or to use it as a selector.
	Locator    string    `json:"locator,omitempty"`
	Confidence float64   `json:"confidence"`
	ObservedAt time.Time `json:"observed_at"`
}

// Value is the fact's value as a float64, string or bool; nil when it has none.
func (f Fact) Value() any {
	switch {
	case f.Number != nil:
		return *f.Number
	case f.Text != nil:
		return *f.Text
	case f.Bool != nil:
		return *f.Bool
	}
	return nil
}

// NumberFact returns a numeric fact.
func NumberFact(key string, v float64, unit string, observedAt time.Time) Fact {
	return Fact{Key: key, Number: &v, Unit: unit, Confidence: 1, ObservedAt: observedAt}
}

// Verdict is the judgement of a current_state monitor.
type Verdict struct {
	State       State   `json:"state"`
	Confidence  float64 `json:"confidence"`
	Explanation string  `json:"explanation"`
}

// ValueText returns the fact's value as text, without its unit: numbers in their shortest
// exact form, booleans as true or false; "" when no value is set.
func (f Fact) ValueText() string {
	switch {
	case f.Number != nil:
		return strconv.FormatFloat(*f.Number, 'f', -1, 64)
	case f.Text != nil:
		return *f.Text
	case f.Bool != nil:
		return strconv.FormatBool(*f.Bool)
	}
	return ""
}

// EvidenceMaxRunes caps the evidence a stored fact keeps: enough to show where the value
// was read, not a copy of the page.
const EvidenceMaxRunes = 300

// CapEvidence returns evidence cut to EvidenceMaxRunes, marked with an ellipsis when cut.
func CapEvidence(evidence string) string {
	if r := []rune(evidence); len(r) > EvidenceMaxRunes {
		return string(r[:EvidenceMaxRunes-1]) + "…"
	}
	return evidence
}

package monitor

import (
	"fmt"
	"time"

	"github.com/vigilhq/vigil/domain"
)

// factNameMaxLen is the longest fact name. Fact names are identifiers in conditions and keys
// in storage, so they are lowercase snake_case: ^[a-z][a-z0-9_]{0,62}$.
const factNameMaxLen = 63

// Validate checks a Spec's shape, whoever produced it (an AI provider, the rule-based
// provider or storage). It returns an EINVALID *domain.Error whose Fields name every problem,
// keyed like "facts[1].name" or "change.window". It does not parse the condition: that is the
// job of whatever evaluates it.
func (s Spec) Validate() error {
	fields := map[string]string{}
	if s.Kind != KindCurrentState && s.Kind != KindHistoricalChange {
		fields["kind"] = fmt.Sprintf("must be %s or %s", KindCurrentState, KindHistoricalChange)
	}
	if len(s.Facts) == 0 {
		fields["facts"] = "must name at least one fact"
	}
	names := make(map[string]FactType, len(s.Facts))
	for i, f := range s.Facts {
		key := fmt.Sprintf("facts[%d]", i)
		switch _, dup := names[f.Name]; {
		case !validFactName(f.Name):
			fields[key+".name"] = "must be lowercase snake_case starting with a letter, at most 63 characters"
		case dup:
			fields[key+".name"] = fmt.Sprintf("duplicates the fact %q", f.Name)
		}
		if !validFactType(f.Type) {
			fields[key+".type"] = "must be number, text or boolean"
		}
		names[f.Name] = f.Type
	}
	switch s.Kind {
	case KindCurrentState:
		if s.Condition == "" {
			fields["condition"] = "is required for a current_state monitor"
		}
	case KindHistoricalChange:
		validateChange(s.Change, names, fields)
	}
	if s.SuggestedInterval != "" {
		if d, err := time.ParseDuration(s.SuggestedInterval); err != nil || d <= 0 || d > MaxInterval {
			fields["suggested_interval"] = "must be a positive Go duration of at most 30 days, such as 15m or 1h"
		}
	}
	if !(s.Confidence >= 0 && s.Confidence <= 1) { // also rejects NaN
		fields["confidence"] = "must be between 0 and 1"
	}
	if len(fields) > 0 {
		return &domain.Error{Code: domain.EINVALID, Message: "The monitor spec is invalid.", Fields: fields}
	}
	return nil
}

func validateChange(c *ChangeRule, facts map[string]FactType, fields map[string]string) {
	if c == nil {
		fields["change"] = "is required for a historical_change monitor"
		return
	}
	if _, ok := facts[c.Fact]; !ok {
		fields["change.fact"] = "must be one of the spec's facts"
	}
	switch c.Measure {
	case "any", "absolute", "percent":
	default:
		fields["change.measure"] = "must be any, absolute or percent"
	}
	switch c.Operator {
	case "increases", "decreases", "changes":
	default:
		fields["change.operator"] = "must be increases, decreases or changes"
	}
	if c.Window != "" {
		if d, err := time.ParseDuration(c.Window); err != nil || d <= 0 {
			fields["change.window"] = "must be a positive duration such as 30m or 24h"
		}
	}
}

// validFactName reports whether name matches ^[a-z][a-z0-9_]{0,62}$.
func validFactName(name string) bool {
	if name == "" || len(name) > factNameMaxLen || name[0] < 'a' || name[0] > 'z' {
		return false
	}
	for i := 1; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func validFactType(t FactType) bool {
	return t == FactNumber || t == FactText || t == FactBoolean
}

// ValidateFacts checks facts extracted for s: every key names one of s's facts, no key
// appears twice, each fact carries exactly one value and it has the declared type, and
// confidence is between 0 and 1. Facts may be missing: deciding what a missing fact means is
// the caller's job. It returns an EINVALID *domain.Error whose Fields name every problem.
func (s Spec) ValidateFacts(facts []Fact) error {
	types := make(map[string]FactType, len(s.Facts))
	for _, f := range s.Facts {
		types[f.Name] = f.Type
	}
	fields := map[string]string{}
	seen := make(map[string]bool, len(facts))
	for i, f := range facts {
		key := fmt.Sprintf("facts[%d]", i)
		want, ok := types[f.Key]
		switch {
		case !ok:
			fields[key+".key"] = fmt.Sprintf("%q is not a fact of the spec", f.Key)
		case seen[f.Key]:
			fields[key+".key"] = fmt.Sprintf("%q appears more than once", f.Key)
		}
		seen[f.Key] = true
		switch got, n := f.valueType(); {
		case n != 1:
			fields[key+".value"] = fmt.Sprintf("must have exactly one value, has %d", n)
		case ok && got != want:
			fields[key+".value"] = fmt.Sprintf("must be a %s, is a %s", want, got)
		}
		if !(f.Confidence >= 0 && f.Confidence <= 1) {
			fields[key+".confidence"] = "must be between 0 and 1"
		}
	}
	if len(fields) > 0 {
		return &domain.Error{Code: domain.EINVALID, Message: "The extracted facts are invalid.", Fields: fields}
	}
	return nil
}

// valueType returns the type of the value f carries and how many values are set.
func (f Fact) valueType() (FactType, int) {
	var (
		t FactType
		n int
	)
	if f.Number != nil {
		t, n = FactNumber, n+1
	}
	if f.Text != nil {
		t, n = FactText, n+1
	}
	if f.Bool != nil {
		t, n = FactBoolean, n+1
	}
	return t, n
}

// Validate checks a verdict: a known state, a confidence between 0 and 1 and an explanation.
// It returns an EINVALID *domain.Error whose Fields name every problem.
func (v Verdict) Validate() error {
	fields := map[string]string{}
	switch v.State {
	case StateActive, StateInactive, StateUnknown:
	default:
		fields["state"] = "must be active, inactive or unknown"
	}
	if !(v.Confidence >= 0 && v.Confidence <= 1) {
		fields["confidence"] = "must be between 0 and 1"
	}
	if v.Explanation == "" {
		fields["explanation"] = "is required"
	}
	if len(fields) > 0 {
		return &domain.Error{Code: domain.EINVALID, Message: "The verdict is invalid.", Fields: fields}
	}
	return nil
}

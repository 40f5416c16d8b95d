package monitor_test

import (
	"errors"
	"math"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/monitor"
)

func validCurrent() monitor.Spec {
	return monitor.Spec{
		Kind:       monitor.KindCurrentState,
		Summary:    "Price drops below $80",
		Facts:      []monitor.FactSpec{{Name: "price", Type: monitor.FactNumber, Unit: "USD"}},
		Condition:  "price < 80.0",
		Confidence: 0.9,
	}
}

func validHistorical() monitor.Spec {
	return monitor.Spec{
		Kind:       monitor.KindHistoricalChange,
		Facts:      []monitor.FactSpec{{Name: "price", Type: monitor.FactNumber}},
		Change:     &monitor.ChangeRule{Fact: "price", Measure: "percent", Operator: "increases", Threshold: 5, Window: "24h"},
		Confidence: 1,
	}
}

// fieldKeys returns the sorted Fields keys of an EINVALID error, failing on any other error.
func fieldKeys(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var de *domain.Error
	require.True(t, errors.As(err, &de), "want *domain.Error, got %T", err)
	require.Equal(t, domain.EINVALID, de.Code)
	require.NotEmpty(t, de.Message)
	keys := make([]string, 0, len(de.Fields))
	for k, v := range de.Fields {
		require.NotEmpty(t, v, "field %s has no message", k)
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func TestSpecValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		edit   func(*monitor.Spec)
		base   func() monitor.Spec
		fields []string
	}{
		{"valid current_state", func(*monitor.Spec) {}, validCurrent, nil},
		{"valid historical_change", func(*monitor.Spec) {}, validHistorical, nil},
		{"historical without window", func(s *monitor.Spec) { s.Change.Window = "" }, validHistorical, nil},
		{"all fact types", func(s *monitor.Spec) {
			s.Facts = append(s.Facts, monitor.FactSpec{Name: "status", Type: monitor.FactText}, monitor.FactSpec{Name: "in_stock2", Type: monitor.FactBoolean})
		}, validCurrent, nil},
		{"longest name", func(s *monitor.Spec) { s.Facts[0].Name = "p" + strings.Repeat("x", 62) }, validCurrent, nil},
		{"unknown kind", func(s *monitor.Spec) { s.Kind = "future" }, validCurrent, []string{"kind"}},
		{"empty kind", func(s *monitor.Spec) { s.Kind = "" }, validCurrent, []string{"kind"}},
		{"no facts", func(s *monitor.Spec) { s.Facts = nil }, validCurrent, []string{"facts"}},
		{"name too long", func(s *monitor.Spec) { s.Facts[0].Name = "p" + strings.Repeat("x", 63) }, validCurrent, []string{"facts[0].name"}},
		{"name uppercase", func(s *monitor.Spec) { s.Facts[0].Name = "Price" }, validCurrent, []string{"facts[0].name"}},
		{"name starts with digit", func(s *monitor.Spec) { s.Facts[0].Name = "1price" }, validCurrent, []string{"facts[0].name"}},
		{"name starts with underscore", func(s *monitor.Spec) { s.Facts[0].Name = "_price" }, validCurrent, []string{"facts[0].name"}},
		{"name with dash", func(s *monitor.Spec) { s.Facts[0].Name = "unit-price" }, validCurrent, []string{"facts[0].name"}},
		{"name empty", func(s *monitor.Spec) { s.Facts[0].Name = "" }, validCurrent, []string{"facts[0].name"}},
		{"duplicate name", func(s *monitor.Spec) {
			s.Facts = append(s.Facts, monitor.FactSpec{Name: "price", Type: monitor.FactText})
		}, validCurrent, []string{"facts[1].name"}},
		{"bad type", func(s *monitor.Spec) { s.Facts[0].Type = "integer" }, validCurrent, []string{"facts[0].type"}},
		{"current_state without condition", func(s *monitor.Spec) { s.Condition = "" }, validCurrent, []string{"condition"}},
		{"historical without change", func(s *monitor.Spec) { s.Change = nil }, validHistorical, []string{"change"}},
		{"change on unknown fact", func(s *monitor.Spec) { s.Change.Fact = "cost" }, validHistorical, []string{"change.fact"}},
		{"bad measure", func(s *monitor.Spec) { s.Change.Measure = "relative" }, validHistorical, []string{"change.measure"}},
		{"bad operator", func(s *monitor.Spec) { s.Change.Operator = "rises" }, validHistorical, []string{"change.operator"}},
		{"window not a duration", func(s *monitor.Spec) { s.Change.Window = "1 day" }, validHistorical, []string{"change.window"}},
		{"window in days", func(s *monitor.Spec) { s.Change.Window = "1d" }, validHistorical, []string{"change.window"}},
		{"window zero", func(s *monitor.Spec) { s.Change.Window = "0s" }, validHistorical, []string{"change.window"}},
		{"window negative", func(s *monitor.Spec) { s.Change.Window = "-1h" }, validHistorical, []string{"change.window"}},
		{"confidence above 1", func(s *monitor.Spec) { s.Confidence = 1.01 }, validCurrent, []string{"confidence"}},
		{"confidence negative", func(s *monitor.Spec) { s.Confidence = -0.1 }, validCurrent, []string{"confidence"}},
		{"confidence NaN", func(s *monitor.Spec) { s.Confidence = math.NaN() }, validCurrent, []string{"confidence"}},
		{"everything wrong at once", func(s *monitor.Spec) {
			s.Facts = []monitor.FactSpec{{Name: "Bad", Type: "float"}}
			s.Change = &monitor.ChangeRule{Fact: "x", Measure: "m", Operator: "o", Window: "soon"}
			s.Confidence = 2
		}, validHistorical, []string{"change.fact", "change.measure", "change.operator", "change.window", "confidence", "facts[0].name", "facts[0].type"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := tt.base()
			tt.edit(&s)
			require.Equal(t, tt.fields, fieldKeys(t, s.Validate()))
		})
	}
}

func TestSpecValidateFacts(t *testing.T) {
	t.Parallel()
	spec := validCurrent()
	spec.Facts = append(spec.Facts, monitor.FactSpec{Name: "status", Type: monitor.FactText}, monitor.FactSpec{Name: "in_stock", Type: monitor.FactBoolean})
	num, text, yes := 64.5, "shipped", true
	price := monitor.Fact{Key: "price", Number: &num, Confidence: 1}
	status := monitor.Fact{Key: "status", Text: &text, Confidence: 0.5}
	inStock := monitor.Fact{Key: "in_stock", Bool: &yes}
	tests := []struct {
		name   string
		facts  []monitor.Fact
		fields []string
	}{
		{"all facts", []monitor.Fact{price, status, inStock}, nil},
		{"some facts missing is allowed", []monitor.Fact{status}, nil},
		{"none", nil, nil},
		{"unknown key", []monitor.Fact{{Key: "cost", Number: &num}}, []string{"facts[0].key"}},
		{"duplicate key", []monitor.Fact{price, price}, []string{"facts[1].key"}},
		{"no value", []monitor.Fact{{Key: "price"}}, []string{"facts[0].value"}},
		{"two values", []monitor.Fact{{Key: "price", Number: &num, Text: &text}}, []string{"facts[0].value"}},
		{"wrong type", []monitor.Fact{{Key: "price", Text: &text}}, []string{"facts[0].value"}},
		{"bad confidence", []monitor.Fact{{Key: "in_stock", Bool: &yes, Confidence: 1.5}}, []string{"facts[0].confidence"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.fields, fieldKeys(t, spec.ValidateFacts(tt.facts)))
		})
	}
}

func TestVerdictValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		v      monitor.Verdict
		fields []string
	}{
		{"active", monitor.Verdict{State: monitor.StateActive, Confidence: 1, Explanation: "The price is 64.5."}, nil},
		{"unknown", monitor.Verdict{State: monitor.StateUnknown, Explanation: "No price was found."}, nil},
		{"bad state", monitor.Verdict{State: "true", Confidence: 1, Explanation: "x"}, []string{"state"}},
		{"bad confidence", monitor.Verdict{State: monitor.StateInactive, Confidence: -1, Explanation: "x"}, []string{"confidence"}},
		{"no explanation", monitor.Verdict{State: monitor.StateInactive}, []string{"explanation"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.fields, fieldKeys(t, tt.v.Validate()))
		})
	}
}

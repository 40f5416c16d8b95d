package fallback

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"

	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/monitor"
)

const (
	// conditionMaxLen bounds a condition's source text.
	conditionMaxLen = 1000
	// conditionCostLimit bounds a condition's evaluation cost in CEL cost units; the
	// conditions the grammar writes cost a handful.
	conditionCostLimit = 10_000
	// historicalExplanation is the verdict for historical_change specs.
	historicalExplanation = "historical comparison is done by Vigil from stored facts"
)

// evaluate judges a spec's condition against facts.
func (p *Provider) evaluate(spec monitor.Spec, facts []monitor.Fact) (monitor.Verdict, error) {
	if spec.Kind == monitor.KindHistoricalChange {
		return monitor.Verdict{State: monitor.StateUnknown, Explanation: historicalExplanation}, nil
	}
	prg, err := p.program(spec)
	if err != nil {
		return monitor.Verdict{}, err
	}
	vars, missing, confidence := activation(spec, facts)
	if len(missing) > 0 {
		return monitor.Verdict{State: monitor.StateUnknown,
			Explanation: fmt.Sprintf("No %s was extracted, so the condition %q cannot be judged.", strings.Join(missing, " or "), spec.Condition)}, nil
	}
	out, _, err := prg.Eval(vars)
	if err != nil {
		return monitor.Verdict{}, &domain.Error{Code: domain.EINVALID,
			Message: fmt.Sprintf("The condition %q could not be evaluated.", spec.Condition),
			Fields:  map[string]string{"condition": err.Error()}, Err: fmt.Errorf("evaluate condition: %w", err)}
	}
	holds, ok := out.Value().(bool)
	if !ok {
		return monitor.Verdict{}, domain.Errorf(domain.EINVALID, "The condition %q did not give true or false.", spec.Condition)
	}
	state, verb := monitor.StateInactive, "does not hold"
	if holds {
		state, verb = monitor.StateActive, "holds"
	}
	return monitor.Verdict{State: state, Confidence: confidence,
		Explanation: fmt.Sprintf("%s, so %q %s.", describe(spec, vars), spec.Condition, verb)}, nil
}

// program compiles the spec's condition once per condition and fact types.
func (p *Provider) program(spec monitor.Spec) (cel.Program, error) {
	if strings.TrimSpace(spec.Condition) == "" {
		return nil, &domain.Error{Code: domain.EINVALID, Message: "The monitor has no condition to evaluate.", Fields: map[string]string{"condition": "is required"}}
	}
	if len(spec.Condition) > conditionMaxLen {
		return nil, &domain.Error{Code: domain.EINVALID, Message: fmt.Sprintf("The condition is longer than %d characters.", conditionMaxLen), Fields: map[string]string{"condition": "too long"}}
	}
	decls := make([]string, 0, len(spec.Facts))
	for _, f := range spec.Facts {
		decls = append(decls, f.Name+":"+string(f.Type))
	}
	sort.Strings(decls)
	key := spec.Condition + "\x00" + strings.Join(decls, ",")
	p.mu.Lock()
	prg, ok := p.programs[key]
	p.mu.Unlock()
	if ok {
		return prg, nil
	}
	prg, err := compile(spec)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	if len(p.programs) >= programCacheMax {
		clear(p.programs)
	}
	p.programs[key] = prg
	p.mu.Unlock()
	return prg, nil
}

// compile type-checks the condition with each fact declared as a variable of its type.
func compile(spec monitor.Spec) (cel.Program, error) {
	opts := []cel.EnvOption{cel.CrossTypeNumericComparisons(true), cel.ParserExpressionSizeLimit(conditionMaxLen)}
	for _, f := range spec.Facts {
		opts = append(opts, cel.Variable(f.Name, celType(f.Type)))
	}
	invalid := func(reason string, err error) error {
		return &domain.Error{Code: domain.EINVALID, Message: fmt.Sprintf("The condition %q is not valid: %s.", spec.Condition, reason),
			Fields: map[string]string{"condition": reason}, Err: err}
	}
	env, err := cel.NewEnv(opts...)
	if err != nil {
		return nil, invalid("the facts cannot be declared", fmt.Errorf("cel environment: %w", err))
	}
	ast, iss := env.Compile(spec.Condition)
	if iss != nil && iss.Err() != nil {
		return nil, invalid(firstLine(iss.Err().Error()), fmt.Errorf("compile condition: %w", iss.Err()))
	}
	if !ast.OutputType().IsExactType(types.BoolType) {
		return nil, invalid("it gives "+ast.OutputType().String()+", not true or false", errors.New("condition is not boolean"))
	}
	prg, err := env.Program(ast, cel.CostLimit(conditionCostLimit), cel.InterruptCheckFrequency(100))
	if err != nil {
		return nil, invalid("it cannot be planned", fmt.Errorf("plan condition: %w", err))
	}
	return prg, nil
}

func celType(t monitor.FactType) *cel.Type {
	switch t {
	case monitor.FactText:
		return cel.StringType
	case monitor.FactBoolean:
		return cel.BoolType
	}
	return cel.DoubleType
}

// activation binds each spec fact to its extracted value. A fact that is absent, or whose
// value has another type than declared, is missing. The verdict's confidence is the
// lowest of the facts'.
func activation(spec monitor.Spec, facts []monitor.Fact) (map[string]any, []string, float64) {
	byKey := make(map[string]monitor.Fact, len(facts))
	for _, f := range facts {
		if _, dup := byKey[f.Key]; !dup {
			byKey[f.Key] = f
		}
	}
	vars := make(map[string]any, len(spec.Facts))
	var missing []string
	confidence := 1.0
	for _, fs := range spec.Facts {
		f, ok := byKey[fs.Name]
		var v any
		switch {
		case !ok:
		case fs.Type == monitor.FactText && f.Text != nil:
			v = *f.Text
		case fs.Type == monitor.FactBoolean && f.Bool != nil:
			v = *f.Bool
		case fs.Type == monitor.FactNumber && f.Number != nil:
			v = *f.Number
		}
		if v == nil {
			missing = append(missing, fs.Name)
			continue
		}
		vars[fs.Name] = v
		if f.Confidence >= 0 && f.Confidence < confidence {
			confidence = f.Confidence
		}
	}
	return vars, missing, confidence
}

// describe names the values: "The price is 64.99 USD".
func describe(spec monitor.Spec, vars map[string]any) string {
	parts := make([]string, 0, len(spec.Facts))
	for _, fs := range spec.Facts {
		var s string
		switch v := vars[fs.Name].(type) {
		case float64:
			s = formatNumber(v)
			if fs.Unit != "" {
				if fs.Unit == "%" || strings.HasPrefix(fs.Unit, "°") {
					s += fs.Unit
				} else {
					s += " " + fs.Unit
				}
			}
		case bool:
			if phrase, ok := strings.CutPrefix(fs.Selector, selectorText); ok {
				parts = append(parts, map[bool]string{true: "the page contains ", false: "the page does not contain "}[v]+strconv.Quote(phrase))
				continue
			}
			if fs.Name == factInStock {
				parts = append(parts, map[bool]string{true: "the item is in stock", false: "the item is not in stock"}[v])
				continue
			}
			s = strconv.FormatBool(v)
		case string:
			s = strconv.Quote(clip(v, 80))
		}
		parts = append(parts, fmt.Sprintf("the %s is %s", strings.ReplaceAll(fs.Name, "_", " "), s))
	}
	out := strings.Join(parts, " and ")
	if out == "" {
		return "There are no facts"
	}
	return strings.ToUpper(out[:1]) + out[1:]
}

func firstLine(s string) string {
	s = strings.TrimPrefix(strings.TrimSpace(s), "ERROR: ")
	line, _, _ := strings.Cut(s, "\n")
	return strings.TrimPrefix(line, "<input>:")
}

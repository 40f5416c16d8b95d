// Package pricing turns token usage into money: a per-model table of list prices in US
// dollars per million tokens, with defaults for common hosted models and an override syntax
// for configuration. Models missing from the table cost nothing, which is right for local
// OpenAI-compatible servers (Ollama, vLLM, llama.cpp).
package pricing

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Price is a model's list price in US dollars per million tokens.
type Price struct {
	InputPerMTok  float64
	OutputPerMTok float64
}

// Table maps a model name, as the provider reports it, to its price. The nil Table is
// valid and prices every model at 0.
type Table map[string]Price

// Default returns public list prices (standard tier, no batch or cache discounts) for
// common hosted models. It returns a new table on every call, so callers may modify it.
func Default() Table {
	return Table{
		"claude-opus-4-1":   {InputPerMTok: 15, OutputPerMTok: 75},
		"claude-opus-4-0":   {InputPerMTok: 15, OutputPerMTok: 75},
		"claude-sonnet-4-5": {InputPerMTok: 3, OutputPerMTok: 15},
		"claude-sonnet-4-0": {InputPerMTok: 3, OutputPerMTok: 15},
		"claude-haiku-4-5":  {InputPerMTok: 1, OutputPerMTok: 5},
		"claude-3-5-haiku":  {InputPerMTok: 0.8, OutputPerMTok: 4},
		"gpt-4o":            {InputPerMTok: 2.5, OutputPerMTok: 10},
		"gpt-4o-mini":       {InputPerMTok: 0.15, OutputPerMTok: 0.6},
		"gpt-4.1":           {InputPerMTok: 2, OutputPerMTok: 8},
		"gpt-4.1-mini":      {InputPerMTok: 0.4, OutputPerMTok: 1.6},
		"gpt-4.1-nano":      {InputPerMTok: 0.1, OutputPerMTok: 0.4},
	}
}

// Parse reads a price table from configuration: comma-separated "model=input/output"
// entries, prices in US dollars per million tokens, e.g.
// "gpt-4o=2.5/10,my-finetune=3/12". An empty spec is an empty table. It reports every bad
// entry in one error.
func Parse(spec string) (Table, error) {
	t := Table{}
	var problems []string
	for i, entry := range strings.Split(spec, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		model, price, err := parseEntry(entry)
		if err == nil {
			if _, dup := t[model]; dup {
				err = fmt.Errorf("model %q is priced twice", model)
			}
		}
		if err != nil {
			problems = append(problems, fmt.Sprintf("entry %d %q: %v", i+1, entry, err))
			continue
		}
		t[model] = price
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("parse price table (want model=input/output in USD per million tokens, e.g. gpt-4o=2.5/10): %s", strings.Join(problems, "; "))
	}
	return t, nil
}

func parseEntry(entry string) (string, Price, error) {
	model, prices, ok := strings.Cut(entry, "=")
	model = strings.TrimSpace(model)
	if !ok {
		return "", Price{}, fmt.Errorf("missing \"=\"")
	}
	if model == "" {
		return "", Price{}, fmt.Errorf("missing model name")
	}
	in, out, ok := strings.Cut(prices, "/")
	if !ok {
		return "", Price{}, fmt.Errorf("missing \"/\" between input and output price")
	}
	inPrice, err := parsePrice(in)
	if err != nil {
		return "", Price{}, fmt.Errorf("input price: %w", err)
	}
	outPrice, err := parsePrice(out)
	if err != nil {
		return "", Price{}, fmt.Errorf("output price: %w", err)
	}
	return model, Price{InputPerMTok: inPrice, OutputPerMTok: outPrice}, nil
}

func parsePrice(s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%q is not a number", strings.TrimSpace(s))
	}
	if v < 0 {
		return 0, fmt.Errorf("%q is negative", strings.TrimSpace(s))
	}
	return v, nil
}

// Merge returns a new table with t's prices overridden by o's. Neither input is modified.
func (t Table) Merge(o Table) Table {
	m := make(Table, len(t)+len(o))
	for k, v := range t {
		m[k] = v
	}
	for k, v := range o {
		m[k] = v
	}
	return m
}

// Lookup returns the price of model. Providers report dated snapshots
// ("claude-sonnet-4-5-20250929", "gpt-4o-2024-08-06"), so when model itself is not in the
// table its date suffix is dropped and the alias is looked up.
func (t Table) Lookup(model string) (Price, bool) {
	if p, ok := t[model]; ok {
		return p, true
	}
	if alias, ok := trimDate(model); ok {
		p, ok := t[alias]
		return p, ok
	}
	return Price{}, false
}

// Cost returns the price in US dollars of in input and out output tokens of model; 0 for
// models the table does not know.
func (t Table) Cost(model string, in, out int) float64 {
	p, _ := t.Lookup(model)
	return (float64(in)*p.InputPerMTok + float64(out)*p.OutputPerMTok) / 1e6
}

// trimDate removes a trailing "-YYYYMMDD" or "-YYYY-MM-DD".
func trimDate(model string) (string, bool) {
	if i := len(model) - 9; i > 0 && model[i] == '-' && digits(model[i+1:]) {
		return model[:i], true
	}
	if i := len(model) - 11; i > 0 && model[i] == '-' && model[i+5] == '-' && model[i+8] == '-' &&
		digits(model[i+1:i+5]) && digits(model[i+6:i+8]) && digits(model[i+9:]) {
		return model[:i], true
	}
	return "", false
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

package fallback

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"cel.dev/cel-go/cel"

	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/ai"
	"github.com/vigilhq/vigil/domain/monitor"
)

const (
	Name  = "fallback"
	Model = "rules-v1"
)

const programCacheMax = 4096

type Provider struct {
	now func() time.Time

	mu       sync.Mutex
	programs map[string]cel.Program // compiled conditions by condition and fact types
}

var _ ai.Provider = (*Provider)(nil)

func New(now func() time.Time) *Provider {
	return &Provider{now: now, programs: make(map[string]cel.Program)}
}

var Examples = []string{
	"Tell me when the price drops below $80",
	"Alert me when the temperature is above 30",
	"Let me know when the stock count is at least 5",
	"Tell me when bitcoin rises 5% within 24 hours",
	"Tell me when the status changes",
	`Tell me when the page no longer contains "Sold out"`,
	"Tell me when it is back in stock",
}

func usage(start, end time.Time) ai.Usage {
	return ai.Usage{Provider: Name, Model: Model, Latency: end.Sub(start)}
}

func (p *Provider) Classify(_ context.Context, prompt string, _ ai.Hints) (monitor.Spec, ai.Usage, error) {
	start := p.now()
	spec, err := classify(prompt)
	if err == nil {
		spec.SuggestedInterval = suggestInterval(prompt, spec)
	}
	return spec, usage(start, p.now()), err
}

// fastMarkets are words of prompts about values that move by the minute.
var fastMarkets = []string{"btc", "bitcoin", "eth", "ethereum", "crypto", "coin", "stock price", "share price", "exchange rate"}

// suggestInterval proposes how often to check: every 5 minutes for fast markets, a
// twenty-fourth of a change rule's window (between 5 minutes and an hour), else hourly.
func suggestInterval(prompt string, spec monitor.Spec) string {
	lower := strings.ToLower(prompt)
	for _, w := range fastMarkets {
		if strings.Contains(lower, w) {
			return "5m0s"
		}
	}
	if spec.Change != nil {
		if w, err := spec.Change.WindowOf(); err == nil && w > 0 {
			return min(max(w/24, 5*time.Minute), time.Hour).String()
		}
	}
	return "1h0m0s"
}

func (p *Provider) Extract(_ context.Context, spec monitor.Spec, doc ai.Document) ([]monitor.Fact, ai.Usage, error) {
	start := p.now()
	src, err := newSource(doc)
	if err != nil {
		if domain.ErrorCode(err) == domain.EINVALID {
			return nil, usage(start, p.now()), err
		}
		return nil, usage(start, p.now()), &domain.Error{Code: domain.EINVALID, Message: "Could not read the source.", Err: err}
	}
	facts := make([]monitor.Fact, 0, len(spec.Facts))
	for _, fs := range spec.Facts {
		f, ok, err := src.extract(fs)
		if err != nil {
			return nil, usage(start, p.now()), fmt.Errorf("extract %s: %w", fs.Name, err)
		}
		if !ok {
			return nil, usage(start, p.now()), &domain.Error{Code: domain.EINVALID,
				Message: fmt.Sprintf("Could not find the %s in the source.", fs.Name),
				Fields:  map[string]string{"fact": fs.Name}}
		}
		unit := fs.Unit
		if unit == "" {
			unit = f.unit
		}
		facts = append(facts, monitor.Fact{
			Key: fs.Name, Number: f.number, Text: f.text, Bool: f.boolean, Unit: unit,
			Evidence: f.evidence, Locator: f.locator, Confidence: f.confidence, ObservedAt: doc.FetchedAt,
		})
	}
	return facts, usage(start, p.now()), nil
}

func (p *Provider) Evaluate(_ context.Context, spec monitor.Spec, facts []monitor.Fact, _ ai.Document) (monitor.Verdict, ai.Usage, error) {
	start := p.now()
	v, err := p.evaluate(spec, facts)
	return v, usage(start, p.now()), err
}

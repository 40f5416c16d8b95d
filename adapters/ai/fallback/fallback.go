package fallback

import (
	"context"
	"fmt"
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
	return spec, usage(start, p.now()), err
}

func (p *Provider) Extract(_ context.Context, spec monitor.Spec, doc ai.Document) ([]monitor.Fact, ai.Usage, error) {
	start := p.now()
	src, err := newSource(doc)
	if err != nil {
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
		facts = append(facts, monitor.Fact{
			Key: fs.Name, Number: f.number, Text: f.text, Bool: f.boolean, Unit: fs.Unit,
			Evidence: f.evidence, Confidence: f.confidence, ObservedAt: doc.FetchedAt,
		})
	}
	return facts, usage(start, p.now()), nil
}

func (p *Provider) Evaluate(_ context.Context, spec monitor.Spec, facts []monitor.Fact, _ ai.Document) (monitor.Verdict, ai.Usage, error) {
	start := p.now()
	v, err := p.evaluate(spec, facts)
	return v, usage(start, p.now()), err
}

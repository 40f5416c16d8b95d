package chain

import (
	"context"
	"fmt"

	"github.com/vigilhq/vigil/domain/ai"
	"github.com/vigilhq/vigil/domain/monitor"
)

var _ ai.SelectorSuggester = (*Chain)(nil)

// SuggestSelector implements ai.SelectorSuggester with the providers that can suggest
// selectors (the AI ones; the rules cannot), in order, with the same retries, breakers,
// budget and caching as the other calls. With none configured it returns ai.ErrNoSuggester.
func (c *Chain) SuggestSelector(ctx context.Context, req ai.SelectorRequest, doc ai.Document) (string, ai.Usage, error) {
	can := func(p ai.Provider) bool {
		_, ok := p.(ai.SelectorSuggester)
		return ok
	}
	able := false
	for _, m := range c.members {
		able = able || can(m.Provider)
	}
	if !able {
		return "", ai.Usage{}, ai.ErrNoSuggester
	}
	content := ""
	s, err1 := canonical(req.Fact)
	g, err2 := canonical(factValues([]monitor.Fact{req.LastGood}))
	if err1 == nil && err2 == nil {
		content = digest(s, "\x00", g, "\x00", req.LastGood.Locator, "\x00", documentHash(doc), "\x00", doc.Format)
	}
	sel, u, err := run(ctx, c, operation[string]{
		op:      opSuggest,
		content: content,
		cache:   c.suggested,
		clone:   func(s string) string { return s },
		can:     can,
		call: func(ctx context.Context, p ai.Provider) (string, ai.Usage, error) {
			return p.(ai.SelectorSuggester).SuggestSelector(ctx, req, doc)
		},
	})
	if err != nil {
		return "", u, fmt.Errorf("suggest a selector for %s: %w", req.Fact.Name, err)
	}
	return sel, u, nil
}

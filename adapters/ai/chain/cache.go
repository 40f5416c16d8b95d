package chain

import (
	"container/list"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/vigilhq/vigil/domain/ai"
	"github.com/vigilhq/vigil/domain/monitor"
)

// lru is a bounded, least-recently-used cache of answers. Values are stored and returned as
// is: callers clone them so no two calls share slices.
type lru[V any] struct {
	mu    sync.Mutex
	size  int
	order *list.List // front: most recently used
	items map[string]*list.Element
}

type lruEntry[V any] struct {
	key   string
	val   V
	usage ai.Usage
}

func newLRU[V any](size int) *lru[V] {
	return &lru[V]{size: size, order: list.New(), items: make(map[string]*list.Element)}
}

func (c *lru[V]) get(key string) (V, ai.Usage, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		var zero V
		return zero, ai.Usage{}, false
	}
	c.order.MoveToFront(el)
	e := el.Value.(*lruEntry[V])
	return e.val, e.usage, true
}

func (c *lru[V]) put(key string, val V, usage ai.Usage) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		el.Value = &lruEntry[V]{key: key, val: val, usage: usage}
		c.order.MoveToFront(el)
		return
	}
	c.items[key] = c.order.PushFront(&lruEntry[V]{key: key, val: val, usage: usage})
	for c.order.Len() > c.size {
		oldest := c.order.Back()
		c.order.Remove(oldest)
		delete(c.items, oldest.Value.(*lruEntry[V]).key)
	}
}

func (c *lru[V]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}

// cacheKey identifies one provider's answer to one question.
func cacheKey(provider, model, content string) string {
	return provider + "\x00" + model + "\x00" + content
}

// digest returns the hex SHA-256 of the concatenated parts.
func digest(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// canonical returns v's JSON: encoding/json writes struct fields in declaration order and map
// keys sorted, so equal values give equal text.
func canonical(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("canonical json: %w", err)
	}
	return string(b), nil
}

// documentHash returns doc.Hash, or computes it when the fetcher left it empty.
func documentHash(doc ai.Document) string {
	if doc.Hash != "" {
		return doc.Hash
	}
	sum := sha256.Sum256(doc.Body)
	return hex.EncodeToString(sum[:])
}

// factValues returns facts without their observation times, which do not change a verdict.
func factValues(facts []monitor.Fact) []monitor.Fact {
	out := slices.Clone(facts)
	for i := range out {
		out[i].ObservedAt = time.Time{}
	}
	return out
}

// cachedUsage is the usage of an answer given again: nothing was spent this time.
func cachedUsage(u ai.Usage) ai.Usage {
	return ai.Usage{
		Provider: u.Provider,
		Model:    u.Model,
		Notes:    append([]string(nil), u.Notes...),
		Cached:   true,
	}
}

func cloneSpec(s monitor.Spec) monitor.Spec {
	s.Facts = slices.Clone(s.Facts)
	s.Warnings = slices.Clone(s.Warnings)
	if s.Change != nil {
		change := *s.Change
		s.Change = &change
	}
	return s
}

func cloneFacts(facts []monitor.Fact) []monitor.Fact {
	if facts == nil {
		return nil
	}
	out := make([]monitor.Fact, len(facts))
	for i, f := range facts {
		if f.Number != nil {
			n := *f.Number
			f.Number = &n
		}
		if f.Text != nil {
			t := *f.Text
			f.Text = &t
		}
		if f.Bool != nil {
			b := *f.Bool
			f.Bool = &b
		}
		out[i] = f
	}
	return out
}

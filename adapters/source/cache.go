package source

import (
	"container/list"
	"sync"
	"time"

	"github.com/vigilhq/vigil/domain/ai"
)

// entry is what the fetcher remembers of one URL.
type entry struct {
	url          string
	doc          ai.Document
	etag         string
	lastModified string
	checkedAt    time.Time // last time the origin confirmed this content
}

// cache is a least-recently-used map of entries bounded by the total size of their bodies.
type cache struct {
	mu       sync.Mutex
	maxBytes int64
	bytes    int64
	order    *list.List // front: most recently used
	items    map[string]*list.Element
}

func newCache(maxBytes int64) *cache {
	return &cache{maxBytes: maxBytes, order: list.New(), items: map[string]*list.Element{}}
}

func (c *cache) get(url string) (entry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[url]
	if !ok {
		return entry{}, false
	}
	c.order.MoveToFront(el)
	return el.Value.(entry), true
}

func (c *cache) put(e entry) {
	size := int64(len(e.doc.Body) + len(e.doc.Text))
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[e.url]; ok {
		old := el.Value.(entry)
		c.bytes -= int64(len(old.doc.Body) + len(old.doc.Text))
		c.order.Remove(el)
		delete(c.items, e.url)
	}
	if size > c.maxBytes {
		return
	}
	c.items[e.url] = c.order.PushFront(e)
	c.bytes += size
	for c.bytes > c.maxBytes {
		last := c.order.Back()
		old := last.Value.(entry)
		c.bytes -= int64(len(old.doc.Body) + len(old.doc.Text))
		c.order.Remove(last)
		delete(c.items, old.url)
	}
}

// flight runs one fetch per URL at a time; concurrent callers share its result.
type flight struct {
	mu    sync.Mutex
	calls map[string]*call
}

type call struct {
	done chan struct{}
	doc  ai.Document
	err  error
}

func (f *flight) do(key string, fn func() (ai.Document, error)) (ai.Document, error) {
	f.mu.Lock()
	if f.calls == nil {
		f.calls = map[string]*call{}
	}
	if c, ok := f.calls[key]; ok {
		f.mu.Unlock()
		<-c.done
		return c.doc, c.err
	}
	c := &call{done: make(chan struct{})}
	f.calls[key] = c
	f.mu.Unlock()
	c.doc, c.err = fn()
	f.mu.Lock()
	delete(f.calls, key)
	f.mu.Unlock()
	close(c.done)
	return c.doc, c.err
}

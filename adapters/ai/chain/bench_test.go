package chain

import (
	"context"
	"strconv"
	"testing"

	"github.com/vigilhq/vigil/domain/ai"
)

// BenchmarkOverhead measures what the chain adds to a provider call that costs nothing.
func BenchmarkOverhead(b *testing.B) {
	ctx := context.Background()
	b.Run("direct", func(b *testing.B) {
		p := newFake("claude")
		for i := 0; b.Loop(); i++ {
			if _, _, err := p.Classify(ctx, strconv.Itoa(i), ai.Hints{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("chain", func(b *testing.B) {
		c, err := New([]Named{{Name: "claude", Provider: newFake("claude")}}, Config{CacheSize: 100})
		if err != nil {
			b.Fatal(err)
		}
		for i := 0; b.Loop(); i++ {
			if _, _, err := c.Classify(ctx, strconv.Itoa(i), ai.Hints{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		c, err := New([]Named{{Name: "claude", Provider: newFake("claude")}}, Config{})
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, _, err := c.Classify(ctx, "same prompt", ai.Hints{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

package fallback_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/ai/fallback"
	"github.com/vigilhq/vigil/domain/ai"
	"github.com/vigilhq/vigil/domain/monitor"
)

// TestDeterminism runs the same inputs through fresh providers many times: Go randomises
// map iteration, so a JSON object with many equally good fields would expose any
// dependence on it.
func TestDeterminism(t *testing.T) {
	t.Parallel()
	var obj strings.Builder
	obj.WriteString("{")
	for i := range 40 {
		fmt.Fprintf(&obj, `"shop%02d":{"price":%d,"in_stock":%t},`, 39-i, 100+i, i%2 == 0)
	}
	obj.WriteString(`"meta":{"count":1}}`)
	docs := []ai.Document{
		{ContentType: "application/json", Body: []byte(obj.String())},
		{ContentType: "text/html", Body: []byte(`<p>price 5, price 6</p><p>Sold out</p><script type="application/ld+json">{"b":{"availability":"InStock"},"a":{"availability":"OutOfStock"}}</script>`)},
		{ContentType: "text/plain", Body: []byte("price 7 and price 8; in stock")},
	}
	prompts := []string{"when the price drops below $80", "when it is back in stock", "when the price rises 5% within a day", `when the page contains "sold out"`}
	run := func() string {
		p := fallback.New(func() time.Time { return time.Unix(0, 0) })
		var out strings.Builder
		for _, prompt := range prompts {
			spec, _, err := p.Classify(t.Context(), prompt, ai.Hints{})
			require.NoError(t, err)
			for _, doc := range docs {
				facts, _, err := p.Extract(t.Context(), spec, doc)
				v := monitor.Verdict{}
				if err == nil {
					v, _, err = p.Evaluate(t.Context(), spec, facts, doc)
				}
				b, _ := json.Marshal(struct {
					Spec  monitor.Spec
					Facts []monitor.Fact
					V     monitor.Verdict
					Err   string
				}{spec, facts, v, fmt.Sprint(err)})
				out.Write(b)
				out.WriteByte('\n')
			}
		}
		return out.String()
	}
	first := run()
	require.Contains(t, first, `"number":139`, "shop00 sorts first")
	for range 30 {
		require.Equal(t, first, run())
	}
}

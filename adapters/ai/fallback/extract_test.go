package fallback_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/ai"
	"github.com/vigilhq/vigil/domain/monitor"
)

func TestExtract(t *testing.T) {
	t.Parallel()
	fetched := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	num := func(name, sel string) monitor.FactSpec {
		return monitor.FactSpec{Name: name, Type: monitor.FactNumber, Selector: sel}
	}
	boolean := func(name, sel string) monitor.FactSpec {
		return monitor.FactSpec{Name: name, Type: monitor.FactBoolean, Selector: sel}
	}
	text := func(name, sel string) monitor.FactSpec {
		return monitor.FactSpec{Name: name, Type: monitor.FactText, Selector: sel}
	}
	jsonDoc := func(s string) ai.Document { return ai.Document{ContentType: "application/json", Body: []byte(s)} }
	htmlDoc := func(s string) ai.Document { return ai.Document{ContentType: "text/html", Body: []byte(s)} }
	textDoc := func(s string) ai.Document { return ai.Document{ContentType: "text/plain", Body: []byte(s)} }
	const product = `<html><head><title>Widget</title>
<script type="application/ld+json">{"@context":"https://schema.org","@type":"Product","name":"Widget",
 "offers":{"@type":"Offer","price":"19.99","availability":"https://schema.org/OutOfStock"}}</script></head>
<body><h1>Widget</h1><p class="price">Now only <span id="amount">$1,299.00</span></p>
<button>Add to cart</button></body></html>`

	tests := []struct {
		name       string
		fact       monitor.FactSpec
		doc        ai.Document
		number     *float64
		text       *string
		boolean    *bool
		evidence   string
		confidence float64
	}{
		// JSON.
		{name: "json pointer", fact: num("price", "/data/items/1/price"), doc: jsonDoc(`{"data":{"items":[{"price":1},{"price":"€2,500.25"}]}}`),
			number: ptr(2500.25), evidence: "/data/items/1/price", confidence: 1},
		{name: "json pointer escaped", fact: num("rate", "/rates/usd~1eur"), doc: jsonDoc(`{"rates":{"usd/eur":0.92}}`),
			number: ptr(0.92), evidence: "/rates/usd~1eur", confidence: 1},
		{name: "json dotted path", fact: num("price", "data.items[0].price"), doc: jsonDoc(`{"data":{"items":[{"price":79.5}]}}`),
			number: ptr(79.5), evidence: "/data/items/0/price", confidence: 1},
		{name: "json dollar path", fact: num("amount", "$.data.amount"), doc: jsonDoc(`{"data":{"amount":"43,000.12","currency":"USD"}}`),
			number: ptr(43000.12), evidence: "/data/amount", confidence: 1},
		{name: "json by name shallowest", fact: num("price", ""), doc: jsonDoc(`{"a":{"price":1},"Price":"$1,075.50"}`),
			number: ptr(1075.5), evidence: "/Price", confidence: 0.9},
		{name: "json by synonym", fact: num("price", ""), doc: jsonDoc(`{"data":{"base":"BTC","amount":"97000.5"}}`),
			number: ptr(97000.5), evidence: "/data/amount", confidence: 0.8},
		{name: "json by containing name", fact: num("price", ""), doc: jsonDoc(`[{"sku":1},{"current_price":79}]`),
			number: ptr(79), evidence: "/1/current_price", confidence: 0.8},
		{name: "json text field", fact: text("status", ""), doc: jsonDoc(`{"order":{"Status":"Shipped"}}`),
			text: strp("Shipped"), evidence: "/order/Status", confidence: 0.9},
		{name: "json availability", fact: boolean("in_stock", ""), doc: jsonDoc(`{"offers":{"availability":"http://schema.org/InStock"}}`),
			boolean: boolp(true), evidence: "/offers/availability", confidence: 1},
		{name: "json bool field", fact: boolean("in_stock", ""), doc: jsonDoc(`{"product":{"inStock":false}}`),
			boolean: boolp(false), evidence: "/product/inStock", confidence: 0.9},
		// HTML.
		{name: "css selector", fact: num("price", "#amount"), doc: htmlDoc(product), number: ptr(1299), evidence: "$1,299.00", confidence: 1},
		{name: "css prefixed", fact: num("price", "css:p.price span"), doc: htmlDoc(product), number: ptr(1299), evidence: "$1,299.00", confidence: 1},
		{name: "html nearest number ignores scripts", fact: num("price", ""), doc: htmlDoc(`<script>var price = 1;</script><p>Our price: <b>$64.99</b> today (was $80)</p>`),
			number: ptr(64.99), evidence: "$64.99", confidence: 0.7},
		{name: "html nearest keyword selector", fact: num("temperature", "Feels like"), doc: htmlDoc(`<div>Temp 20°C</div><div>Feels like <span>17.5</span>°C</div>`),
			number: ptr(17.5), evidence: "17.5", confidence: 0.7},
		{name: "html json-ld availability wins over wording", fact: boolean("in_stock", ""), doc: htmlDoc(product),
			boolean: boolp(false), evidence: "https://schema.org/OutOfStock", confidence: 1},
		{name: "html microdata availability", fact: boolean("in_stock", ""), doc: htmlDoc(`<div itemscope><link itemprop="availability" href="https://schema.org/InStock"/></div>`),
			boolean: boolp(true), evidence: "https://schema.org/InStock", confidence: 1},
		{name: "html add to cart", fact: boolean("in_stock", ""), doc: htmlDoc(`<p>Widget</p><button>Add to Cart</button>`),
			boolean: boolp(true), evidence: "Add to Cart", confidence: 0.8},
		{name: "html out of stock wording", fact: boolean("in_stock", ""), doc: htmlDoc(`<p>Currently <em>OUT OF STOCK</em></p><button>Add to cart</button>`),
			boolean: boolp(false), evidence: "OUT OF STOCK", confidence: 0.8},
		{name: "html contains", fact: boolean("contains_sold_out", "text:sold out"), doc: htmlDoc(`<p>This item is  Sold
Out.</p>`), boolean: boolp(true), evidence: "", confidence: 1},
		{name: "html contains verbatim", fact: boolean("contains_sold_out", "text:sold out"), doc: htmlDoc(`<p>Sold out</p>`),
			boolean: boolp(true), evidence: "Sold out", confidence: 1},
		{name: "html does not contain, hidden script text ignored", fact: boolean("contains_sold_out", "text:sold out"), doc: htmlDoc(`<script>"sold out"</script><p>Buy now</p>`),
			boolean: boolp(false), confidence: 1},
		{name: "contains from fact name", fact: boolean("contains_pre_order", ""), doc: htmlDoc(`<p>Pre order today</p>`),
			boolean: boolp(true), evidence: "Pre order", confidence: 1},
		{name: "html css text", fact: text("title", "h1"), doc: htmlDoc(product), text: strp("Widget"), evidence: "Widget", confidence: 1},
		{name: "html keyword text", fact: text("status", ""), doc: htmlDoc(`<ul><li>Order 42</li><li>Status: Out for delivery</li></ul>`),
			text: strp("Out for delivery"), evidence: "Status: Out for delivery", confidence: 0.7},
		{name: "page text", fact: text("page", ""), doc: htmlDoc(`<body><h1>News</h1><p>Nothing yet.</p></body>`),
			text: strp("News\nNothing yet."), evidence: "News", confidence: 0.8},
		// Text.
		{name: "text regex group", fact: num("price", `re:Total:\s*([\d.,]+)`), doc: textDoc("Items 3\nTotal: 1,234.50 EUR\n"),
			number: ptr(1234.5), evidence: "Total: 1,234.50", confidence: 1},
		{name: "text regex no group", fact: num("count", `re:\d+ left`), doc: textDoc("Only 4 left!"),
			number: ptr(4), evidence: "4 left", confidence: 1},
		{name: "text nearest number before", fact: num("followers", ""), doc: textDoc("1.5k followers, 200 following"),
			number: ptr(1500), evidence: "1.5k followers", confidence: 0.7},
		{name: "text nearest number after", fact: num("price", ""), doc: textDoc("Sale! Price 81 USD, shipping 5"),
			number: ptr(81), evidence: "Price 81", confidence: 0.7},
		{name: "text keyword inside another word is skipped", fact: num("rate", ""), doc: textDoc("accurate 99 times; rate: 4.25%"),
			number: ptr(4.25), evidence: "rate: 4.25", confidence: 0.7},
		{name: "text in stock", fact: boolean("in_stock", ""), doc: textDoc("Status: In stock, ships today"),
			boolean: boolp(true), evidence: "In stock", confidence: 0.8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			tt.doc.FetchedAt = fetched
			spec := monitor.Spec{Kind: monitor.KindCurrentState, Facts: []monitor.FactSpec{tt.fact}, Condition: "true"}
			facts, u, err := b.p.Extract(b.ctx, spec, tt.doc)
			require.NoError(t, err)
			require.Equal(t, "fallback", u.Provider)
			require.Len(t, facts, 1)
			f := facts[0]
			require.NoError(t, spec.ValidateFacts(facts))
			require.Equal(t, tt.fact.Name, f.Key)
			require.Equal(t, tt.number, f.Number, "number")
			require.Equal(t, tt.text, f.Text, "text")
			require.Equal(t, tt.boolean, f.Bool, "bool")
			require.Equal(t, tt.evidence, f.Evidence, "evidence")
			require.InDelta(t, tt.confidence, f.Confidence, 1e-9, "confidence")
			require.Equal(t, fetched, f.ObservedAt)
			if tt.evidence != "" && !strings.HasPrefix(tt.doc.ContentType, "application/json") {
				require.Contains(t, string(tt.doc.Body), f.Evidence, "evidence must be verbatim")
			}
		})
	}
}

func TestExtractMissing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		fact monitor.FactSpec
		doc  ai.Document
	}{
		{"no number near keyword", monitor.FactSpec{Name: "price", Type: monitor.FactNumber}, ai.Document{ContentType: "text/plain", Body: []byte("price on request")}},
		{"pointer miss", monitor.FactSpec{Name: "price", Type: monitor.FactNumber, Selector: "/a/9"}, ai.Document{Body: []byte(`{"a":[1]}`)}},
		{"path to non-number", monitor.FactSpec{Name: "price", Type: monitor.FactNumber, Selector: "a.b"}, ai.Document{Body: []byte(`{"a":{"b":"free"}}`)}},
		{"css miss", monitor.FactSpec{Name: "price", Type: monitor.FactNumber, Selector: ".nope"}, ai.Document{ContentType: "text/html", Body: []byte(`<p class="price">5</p>`)}},
		{"invalid css", monitor.FactSpec{Name: "price", Type: monitor.FactNumber, Selector: "p[[["}, ai.Document{ContentType: "text/html", Body: []byte(`<p>price 5</p>`)}},
		{"no stock wording", monitor.FactSpec{Name: "in_stock", Type: monitor.FactBoolean}, ai.Document{ContentType: "text/html", Body: []byte(`<p>Hello</p>`)}},
		{"regex miss", monitor.FactSpec{Name: "price", Type: monitor.FactNumber, Selector: `re:Total (\d+)`}, ai.Document{Body: []byte("nothing")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			spec := monitor.Spec{Kind: monitor.KindCurrentState, Facts: []monitor.FactSpec{tt.fact}, Condition: "true"}
			_, _, err := b.p.Extract(b.ctx, spec, tt.doc)
			require.Equal(t, domain.EINVALID, domain.ErrorCode(err))
			require.Equal(t, "Could not find the "+tt.fact.Name+" in the source.", domain.ErrorMessage(err))
		})
	}

	t.Run("invalid regex", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		spec := monitor.Spec{Kind: monitor.KindCurrentState, Facts: []monitor.FactSpec{{Name: "price", Type: monitor.FactNumber, Selector: "re:(("}}}
		_, _, err := b.p.Extract(b.ctx, spec, ai.Document{Body: []byte("x")})
		require.Equal(t, domain.EINVALID, domain.ErrorCode(err))
		require.Contains(t, domain.ErrorMessage(err), "not a valid regular expression")
	})
}

func ptr(v float64) *float64 { return &v }
func strp(v string) *string  { return &v }
func boolp(v bool) *bool     { return &v }

package fallback_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/ai/fallback"
	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/ai"
	"github.com/vigilhq/vigil/domain/monitor"
)

// TestExtractStructured covers where a value is looked for on HTML without a selector:
// structured data first, then an element named for the fact, then wording nearby; and
// the selectors a user gives (CSS, XPath) with the element they matched.
func TestExtractStructured(t *testing.T) {
	t.Parallel()
	price := monitor.FactSpec{Name: "price", Type: monitor.FactNumber}
	tests := []struct {
		name       string
		fact       monitor.FactSpec
		page       string
		number     float64
		text       string
		evidence   string
		locator    string
		unit       string
		confidence float64
	}{
		{name: "json-ld offer beats visible text", fact: price,
			page: `<script type="application/ld+json">{"@type":"Product","offers":{"@type":"Offer","price":"99.50","priceCurrency":"EUR"}}</script>
<p>Price: $120.00</p>`, number: 99.5, evidence: `"price":"99.50"`, locator: "json-ld[0]/offers/price", unit: "EUR", confidence: 0.95},
		{name: "json-ld graph with aggregate offer", fact: price,
			page:   `<script type="application/ld+json">{"@graph":[{"@type":"WebPage"},{"@type":"Product","offers":{"@type":"AggregateOffer","lowPrice": 12.5,"highPrice":20}}]}</script>`,
			number: 12.5, evidence: `"lowPrice": 12.5`, locator: "json-ld[0]/@graph/1/offers/lowPrice", confidence: 0.95},
		{name: "invalid json-ld is skipped", fact: price,
			page:   `<script type="application/ld+json">{not json</script><span itemprop="price" content="45.00">45,00 €</span>`,
			number: 45, evidence: "45.00", locator: "body > span", confidence: 0.95},
		{name: "microdata content attribute", fact: price,
			page:   `<div itemscope itemtype="https://schema.org/Product"><meta itemprop="priceCurrency" content="GBP"><span itemprop="price" content="1299.00">£1,299</span></div>`,
			number: 1299, evidence: "1299.00", locator: "body > div > span", unit: "GBP", confidence: 0.95},
		{name: "rdfa property", fact: price, page: `<p vocab="https://schema.org/" typeof="Offer"><span property="price">17,95</span> €</p>`,
			number: 17.95, evidence: "17,95", locator: "body > p > span", confidence: 0.95},
		{name: "open graph product meta", fact: price,
			page:   `<head><meta property="product:price:amount" content="64.00"><meta property="product:price:currency" content="USD"></head><p>Buy</p>`,
			number: 64, evidence: "64.00", locator: "html > head > meta:nth-of-type(1)", unit: "USD", confidence: 0.95},
		{name: "class names the price", fact: price, page: `<div class="product"><h1>Widget 3000</h1><span class="price">$120.00</span></div>`,
			number: 120, evidence: "$120.00", locator: "body > div.product > span.price", confidence: 0.85},
		{name: "old price in a del and a was-class are left out", fact: price,
			page:   `<div class="price-box"><del class="price">$150.00</del><span class="price price--was">$140</span><span class="price-now">$99.99</span></div>`,
			number: 99.99, evidence: "$99.99", locator: "body > div.price-box > span.price-now:nth-of-type(2)", confidence: 0.85},
		{name: "innermost named element", fact: price, page: `<div id="product-price-block">Only <span class="product-price">1.299,00 €</span> incl. VAT 19 %</div>`,
			number: 1299, evidence: "1.299,00 €", locator: "div#product-price-block > span.product-price", confidence: 0.85},
		{name: "german page reads 1.299 as a thousand", fact: price, page: `<html lang="de-DE"><body><span class="preis price">1.299 EUR</span></body></html>`,
			number: 1299, evidence: "1.299 EUR", locator: "body > span.preis", confidence: 0.85},
		{name: "english page reads 1.299 as a decimal", fact: monitor.FactSpec{Name: "rate", Type: monitor.FactNumber},
			page: `<html lang="en"><body><p>Rate: 1.299</p></body></html>`, number: 1.299, evidence: "Rate: 1.299", confidence: 0.7},
		{name: "swedish kronor near the word", fact: price, page: `<p>Pris: 12 990 kr</p><p>Price 12 990 kr</p>`,
			number: 12990, evidence: "Price 12 990", confidence: 0.7},
		{name: "yen", fact: price, page: `<p>Price ¥1299 (tax incl.)</p>`, number: 1299, evidence: "Price ¥1299", confidence: 0.7},
		{name: "css selector gives its element", fact: monitor.FactSpec{Name: "price", Type: monitor.FactNumber, Selector: "#buy .amount"},
			page: `<div id="buy"><b class="amount">$1,299</b></div>`, number: 1299, evidence: "$1,299", locator: "div#buy > b.amount", confidence: 1},
		{name: "xpath element", fact: monitor.FactSpec{Name: "price", Type: monitor.FactNumber, Selector: "//table//tr[2]/td[2]"},
			page:   `<table><tr><th>Item</th><th>Price</th></tr><tr><td>Widget</td><td>$7.25</td></tr></table>`,
			number: 7.25, evidence: "$7.25", locator: "body > table > tbody > tr:nth-of-type(2) > td:nth-of-type(2)", confidence: 1},
		{name: "xpath attribute", fact: monitor.FactSpec{Name: "price", Type: monitor.FactNumber, Selector: "xpath://meta[@name='price']/@content"},
			page: `<head><meta name="price" content="33.10"></head>`, number: 33.1, evidence: "33.10", locator: "html > head > meta @content", confidence: 1},
		{name: "xpath count", fact: monitor.FactSpec{Name: "count", Type: monitor.FactNumber, Selector: "count(//li)"},
			page: `<ul><li>a</li><li>b</li><li>c</li></ul>`, number: 3, locator: "count(//li)", confidence: 1},
		{name: "text from a named element", fact: monitor.FactSpec{Name: "status", Type: monitor.FactText},
			page: `<div class="order-status">Shipped</div>`, text: "Shipped", evidence: "Shipped", locator: "body > div.order-status", confidence: 0.85},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			spec := monitor.Spec{Kind: monitor.KindCurrentState, Facts: []monitor.FactSpec{tt.fact}, Condition: "true"}
			facts, _, err := b.p.Extract(b.ctx, spec, ai.Document{ContentType: "text/html", Body: []byte(tt.page)})
			require.NoError(t, err)
			require.Len(t, facts, 1)
			f := facts[0]
			if tt.text != "" {
				require.NotNil(t, f.Text)
				require.Equal(t, tt.text, *f.Text)
			} else {
				require.NotNil(t, f.Number)
				require.InDelta(t, tt.number, *f.Number, 1e-9)
			}
			require.Equal(t, tt.evidence, f.Evidence, "evidence")
			require.Equal(t, tt.locator, f.Locator, "locator")
			require.Equal(t, tt.unit, f.Unit, "unit")
			require.InDelta(t, tt.confidence, f.Confidence, 1e-9, "confidence")
			if f.Evidence != "" {
				require.Contains(t, tt.page, f.Evidence, "evidence must be verbatim")
			}
		})
	}
}

// TestJSONSelectorPrefix: "json:" takes a pointer, a path, and a path of one name.
func TestJSONSelectorPrefix(t *testing.T) {
	t.Parallel()
	b := setup(t)
	doc := ai.Document{ContentType: "application/json", Body: []byte(`{"price": 79.5, "data": {"items": [{"price": 3}]}}`)}
	for sel, want := range map[string]float64{"json:price": 79.5, "json:data.items[0].price": 3, "json:/data/items/0/price": 3} {
		spec := monitor.Spec{Kind: monitor.KindCurrentState, Condition: "true", Facts: []monitor.FactSpec{{Name: "price", Type: monitor.FactNumber, Selector: sel}}}
		facts, _, err := b.p.Extract(b.ctx, spec, doc)
		require.NoError(t, err, sel)
		require.InDelta(t, want, *facts[0].Number, 1e-9, sel)
		require.InDelta(t, 1, facts[0].Confidence, 1e-9, sel)
	}
}

func TestCheckSelector(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"span.price", "css:#buy > b", "//span[@class='price']", "xpath://meta/@content", "(//td)[2]", "./b",
		"/data/price", "json:data.items[0].price", "json:/a/b", "text:Sold out", `re:Total:\s*(\d+)`, "price", "h1"} {
		require.NoError(t, fallback.CheckSelector("selector", ok), ok)
	}
	for sel, problem := range map[string]string{
		"span[[":           "is not a valid CSS selector",
		"xpath://span[":    "is not a valid XPath",
		"//span[@a=":       "is not a valid XPath",
		"re:((":            "is not a valid regular expression",
		"json:not a path!": "is not a JSON pointer",
		"text:  ":          "names no text",
		"":                 "must not be empty",
		"a\x00b":           "control characters",
	} {
		err := fallback.CheckSelector("selector.price", sel)
		require.Equal(t, domain.EINVALID, domain.ErrorCode(err), sel)
		require.Contains(t, fieldsOf(err)["selector.price"], problem, sel)
	}
}

func fieldsOf(err error) map[string]string {
	var de *domain.Error
	if errors.As(err, &de) {
		return de.Fields
	}
	return nil
}

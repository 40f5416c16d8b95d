package fallback

import (
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/PuerkitoBio/goquery"
	"golang.org/x/net/html"

	"github.com/vigilhq/vigil/domain/monitor"
)

// Confidence of values read from a page's structured data (JSON-LD, microdata, RDFa,
// product meta tags), which shops publish for search engines and keep right, and from an
// element whose class or id names the fact, which is a good guess.
const (
	confidenceStructured = 0.95
	confidenceNamed      = 0.85
)

// schemaProps are the schema.org properties that hold a fact, best first.
func schemaProps(fs monitor.FactSpec) []string {
	name := strings.ToLower(fs.Name)
	switch {
	case priceFact(fs):
		return []string{"price", "lowPrice"}
	case name == "rating" || name == "stars" || name == "rating_value":
		return []string{"ratingValue"}
	case name == "reviews" || name == "review_count" || name == "reviews_count" || name == "ratings" || name == "rating_count":
		return []string{"reviewCount", "ratingCount"}
	case name == "stock" || name == "quantity" || name == "inventory" || name == "inventory_level":
		return []string{"inventoryLevel"}
	}
	return []string{camelCase(fs.Name)}
}

// priceFact reports a fact that is a price: named so, or measured in a currency.
func priceFact(fs monitor.FactSpec) bool {
	name := strings.ToLower(fs.Name)
	switch strings.ToUpper(fs.Unit) {
	case "USD", "EUR", "GBP", "JPY", "CHF", "SEK", "NOK", "DKK", "PLN", "CAD", "AUD":
		if name != "rate" && !strings.Contains(name, "count") {
			return true
		}
	}
	return strings.Contains(name, "price") || name == "cost" || name == "amount"
}

// camelCase turns a fact name such as "inventory_level" into a schema.org property name.
func camelCase(name string) string {
	parts := strings.FieldsFunc(strings.ToLower(name), func(r rune) bool { return r == '_' || r == '-' || r == ' ' })
	for i := 1; i < len(parts); i++ {
		parts[i] = strings.ToUpper(parts[i][:1]) + parts[i][1:]
	}
	return strings.Join(parts, "")
}

// metaProps are the OpenGraph and product meta properties that hold a fact.
func metaProps(fs monitor.FactSpec) []string {
	if priceFact(fs) {
		return []string{"product:price:amount", "og:price:amount", "product:sale_price:amount"}
	}
	return nil
}

// structuredNumber reads a number from the page's structured data: JSON-LD first, then
// microdata and RDFa, then OpenGraph and product meta tags.
func (s *source) structuredNumber(fs monitor.FactSpec) (found, bool) {
	props := schemaProps(fs)
	if f, ok := s.jsonLDNumber(props); ok {
		return f, true
	}
	for _, p := range props {
		sel := fmt.Sprintf(`[itemprop~=%q], [property=%q], [property=%q]`, p, "schema:"+p, p)
		if f, ok := s.attributeNumber(sel, "[itemprop~=\"priceCurrency\"], [property=\"schema:priceCurrency\"]"); ok {
			return f, true
		}
	}
	for _, p := range metaProps(fs) {
		currency := strings.Replace(p, ":amount", ":currency", 1)
		if f, ok := s.attributeNumber(fmt.Sprintf(`meta[property=%q], meta[name=%q]`, p, p),
			fmt.Sprintf(`meta[property=%q], meta[name=%q]`, currency, currency)); ok {
			return f, true
		}
	}
	return found{}, false
}

// attributeNumber reads the first element matching sel that holds a number, in its
// content or value attribute or else its text; currency selects the element naming the
// currency.
func (s *source) attributeNumber(sel, currency string) (found, bool) {
	var res found
	ok := false
	s.dom.Find(sel).EachWithBreak(func(_ int, el *goquery.Selection) bool {
		text, has := el.Attr("content")
		if !has {
			text, has = el.Attr("value")
		}
		if !has {
			text = elementText(el)
		}
		v, isNum := readNumber(text, s.decimalComma)
		if !isNum {
			return true
		}
		res, ok = numberFound(v, verbatim(s.raw, strings.TrimSpace(text), numberToken(text)), confidenceStructured).at(cssPath(el)), true
		if c := s.dom.Find(currency).First(); c.Length() > 0 {
			res.unit = currencyCode(c.AttrOr("content", elementText(c)))
		}
		return false
	})
	return res, ok
}

// ldScripts parses the page's JSON-LD blocks once; a block that is not JSON is skipped.
func (s *source) ldScripts() []any {
	if s.ld != nil {
		return s.ld
	}
	s.ld = []any{}
	s.dom.Find(`script[type="application/ld+json"]`).Each(func(_ int, sc *goquery.Selection) {
		var root any
		if json.Unmarshal([]byte(sc.Text()), &root) == nil {
			s.ld = append(s.ld, root)
		}
	})
	return s.ld
}

// jsonLDNumber finds the best of props in the JSON-LD blocks: the better-ranked property,
// then the shallower, then the first in block order with object keys sorted, so the answer
// never depends on map iteration. A property's value may be a number, a string holding one
// ("1.299,00") or a QuantitativeValue ({"value": 3}). The currency is the object's
// priceCurrency.
func (s *source) jsonLDNumber(props []string) (found, bool) {
	type hit struct {
		rank, depth int
		block       int
		path, key   string
		value       float64
		text        string
		currency    string
	}
	var best *hit
	for b, root := range s.ldScripts() {
		var walk func(v any, path string, depth int)
		walk = func(v any, path string, depth int) {
			switch node := v.(type) {
			case map[string]any:
				keys := slices.Sorted(maps.Keys(node))
				for _, k := range keys {
					p := path + "/" + escapePointer(k)
					for rank, prop := range props {
						if k != prop {
							continue
						}
						val := node[k]
						if q, ok := val.(map[string]any); ok {
							val = q["value"]
						}
						v, text, ok := ldNumber(val, s.decimalComma)
						if ok && (best == nil || rank < best.rank || rank == best.rank && depth < best.depth) {
							cur, _ := node["priceCurrency"].(string)
							best = &hit{rank: rank, depth: depth, block: b, path: p, key: k, value: v, text: text, currency: cur}
						}
					}
					walk(node[k], p, depth+1)
				}
			case []any:
				for i, child := range node {
					walk(child, path+"/"+strconv.Itoa(i), depth+1)
				}
			}
		}
		walk(root, "", 0)
	}
	if best == nil {
		return found{}, false
	}
	f := numberFound(best.value, s.ldEvidence(best.key, best.text), confidenceStructured).at(fmt.Sprintf("json-ld[%d]%s", best.block, best.path))
	f.unit = currencyCode(best.currency)
	return f, true
}

// ldNumber reads a JSON-LD value as a number, with the text it is written as.
func ldNumber(v any, decimalComma bool) (float64, string, bool) {
	switch n := v.(type) {
	case float64:
		return n, strconv.FormatFloat(n, 'f', -1, 64), true
	case string:
		f, ok := readNumber(n, decimalComma)
		return f, n, ok
	}
	return 0, "", false
}

// ldEvidence quotes a JSON-LD property as the page writes it, such as "price": "19.99".
func (s *source) ldEvidence(key, text string) string {
	re, err := regexp.Compile(`"` + regexp.QuoteMeta(key) + `"\s*:\s*"?` + regexp.QuoteMeta(text) + `"?`)
	if err == nil {
		if m := re.FindString(s.raw); m != "" {
			return m
		}
	}
	return verbatim(s.raw, text)
}

// currencyCode normalises a currency written as a code or a sign.
func currencyCode(c string) string {
	switch c = strings.TrimSpace(c); c {
	case "$":
		return "USD"
	case "€":
		return "EUR"
	case "£":
		return "GBP"
	case "¥":
		return "JPY"
	}
	if len(c) == 3 && strings.ToUpper(c) == c {
		return c
	}
	return ""
}

// nameWords are the words a class or id holding the fact is named with.
func nameWords(fs monitor.FactSpec) []string {
	switch {
	case priceFact(fs):
		return append([]string{"price", "amount", "cost"}, priceWords...)
	case fs.Name == "stock" || fs.Name == "quantity" || fs.Name == "inventory":
		return []string{"stock", "inventory", "quantity", "qty"}
	}
	return []string{strings.ToLower(strings.ReplaceAll(fs.Name, "_", "-")), strings.ToLower(strings.ReplaceAll(fs.Name, "_", ""))}
}

// notTheValue marks classes and ids of a value beside the one wanted: the price before a
// discount, a saving, a price per unit, a label.
var notTheValue = regexp.MustCompile(`old|was|before|compare|regular|original|strike|crossed|rrp|msrp|list|save|saving|discount|unit|per-|label|title|shipping|hidden`)

// namedElement returns the innermost element, in document order, whose class or id names
// the fact and whose text holds a value (ok(text) says which texts do), leaving out
// elements of a value beside it (an old price in <del> or class "price--old").
func (s *source) namedElement(fs monitor.FactSpec, holds func(string) bool) (*goquery.Selection, string, bool) {
	words := nameWords(fs)
	named := func(n *html.Node) bool {
		for _, a := range n.Attr {
			if a.Key != "class" && a.Key != "id" {
				continue
			}
			v := strings.ToLower(a.Val)
			for _, w := range words {
				if w != "" && strings.Contains(v, w) && !notTheValue.MatchString(v) {
					return true
				}
			}
		}
		return false
	}
	var candidates []*html.Node
	s.dom.Find("[class], [id]").Each(func(_ int, el *goquery.Selection) {
		if n := el.Get(0); named(n) && el.Closest("del, s, strike, script, style, template, noscript").Length() == 0 {
			candidates = append(candidates, n)
		}
	})
	inner := func(n *html.Node) bool {
		for _, c := range candidates {
			if c != n && contains(n, c) && holds(elementText(s.dom.FindNodes(c))) {
				return false
			}
		}
		return true
	}
	for _, n := range candidates {
		el := s.dom.FindNodes(n)
		if text := elementText(el); holds(text) && inner(n) {
			return el, text, true
		}
	}
	return nil, "", false
}

// namedNumber reads a number from the element whose class or id names the fact.
func (s *source) namedNumber(fs monitor.FactSpec) (found, bool) {
	el, text, ok := s.namedElement(fs, func(t string) bool { _, ok := readNumber(t, s.decimalComma); return ok })
	if !ok {
		return found{}, false
	}
	v, _ := readNumber(text, s.decimalComma)
	return numberFound(v, verbatim(s.raw, text, numberToken(text)), confidenceNamed).at(cssPath(el)), true
}

// namedText reads a text fact from the element whose class or id names it.
func (s *source) namedText(fs monitor.FactSpec) (found, bool) {
	el, text, ok := s.namedElement(fs, func(t string) bool { return t != "" && len(t) <= 200 })
	if !ok {
		return found{}, false
	}
	return textFound(text, verbatim(s.raw, text), confidenceNamed).at(cssPath(el)), true
}

// contains reports whether n is an ancestor of c.
func contains(n, c *html.Node) bool {
	for p := c.Parent; p != nil; p = p.Parent {
		if p == n {
			return true
		}
	}
	return false
}

// elementText is the visible text of an element on one line.
func elementText(el *goquery.Selection) string {
	var b strings.Builder
	writeVisible(el, &b)
	return strings.TrimSpace(strings.ReplaceAll(normaliseText(b.String()), "\n", " "))
}

// cssPath names an element so that a user can find it and use it as a selector: from the
// nearest ancestor with an id, each step its tag, its first class and, among siblings of
// the same tag, its position.
func cssPath(el *goquery.Selection) string {
	if el == nil || el.Length() == 0 {
		return ""
	}
	var steps []string
	for n := el.Get(0); n != nil && n.Type == html.ElementNode; n = n.Parent {
		step := n.Data
		if id := attr(n, "id"); id != "" && cssIdent.MatchString(id) {
			steps = append(steps, step+"#"+id)
			break
		}
		if cls := strings.Fields(attr(n, "class")); len(cls) > 0 && cssIdent.MatchString(cls[0]) {
			step += "." + cls[0]
		}
		if i, of := position(n); of > 1 {
			step += fmt.Sprintf(":nth-of-type(%d)", i)
		}
		steps = append(steps, step)
		if n.Data == "body" {
			break
		}
	}
	for i, j := 0, len(steps)-1; i < j; i, j = i+1, j-1 {
		steps[i], steps[j] = steps[j], steps[i]
	}
	return strings.Join(steps, " > ")
}

// cssIdent matches class and id names that need no escaping in a selector.
var cssIdent = regexp.MustCompile(`^-?[A-Za-z_][\w-]*$`)

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// position is n's place among its parent's children of the same tag, and their count.
func position(n *html.Node) (int, int) {
	if n.Parent == nil {
		return 1, 1
	}
	i, of := 0, 0
	for c := n.Parent.FirstChild; c != nil; c = c.NextSibling {
		if c.Type == html.ElementNode && c.Data == n.Data {
			of++
			if c == n {
				i = of
			}
		}
	}
	return i, of
}

package fallback

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/PuerkitoBio/goquery"

	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/ai"
	"github.com/vigilhq/vigil/domain/monitor"
)

// Confidence of extracted facts: a selector, pointer or path names the value exactly; a
// field named like the fact is nearly as good; wording found near a keyword is a guess.
const (
	confidenceExact   = 1.0
	confidenceName    = 0.9
	confidencePhrase  = 0.8
	confidenceNearest = 0.7

	// maxTextFact bounds a text fact taken from a whole page.
	maxTextFact = 4000
	// nearWindow is how far, in bytes, a number may be from its keyword.
	nearWindow = 80
)

var (
	// pathRe matches a dotted path such as data.items[0].price or $.data.price.
	pathRe = regexp.MustCompile(`^(?:\$\.)?[A-Za-z_$@][\w$@-]*(?:\[\d+\])*(?:\.[A-Za-z_$@][\w$@-]*(?:\[\d+\])*)*$`)
	// pathTokenRe splits a dotted path into names and indexes.
	pathTokenRe = regexp.MustCompile(`[^.\[\]]+|\[\d+\]`)
	// cssHintRe marks a selector as CSS rather than a keyword.
	cssHintRe = regexp.MustCompile(`[.#\[\]>:*~+=]`)
	// blankRe collapses runs of blanks within a line.
	blankRe = regexp.MustCompile(`[ \t\r\f\v\x{00a0}]+`)
)

// docKind is how a document is read.
type docKind int

const (
	kindText docKind = iota
	kindJSON
	kindHTML
)

// source is a document prepared for extraction. The parsed forms are built once per
// Extract call.
type source struct {
	raw     string
	kind    docKind
	root    any               // parsed JSON
	dom     *goquery.Document // parsed HTML
	visible string            // visible text: lines, blanks collapsed
	// decimalComma says the page's language writes "1.299,50" (html lang).
	decimalComma bool
	ld           []any // the page's JSON-LD blocks, parsed on first use
}

// newSource reads the document as the monitor's source format says (doc.Format), or,
// when it says auto, as its media type and first bytes suggest. A document that is not
// what the format says is EINVALID, naming the setting.
func newSource(doc ai.Document) (*source, error) {
	s := &source{raw: string(doc.Body), kind: kindText}
	format := strings.ToLower(doc.Format)
	switch {
	case format == "text":
	case format == "json" || (format == "" || format == "auto") && isJSON(doc):
		dec := json.NewDecoder(bytes.NewReader(doc.Body))
		dec.UseNumber()
		if err := dec.Decode(&s.root); err == nil {
			s.kind = kindJSON
			return s, nil
		} else if format == "json" {
			return nil, &domain.Error{Code: domain.EINVALID, Message: "The source is not JSON, but the monitor's source_format says json.",
				Fields: map[string]string{"source_format": "does not match the source"}, Err: err}
		}
	case format == "html" || format == "rss" || (format == "" || format == "auto") && isHTML(doc):
		dom, err := goquery.NewDocumentFromReader(bytes.NewReader(doc.Body))
		if err != nil {
			return nil, fmt.Errorf("parse html: %w", err)
		}
		s.kind, s.dom = kindHTML, dom
		s.decimalComma = langDecimalComma(dom.Find("html").AttrOr("lang", ""))
		if format == "rss" && doc.Text != "" {
			s.visible = normaliseText(doc.Text) // the fetcher's reading of the feed's entries
			return s, nil
		}
		var b strings.Builder
		writeVisible(dom.Selection, &b)
		s.visible = normaliseText(b.String())
		return s, nil
	}
	s.visible = normaliseText(s.raw)
	return s, nil
}

func isJSON(doc ai.Document) bool {
	if strings.HasSuffix(doc.ContentType, "json") {
		return true
	}
	b := bytes.TrimSpace(doc.Body)
	return len(b) > 0 && (b[0] == '{' || b[0] == '[') && json.Valid(b)
}

func isHTML(doc ai.Document) bool {
	if strings.Contains(doc.ContentType, "html") || strings.HasSuffix(doc.ContentType, "xml") {
		return true
	}
	b := bytes.TrimSpace(doc.Body)
	return doc.ContentType == "" && len(b) > 0 && b[0] == '<'
}

// writeVisible writes the text a reader sees: no scripts, styles or comments; block
// elements on their own lines, inline ones run together ("$<span>64</span>.99").
func writeVisible(sel *goquery.Selection, b *strings.Builder) {
	sel.Contents().Each(func(_ int, c *goquery.Selection) {
		switch name := goquery.NodeName(c); name {
		case "#text":
			b.WriteString(c.Text())
		case "#comment", "#doctype", "script", "style", "noscript", "template", "svg", "iframe", "object", "head":
		case "b", "i", "em", "strong", "span", "a", "small", "big", "sup", "sub", "u", "s", "mark", "abbr",
			"code", "font", "label", "time", "data", "bdi", "bdo", "q", "cite", "var", "kbd", "samp", "ins", "del":
			writeVisible(c, b)
		default:
			b.WriteByte('\n')
			writeVisible(c, b)
			b.WriteByte('\n')
		}
	})
}

// normaliseText collapses blanks within lines and drops empty lines.
func normaliseText(s string) string {
	lines := strings.Split(s, "\n")
	out := lines[:0]
	for _, l := range lines {
		if l = strings.TrimSpace(blankRe.ReplaceAllString(l, " ")); l != "" {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// found is a value extracted for a fact.
type found struct {
	number     *float64
	text       *string
	boolean    *bool
	evidence   string
	confidence float64
	locator    string // where it was found: a CSS path, a JSON pointer, a JSON-LD path
	unit       string // the currency the page gives, when it gives one
}

func numberFound(v float64, evidence string, confidence float64) found {
	return found{number: &v, evidence: evidence, confidence: confidence}
}

func textFound(v, evidence string, confidence float64) found {
	return found{text: &v, evidence: evidence, confidence: confidence}
}

func boolFound(v bool, evidence string, confidence float64) found {
	return found{boolean: &v, evidence: evidence, confidence: confidence}
}

// at is f found at locator.
func (f found) at(locator string) found {
	f.locator = locator
	return f
}

// extract finds one fact in the source; false when it is not there.
func (s *source) extract(fs monitor.FactSpec) (found, bool, error) {
	sel := strings.TrimSpace(fs.Selector)
	if strings.HasPrefix(sel, "re:") {
		return s.byRegex(fs, strings.TrimPrefix(sel, "re:"))
	}
	switch fs.Type {
	case monitor.FactBoolean:
		f, ok := s.boolean(fs, sel)
		return f, ok, nil
	case monitor.FactText:
		f, ok := s.text(fs, sel)
		return f, ok, nil
	default:
		f, ok := s.number(fs, sel)
		return f, ok, nil
	}
}

// byRegex applies a "re:" selector to the raw document: the first capture group, or the
// whole match when there is none. The whole match is the evidence.
func (s *source) byRegex(fs monitor.FactSpec, expr string) (found, bool, error) {
	re, err := regexp.Compile(expr)
	if err != nil {
		return found{}, false, &domain.Error{Code: domain.EINVALID, Message: fmt.Sprintf("The selector of %s is not a valid regular expression.", fs.Name),
			Fields: map[string]string{"selector": fs.Selector}, Err: err}
	}
	m := re.FindStringSubmatch(s.raw)
	if m == nil {
		return found{}, false, nil
	}
	value := m[0]
	if len(m) > 1 {
		value = m[1]
	}
	switch fs.Type {
	case monitor.FactBoolean:
		return boolFound(true, m[0], confidenceExact), true, nil
	case monitor.FactText:
		return textFound(strings.TrimSpace(value), m[0], confidenceExact), true, nil
	}
	v, ok := readNumber(value, s.decimalComma)
	if !ok {
		return found{}, false, nil
	}
	return numberFound(v, m[0], confidenceExact), true, nil
}

// number finds a numeric fact: at the selector when there is one; on HTML without one, in
// the structured data, then in an element named for the fact, then near its name in the
// visible text.
func (s *source) number(fs monitor.FactSpec, sel string) (found, bool) {
	if s.kind == kindJSON {
		return s.jsonFact(fs, sel, numberConv)
	}
	if s.kind == kindHTML {
		switch {
		case isXPath(sel) || isCSS(sel):
			v, locator, ok := s.selected(sel)
			if !ok {
				return found{}, false
			}
			switch v := v.(type) {
			case float64:
				return numberFound(v, "", confidenceExact).at(locator), true
			case string:
				n, isNum := readNumber(v, s.decimalComma)
				if !isNum {
					return found{}, false
				}
				return numberFound(n, verbatim(s.raw, v, numberToken(v)), confidenceExact).at(locator), true
			}
			return found{}, false
		case sel == "":
			if f, ok := s.structuredNumber(fs); ok {
				return f, true
			}
			if f, ok := s.namedNumber(fs); ok {
				return f, true
			}
		}
	}
	return s.nearestNumber(keywords(fs, sel))
}

// jsonValue resolves a JSON pointer or dotted path selector.
func (s *source) jsonValue(_ monitor.FactSpec, sel string) (any, string, float64, bool) {
	expr, prefixed := strings.CutPrefix(sel, prefixJSON)
	sel = strings.TrimSpace(expr)
	switch {
	case strings.HasPrefix(sel, "/"):
		v, ok := pointer(s.root, sel)
		return v, sel, confidenceExact, ok
	case isPath(sel) || strings.HasPrefix(sel, "$.") || prefixed && pathRe.MatchString(sel): // "json:price" is a path of one name
		// The evidence is the value's JSON pointer, which trust checks know to resolve.
		v, ok := dottedPath(s.root, sel)
		return v, pathPointer(sel), confidenceExact, ok
	}
	return nil, "", 0, false
}

// jsonByName finds the best field named like the fact: an exact name first, then a
// synonym, then a name containing the fact's; shallower before deeper; among equals, the
// first in document order with object keys sorted, so the answer never depends on map
// iteration. The evidence is the field's JSON pointer. conv turns a field's value into
// the fact, false for a value of another type.
func (s *source) jsonByName(fs monitor.FactSpec, sel string, conv jsonConv) (found, bool) {
	names := keywords(fs, sel)
	best := struct {
		rank, depth int
		path        string
		value       any
		ok          bool
	}{}
	var walk func(v any, path string, depth int)
	walk = func(v any, path string, depth int) {
		switch node := v.(type) {
		case map[string]any:
			keys := slices.Sorted(maps.Keys(node))
			for _, k := range keys {
				child, p := node[k], path+"/"+escapePointer(k)
				if r, ok := nameRank(k, names); ok && accepts(conv, child) && (!best.ok || r < best.rank || r == best.rank && depth < best.depth) {
					best.rank, best.depth, best.path, best.value, best.ok = r, depth, p, child, true
				}
				walk(child, p, depth+1)
			}
		case []any:
			for i, child := range node {
				walk(child, path+"/"+strconv.Itoa(i), depth+1)
			}
		}
	}
	walk(s.root, "", 0)
	if !best.ok {
		return found{}, false
	}
	conf := confidenceName
	if best.rank > 0 {
		conf = confidencePhrase
	}
	return conv(best.value, best.path, conf)
}

// jsonConv turns a JSON value found at evidence into a fact; false when the value has
// another type than the fact.
type jsonConv func(v any, evidence string, conf float64) (found, bool)

func accepts(conv jsonConv, v any) bool {
	_, ok := conv(v, "", 0)
	return ok
}

// jsonFact finds a fact in a JSON document: at the selector when there is one, else (unless
// the selector is a pointer or path that missed) the best field named like the fact.
func (s *source) jsonFact(fs monitor.FactSpec, sel string, conv jsonConv) (found, bool) {
	if v, evidence, conf, ok := s.jsonValue(fs, sel); ok {
		if f, ok := conv(v, evidence, conf); ok {
			return f, true
		}
	}
	if sel != "" && (strings.HasPrefix(sel, "/") || isPath(sel) || strings.HasPrefix(sel, prefixJSON)) {
		return found{}, false
	}
	return s.jsonByName(fs, sel, conv)
}

// The conversions of JSON values; the evidence of a JSON value is its pointer or path,
// which is also where it was found.
func numberConv(v any, evidence string, conf float64) (found, bool) {
	n, ok := jsonNumber(v)
	return numberFound(n, evidence, conf).at(evidence), ok
}

func textConv(v any, evidence string, conf float64) (found, bool) {
	t, ok := jsonText(v)
	return textFound(t, evidence, conf).at(evidence), ok
}

func boolConv(v any, evidence string, conf float64) (found, bool) {
	b, ok := v.(bool)
	return boolFound(b, evidence, conf).at(evidence), ok
}

// nameRank ranks a JSON key against the fact's names: 0 the first name exactly, 1 another
// name exactly, 2 a key containing the first name. Case, "_" and "-" are ignored.
func nameRank(key string, names []string) (int, bool) {
	k := squash(key)
	for i, n := range names {
		if k == squash(n) {
			return min(i, 1), true
		}
	}
	if n := squash(names[0]); len(n) >= 3 && strings.Contains(k, n) {
		return 2, true
	}
	return 0, false
}

func squash(s string) string {
	return strings.NewReplacer("_", "", "-", "", " ", "").Replace(strings.ToLower(s))
}

// keywords are the words to look for: the selector when it is a keyword, else the fact's
// name (underscores as spaces) and its synonyms.
func keywords(fs monitor.FactSpec, sel string) []string {
	if k, ok := strings.CutPrefix(sel, selectorText); ok && strings.TrimSpace(k) != "" {
		return []string{strings.TrimSpace(k)}
	}
	if sel != "" && !strings.HasPrefix(sel, "/") && !strings.HasPrefix(sel, prefixJSON) && !strings.HasPrefix(sel, prefixXPath) &&
		!cssHintRe.MatchString(sel) && !htmlTag(sel) {
		return []string{sel}
	}
	name := strings.ReplaceAll(fs.Name, "_", " ")
	out := []string{name}
	switch fs.Name {
	case "price":
		out = append(out, "amount", "cost", "last", "current price", "now")
		out = append(out, priceWords...)
	case "temperature":
		out = append(out, "temp", "temperature_c", "degrees")
	case "count":
		out = append(out, "total", "quantity", "number")
	case "stock":
		out = append(out, "quantity", "inventory", "available")
	case "rate":
		out = append(out, "value")
	case "score":
		out = append(out, "points")
	case "rating":
		out = append(out, "stars", "score")
	}
	return out
}

// priceWords are "price" in the languages of the shops Vigil reads: German, French,
// Spanish, Italian, Dutch, Portuguese, the Scandinavian languages, Polish and Czech,
// Finnish, Turkish, Russian, Japanese and Chinese.
var priceWords = []string{"preis", "prix", "precio", "prezzo", "prijs", "preço", "pris", "cena", "hinta", "fiyat", "цена", "価格", "价格"}

// isPath reports a dotted path selector: it has a dot or an index.
func isPath(sel string) bool {
	return strings.ContainsAny(sel, ".[") && pathRe.MatchString(sel)
}

// isCSS reports a CSS selector: "css:" prefixed, with CSS punctuation, or an HTML tag.
func isCSS(sel string) bool {
	if sel == "" || strings.HasPrefix(sel, selectorText) || strings.HasPrefix(sel, prefixRegex) || strings.HasPrefix(sel, prefixJSON) || isXPath(sel) {
		return false
	}
	return strings.HasPrefix(sel, prefixCSS) || cssHintRe.MatchString(sel) || htmlTag(sel)
}

func htmlTag(sel string) bool {
	switch strings.ToLower(sel) {
	case "h1", "h2", "h3", "h4", "h5", "h6", "p", "span", "div", "td", "th", "tr", "li", "b", "strong", "em", "i",
		"title", "a", "main", "article", "section", "label", "dd", "dt", "pre", "code", "small", "time", "data", "output":
		return true
	}
	return false
}

// css returns the trimmed text of the first element matching a CSS selector, and the
// element's path. An invalid selector matches nothing.
func (s *source) css(sel string) (string, string, bool) {
	first := s.dom.Find(strings.TrimPrefix(sel, prefixCSS)).First()
	if first.Length() == 0 {
		return "", "", false
	}
	text := elementText(first)
	if text == "" {
		if v, ok := first.Attr("content"); ok {
			text = strings.TrimSpace(v)
		} else if v, ok := first.Attr("value"); ok {
			text = strings.TrimSpace(v)
		}
	}
	return text, cssPath(first), text != ""
}

// selected is what a CSS selector or an XPath picks on the page: an element's text or,
// for an XPath that computes one, a number or a boolean; and where it was found.
func (s *source) selected(sel string) (value any, locator string, ok bool) {
	if isXPath(sel) {
		return s.xpathValue(sel)
	}
	text, locator, ok := s.css(sel)
	return text, locator, ok
}

// nearestNumber finds the number closest to any of the keywords in the visible text: after
// the keyword beats before it at equal distance, and the earliest keyword wins ties.
func (s *source) nearestNumber(keys []string) (found, bool) {
	text := s.visible
	lower := asciiLower(text)
	type hit struct{ dist, start, end, key, keyLen int }
	var best *hit
	for _, k := range keys {
		k = asciiLower(strings.TrimSpace(k))
		if k == "" {
			continue
		}
		for from := 0; from < len(lower); {
			i := strings.Index(lower[from:], k)
			if i < 0 {
				break
			}
			i += from
			from = i + len(k)
			if i > 0 && isLetter(lower[i-1]) || from < len(lower) && isLetter(lower[from]) && !strings.HasSuffix(k, "s") && lower[from] != 's' {
				continue // inside another word
			}
			lo, hi := max(0, i-nearWindow/2), min(len(text), from+nearWindow)
			for _, loc := range docNumberRe.FindAllStringIndex(text[lo:hi], -1) {
				start, end := lo+loc[0], lo+loc[1]
				if start > 0 && isLetter(text[start-1]) || end < len(text) && isDigitOrLetterGlue(text, end) {
					continue // part of a word such as "mp3"
				}
				if start < from && end > i {
					continue
				}
				if end < len(text) && (text[end] == 'k' || text[end] == 'M') {
					end++ // a 1.5k multiplier belongs to the number
				}
				dist := start - from + gapPenalty(text[from:max(from, start)])
				if end <= i {
					dist = i - end + 1 + gapPenalty(text[end:i]) // before the keyword: a little worse
				}
				if best == nil || dist < best.dist {
					best = &hit{dist, start, end, i, len(k)}
				}
			}
		}
		if best != nil {
			break // a better-ranked keyword found a number: do not look for synonyms
		}
	}
	if best == nil {
		return found{}, false
	}
	token := strings.TrimSpace(text[best.start:best.end])
	v, ok := readNumber(text[best.start:min(len(text), best.end+8)], s.decimalComma)
	if !ok {
		return found{}, false
	}
	var snippet string
	if best.start < best.key {
		snippet = text[best.start : best.key+best.keyLen] // "1.5k followers"
	} else {
		snippet = text[best.key:best.end] // "price: $64.99"
	}
	snippet = strings.TrimSpace(snippet)
	evidence := verbatim(s.raw, snippet, token, strings.TrimLeft(token, "$€£ "))
	return numberFound(v, evidence, confidenceNearest), true
}

// gapPenalty makes a number across a separator (",", ";", "|", a line or sentence end)
// farther from its keyword than its byte distance says: "1.5k followers, 200 following".
func gapPenalty(gap string) int {
	if strings.ContainsAny(gap, ",;|\n") || strings.Contains(gap, ". ") {
		return nearWindow / 4
	}
	return 0
}

// isDigitOrLetterGlue reports a number followed straight by letters, as in "3rd" or
// "4GB", except a k/M multiplier.
func isDigitOrLetterGlue(text string, end int) bool {
	c := text[end]
	if !isLetter(c) {
		return false
	}
	if (c == 'k' || c == 'M') && (end+1 == len(text) || !isLetter(text[end+1])) {
		return false
	}
	return true
}

// numberToken is the first number in s as written there.
func numberToken(s string) string {
	return strings.TrimSpace(docNumberRe.FindString(s))
}

// verbatim returns the first candidate that appears in raw as it is, else "". Evidence is
// checked against the document, so it must be quoted exactly.
func verbatim(raw string, candidates ...string) string {
	for _, c := range candidates {
		if c != "" && strings.Contains(raw, c) {
			return c
		}
	}
	return ""
}

// cutFold finds needle in raw ignoring ASCII case and returns it as raw spells it.
func cutFold(raw, needle string) (string, bool) {
	i := strings.Index(asciiLower(raw), asciiLower(needle))
	if i < 0 {
		return "", false
	}
	return raw[i : i+len(needle)], true
}

// text finds a text fact.
func (s *source) text(fs monitor.FactSpec, sel string) (found, bool) {
	if s.kind == kindJSON {
		return s.jsonFact(fs, sel, textConv)
	}
	if s.kind == kindHTML && (isXPath(sel) || isCSS(sel)) {
		v, locator, ok := s.selected(sel)
		if !ok {
			return found{}, false
		}
		text := fmt.Sprint(v)
		return textFound(text, verbatim(s.raw, text), confidenceExact).at(locator), true
	}
	if sel == "" && (fs.Name == "page" || fs.Name == "content" || fs.Name == "text") {
		text := s.visible
		if r := []rune(text); len(r) > maxTextFact {
			text = string(r[:maxTextFact])
		}
		if text == "" {
			return found{}, false
		}
		first, _, _ := strings.Cut(text, "\n")
		return textFound(text, verbatim(s.raw, clipBytes(first, 80), clipBytes(first, 20)), confidencePhrase), true
	}
	for _, k := range keywords(fs, sel) {
		re, err := regexp.Compile(`(?im)\b` + regexp.QuoteMeta(k) + `\s*[:=\-–]\s*([^\n|]{1,120})`)
		if err != nil {
			continue
		}
		m := re.FindStringSubmatch(s.visible)
		if m == nil {
			continue
		}
		value := strings.TrimSpace(m[1])
		if i := strings.Index(value, ". "); i > 0 {
			value = value[:i]
		}
		value = strings.TrimRight(value, ". ")
		if value == "" {
			continue
		}
		return textFound(value, verbatim(s.raw, strings.TrimSpace(m[0]), value), confidenceNearest), true
	}
	if s.kind == kindHTML && sel == "" {
		return s.namedText(fs)
	}
	return found{}, false
}

// clipBytes cuts s to at most n bytes on a rune boundary.
func clipBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }

// boolean finds a boolean fact: in_stock from availability data and wording; a
// contains_* fact or a "text:" selector from the visible text; a CSS selector from whether
// it matches; otherwise a JSON field of that name.
func (s *source) boolean(fs monitor.FactSpec, sel string) (found, bool) {
	switch {
	case strings.HasPrefix(sel, selectorText):
		return s.containsPhrase(strings.TrimPrefix(sel, selectorText))
	case s.kind == kindHTML && (isXPath(sel) || isCSS(sel)):
		// Whether the selector matches, or what an XPath such as boolean(...) computes.
		v, locator, ok := s.selected(sel)
		if b, isBool := v.(bool); isBool {
			ok = b
		}
		text, _ := v.(string)
		return boolFound(ok, verbatim(s.raw, text), confidenceExact).at(locator), true
	case strings.HasPrefix(fs.Name, "contains_") && sel == "":
		return s.containsPhrase(strings.ReplaceAll(strings.TrimPrefix(fs.Name, "contains_"), "_", " "))
	case stockFact(fs.Name):
		return s.inStock()
	case s.kind == kindJSON:
		return s.jsonByName(fs, sel, boolConv)
	}
	return found{}, false
}

func stockFact(name string) bool {
	switch name {
	case factInStock, "instock", "is_in_stock", "available", "is_available", "availability", "back_in_stock":
		return true
	}
	return false
}

// containsPhrase reports whether the visible text (the raw body for JSON) contains the
// phrase, ignoring case and runs of white space. The evidence is the phrase as the
// document spells it, when it appears there verbatim.
func (s *source) containsPhrase(phrase string) (found, bool) {
	phrase = strings.Join(strings.Fields(phrase), " ")
	if phrase == "" {
		return found{}, false
	}
	hay := s.visible
	if s.kind == kindJSON {
		hay = s.raw
	}
	hay = strings.Join(strings.Fields(hay), " ")
	if !containsWords(strings.ToLower(hay), strings.ToLower(phrase)) {
		return boolFound(false, "", confidenceExact), true
	}
	evidence, _ := cutFold(s.raw, phrase)
	return boolFound(true, evidence, confidenceExact), true
}

// containsWords reports whether phrase appears in hay as whole words: "registration
// open" is not in "registration opens soon".
func containsWords(hay, phrase string) bool {
	for from := 0; ; {
		i := strings.Index(hay[from:], phrase)
		if i < 0 {
			return false
		}
		i += from
		end := i + len(phrase)
		before, _ := utf8.DecodeLastRuneInString(hay[:i])
		after, _ := utf8.DecodeRuneInString(hay[end:])
		first, _ := utf8.DecodeRuneInString(phrase)
		last, _ := utf8.DecodeLastRuneInString(phrase)
		if (i == 0 || !wordRune(first) || !wordRune(before)) && (end == len(hay) || !wordRune(last) || !wordRune(after)) {
			return true
		}
		from = i + 1
	}
}

func wordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

// inStock reads availability: schema.org data (JSON fields, JSON-LD, microdata) first,
// then out-of-stock wording, then in-stock wording and buy buttons.
func (s *source) inStock() (found, bool) {
	if s.kind == kindJSON {
		if f, ok := s.jsonAvailability(s.root, ""); ok {
			return f, true
		}
		return s.jsonByName(monitor.FactSpec{Name: factInStock}, "", boolConv)
	}
	if s.kind == kindHTML {
		var (
			res found
			ok  bool
		)
		s.dom.Find(`script[type="application/ld+json"]`).EachWithBreak(func(_ int, sc *goquery.Selection) bool {
			var root any
			if json.Unmarshal([]byte(sc.Text()), &root) != nil {
				return true
			}
			res, ok = s.jsonAvailability(root, "")
			return !ok
		})
		if ok {
			return res, true
		}
		s.dom.Find(`[itemprop="availability"]`).EachWithBreak(func(_ int, el *goquery.Selection) bool {
			v, has := el.Attr("href")
			if !has {
				v, has = el.Attr("content")
			}
			if has {
				if in, known := schemaAvailability(v); known {
					res, ok = boolFound(in, verbatim(s.raw, v, lastSegment(v)), confidenceExact), true
				}
			}
			return !ok
		})
		if ok {
			return res, true
		}
	}
	lower := strings.ToLower(s.visible)
	for _, p := range []string{"out of stock", "sold out", "currently unavailable", "temporarily unavailable", "not in stock", "no longer available", "not available", "notify me when available"} {
		if strings.Contains(lower, p) {
			ev, _ := cutFold(s.raw, p)
			return boolFound(false, ev, confidencePhrase), true
		}
	}
	for _, p := range []string{"in stock", "add to cart", "add to basket", "add to bag", "buy now", "available now", "ships today"} {
		if strings.Contains(lower, p) {
			ev, _ := cutFold(s.raw, p)
			return boolFound(true, ev, confidencePhrase), true
		}
	}
	return found{}, false
}

// jsonAvailability finds the first "availability" field (sorted keys, depth first) that
// holds a schema.org availability.
func (s *source) jsonAvailability(v any, path string) (found, bool) {
	switch node := v.(type) {
	case map[string]any:
		keys := slices.Sorted(maps.Keys(node))
		for _, k := range keys {
			if strings.EqualFold(k, "availability") {
				val := node[k]
				if m, ok := val.(map[string]any); ok {
					val = m["@id"]
				}
				if str, ok := val.(string); ok {
					if in, known := schemaAvailability(str); known {
						ev := path + "/" + escapePointer(k)
						if s.kind != kindJSON {
							ev = verbatim(s.raw, str, lastSegment(str))
						}
						return boolFound(in, ev, confidenceExact), true
					}
				}
			}
		}
		for _, k := range keys {
			if f, ok := s.jsonAvailability(node[k], path+"/"+escapePointer(k)); ok {
				return f, true
			}
		}
	case []any:
		for i, child := range node {
			if f, ok := s.jsonAvailability(child, path+"/"+strconv.Itoa(i)); ok {
				return f, true
			}
		}
	}
	return found{}, false
}

// schemaAvailability maps schema.org ItemAvailability values (full URLs or bare names).
func schemaAvailability(v string) (inStock, known bool) {
	switch strings.ToLower(lastSegment(strings.TrimSpace(v))) {
	case "instock", "instoreonly", "onlineonly", "limitedavailability", "presale", "preorder":
		return true, true
	case "outofstock", "soldout", "discontinued", "backorder", "preorderclosed", "madetoorder":
		return false, true
	}
	return false, false
}

func lastSegment(v string) string {
	if i := strings.LastIndexAny(v, "/:"); i >= 0 {
		return v[i+1:]
	}
	return v
}

// pointer resolves an RFC 6901 JSON pointer.
func pointer(v any, ptr string) (any, bool) {
	if ptr == "" {
		return v, true
	}
	for _, tok := range strings.Split(ptr, "/")[1:] {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		var ok bool
		if v, ok = child(v, tok); !ok {
			return nil, false
		}
	}
	return v, true
}

// dottedPath resolves "data.items[0].price" (and "$.data.price").
func dottedPath(v any, path string) (any, bool) {
	path = strings.TrimPrefix(path, "$.")
	for _, tok := range pathTokenRe.FindAllString(path, -1) {
		tok = strings.TrimSuffix(strings.TrimPrefix(tok, "["), "]")
		var ok bool
		if v, ok = child(v, tok); !ok {
			return nil, false
		}
	}
	return v, true
}

// pathPointer writes a dotted path as the JSON pointer of the same value.
func pathPointer(path string) string {
	var b strings.Builder
	for _, tok := range pathTokenRe.FindAllString(strings.TrimPrefix(path, "$."), -1) {
		b.WriteString("/" + escapePointer(strings.TrimSuffix(strings.TrimPrefix(tok, "["), "]")))
	}
	return b.String()
}

func child(v any, tok string) (any, bool) {
	switch node := v.(type) {
	case map[string]any:
		next, ok := node[tok]
		return next, ok
	case []any:
		i, err := strconv.Atoi(tok)
		if err != nil || i < 0 || i >= len(node) {
			return nil, false
		}
		return node[i], true
	}
	return nil, false
}

func escapePointer(k string) string {
	return strings.ReplaceAll(strings.ReplaceAll(k, "~", "~0"), "/", "~1")
}

// jsonNumber reads a JSON number, or a string holding one such as "$1,075.50".
func jsonNumber(v any) (float64, bool) {
	switch n := v.(type) {
	case json.Number:
		f, err := n.Float64()
		return f, err == nil && !math.IsInf(f, 0)
	case float64:
		return n, true
	case string:
		return parseDocNumber(n)
	}
	return 0, false
}

// jsonText reads a JSON scalar as text.
func jsonText(v any) (string, bool) {
	switch t := v.(type) {
	case string:
		return t, true
	case json.Number:
		return t.String(), true
	case bool:
		return strconv.FormatBool(t), true
	}
	return "", false
}

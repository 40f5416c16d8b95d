package fallback

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"

	"github.com/andybalholm/cascadia"
	"github.com/antchfx/htmlquery"
	"github.com/antchfx/xpath"

	"github.com/vigilhq/vigil/domain"
)

// SelectorMaxLen bounds a selector.
const SelectorMaxLen = 500

// Selector prefixes: a selector says its kind with one of them, or the kind is detected
// from the selector and the document (see CheckSelector).
const (
	prefixCSS   = "css:"
	prefixXPath = "xpath:"
	prefixJSON  = "json:"
	prefixRegex = "re:"
)

// CheckSelector reports, as an EINVALID error naming field, a selector that cannot work:
// too long, with control characters, or not valid as the kind it says or looks to be. The
// kinds are "css:", "xpath:", "json:" (a JSON pointer such as /data/price or a path such as
// data.items[0].price), "text:" (a phrase) and "re:" (a regular expression). Without a
// prefix, a selector starting with "/" is a JSON pointer on JSON and an XPath on HTML, one
// starting with "(" or "./" an XPath, one with CSS punctuation or an HTML tag name a CSS
// selector, and another word a keyword near which the value is.
func CheckSelector(field, sel string) error {
	bad := func(problem string, err error) error {
		return &domain.Error{Code: domain.EINVALID, Message: "The selector cannot be used.", Fields: map[string]string{field: problem}, Err: err}
	}
	if len(sel) > SelectorMaxLen {
		return bad(fmt.Sprintf("must be at most %d characters", SelectorMaxLen), nil)
	}
	if strings.IndexFunc(sel, unicode.IsControl) >= 0 {
		return bad("must not hold control characters", nil)
	}
	sel = strings.TrimSpace(sel)
	switch {
	case sel == "":
		return bad("must not be empty", nil)
	case strings.HasPrefix(sel, prefixRegex):
		if _, err := regexp.Compile(strings.TrimPrefix(sel, prefixRegex)); err != nil {
			return bad("is not a valid regular expression: "+err.Error(), err)
		}
	case strings.HasPrefix(sel, prefixXPath) || strings.HasPrefix(sel, "(") || strings.HasPrefix(sel, "./") || xpathFunctionRe.MatchString(sel):
		if _, err := xpath.Compile(strings.TrimPrefix(sel, prefixXPath)); err != nil {
			return bad("is not a valid XPath: "+err.Error(), err)
		}
	case strings.HasPrefix(sel, prefixJSON):
		expr := strings.TrimSpace(strings.TrimPrefix(sel, prefixJSON))
		if !strings.HasPrefix(expr, "/") && !pathRe.MatchString(expr) {
			return bad("is not a JSON pointer (/data/price) or path (data.items[0].price)", nil)
		}
	case strings.HasPrefix(sel, selectorText):
		if strings.TrimSpace(strings.TrimPrefix(sel, selectorText)) == "" {
			return bad("names no text to look for", nil)
		}
	case strings.HasPrefix(sel, "/"):
		// A JSON pointer is anything after "/"; on HTML it is read as an XPath, so it
		// must be one of those too unless it can only be a pointer.
		if _, err := xpath.Compile(sel); err != nil && strings.ContainsAny(sel, "[]@()=") {
			return bad("is not a valid XPath: "+err.Error(), err)
		}
	case isCSS(sel):
		// A dotted path such as items[1].price is a JSON path, and not CSS.
		if _, err := cascadia.ParseGroup(strings.TrimPrefix(sel, prefixCSS)); err != nil && (strings.HasPrefix(sel, prefixCSS) || !isPath(sel)) {
			return bad("is not a valid CSS selector: "+err.Error(), err)
		}
	}
	return nil
}

// isXPath reports a selector read as an XPath on HTML.
func isXPath(sel string) bool {
	return strings.HasPrefix(sel, prefixXPath) || strings.HasPrefix(sel, "/") || strings.HasPrefix(sel, "(") ||
		strings.HasPrefix(sel, "./") || xpathFunctionRe.MatchString(sel)
}

// xpathFunctionRe matches an XPath that computes a value, such as count(//li).
var xpathFunctionRe = regexp.MustCompile(`^(?:count|string|number|sum|normalize-space|boolean|not|contains|concat|substring|substring-before|substring-after|translate|string-length|round|floor|ceiling)\(`)

// xpathValue evaluates an XPath over the page: a number, a string or a boolean when the
// expression computes one, else the text of the first node it selects. The locator is
// the element's CSS path when the node is an element of the page.
func (s *source) xpathValue(sel string) (value any, locator string, ok bool) {
	expr, err := xpath.Compile(strings.TrimPrefix(sel, prefixXPath))
	if err != nil || len(s.dom.Nodes) == 0 {
		return nil, "", false
	}
	switch v := expr.Evaluate(htmlquery.CreateXPathNavigator(s.dom.Nodes[0])).(type) {
	case float64:
		return v, sel, true
	case string:
		return v, sel, v != ""
	case bool:
		return v, sel, true
	case *xpath.NodeIterator:
		if !v.MoveNext() {
			return nil, "", false
		}
		nav, isHTML := v.Current().(*htmlquery.NodeNavigator)
		if !isHTML {
			return nil, "", false
		}
		n := nav.Current()
		if nav.NodeType() == xpath.AttributeNode {
			text := strings.TrimSpace(nav.Value())
			return text, cssPath(s.dom.FindNodes(n)) + " @" + nav.LocalName(), text != ""
		}
		text := strings.TrimSpace(htmlquery.InnerText(n))
		if el := s.dom.FindNodes(n); el.Length() > 0 && n.Parent != nil {
			text, locator = elementText(el), cssPath(el)
			if text == "" {
				text = strings.TrimSpace(el.AttrOr("content", el.AttrOr("value", "")))
			}
		} else {
			locator = sel // an attribute or a text node
		}
		return text, locator, text != ""
	}
	return nil, "", false
}

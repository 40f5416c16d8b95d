package source

import (
	"bytes"
	"html"
	"regexp"
	"strings"

	xhtml "golang.org/x/net/html"
)

// Kinds of documents, by how their visible text is read.
const (
	kindHTML = "html"
	kindFeed = "feed"
	kindJSON = "json"
	kindText = "text"
)

// kindOf classifies a document by its media type, then by a look at its start.
func kindOf(mediaType string, body []byte) string {
	switch {
	case strings.HasSuffix(mediaType, "json"):
		return kindJSON
	case mediaType == "application/rss+xml" || mediaType == "application/atom+xml":
		return kindFeed
	case mediaType == "text/html" || mediaType == "application/xhtml+xml":
		return kindHTML
	}
	head := bytes.ToLower(bytes.TrimSpace(body[:min(len(body), 512)]))
	switch {
	case bytes.HasPrefix(head, []byte("{")) || bytes.HasPrefix(head, []byte("[")):
		return kindJSON
	case bytes.Contains(head, []byte("<rss")) || bytes.Contains(head, []byte("<feed")):
		return kindFeed
	case bytes.HasPrefix(head, []byte("<!doctype html")) || bytes.Contains(head, []byte("<html")):
		return kindHTML
	case mediaType == "text/xml" || mediaType == "application/xml":
		return kindFeed
	}
	return kindText
}

var blankLines = regexp.MustCompile(`\n\s*\n+`)

// visibleText returns what a reader sees of an HTML page or a feed: text without markup,
// scripts, styles or templates, one line per block. Feed entries often carry escaped HTML,
// which is unescaped and stripped in turn.
func visibleText(body []byte, kind string) string {
	text := stripMarkup(body)
	if kind == kindFeed && strings.Contains(text, "<") {
		text = stripMarkup([]byte(text))
	}
	return strings.TrimSpace(blankLines.ReplaceAllString(text, "\n"))
}

var hidden = map[string]bool{"script": true, "style": true, "noscript": true, "template": true}

var blocks = map[string]bool{"p": true, "div": true, "br": true, "li": true, "tr": true, "h1": true, "h2": true, "h3": true,
	"h4": true, "h5": true, "h6": true, "section": true, "article": true, "header": true, "footer": true, "item": true,
	"entry": true, "title": true, "table": true, "ul": true, "ol": true, "td": true, "th": true}

func stripMarkup(body []byte) string {
	var b strings.Builder
	z := xhtml.NewTokenizer(bytes.NewReader(body))
	skip := 0
	for {
		switch z.Next() {
		case xhtml.ErrorToken:
			return b.String()
		case xhtml.StartTagToken, xhtml.SelfClosingTagToken:
			name, _ := z.TagName()
			if hidden[string(name)] {
				skip++
			}
			if blocks[string(name)] {
				b.WriteByte('\n')
			}
		case xhtml.EndTagToken:
			name, _ := z.TagName()
			if hidden[string(name)] && skip > 0 {
				skip--
			}
			if blocks[string(name)] {
				b.WriteByte('\n')
			}
		case xhtml.TextToken:
			if skip == 0 {
				t := strings.Join(strings.Fields(html.UnescapeString(string(z.Text()))), " ")
				if t != "" {
					if b.Len() > 0 && !strings.HasSuffix(b.String(), "\n") {
						b.WriteByte(' ')
					}
					b.WriteString(t)
				}
			}
		}
	}
}

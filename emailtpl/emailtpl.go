// Package emailtpl renders Vigil's emails: an HTML part and a plain-text part for each kind
// of message. Templates are embedded in the binary and parsed once by New.
//
// The HTML is built for email clients rather than browsers: a single-column table at most
// 600 px wide with inline styles on every element, so it stays readable at 375 px and in
// clients that strip <style> blocks. Every user-provided value goes through html/template,
// which escapes it for its context.
package emailtpl

import (
	"bytes"
	"embed"
	"fmt"
	htmltemplate "html/template"
	texttemplate "text/template"
)

// templateFS holds the email templates: <name>.html for the HTML part, <name>.txt for the text part.
//
//go:embed templates/*.html templates/*.txt
var templateFS embed.FS

// Email is a rendered message, ready to hand to a sender.
type Email struct {
	Subject string
	HTML    string
	Text    string
}

// Renderer renders emails from the embedded templates. It is safe for concurrent use.
type Renderer struct {
	html *htmltemplate.Template
	text *texttemplate.Template
}

// New parses the embedded templates. It fails only if a template is malformed.
func New() (*Renderer, error) {
	html, err := htmltemplate.ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("parse html email templates: %w", err)
	}
	text, err := texttemplate.ParseFS(templateFS, "templates/*.txt")
	if err != nil {
		return nil, fmt.Errorf("parse text email templates: %w", err)
	}
	// Fail on a missing field rather than rendering "<no value>" into a customer's inbox.
	html.Option("missingkey=error")
	text.Option("missingkey=error")
	return &Renderer{html: html, text: text}, nil
}

// render executes the HTML and text templates called name+".html" and name+".txt" with data.
func (r *Renderer) render(name string, data any) (html, text string, err error) {
	var hb, tb bytes.Buffer
	if err := r.html.ExecuteTemplate(&hb, name+".html", data); err != nil {
		return "", "", fmt.Errorf("render %s html: %w", name, err)
	}
	if err := r.text.ExecuteTemplate(&tb, name+".txt", data); err != nil {
		return "", "", fmt.Errorf("render %s text: %w", name, err)
	}
	return hb.String(), tb.String(), nil
}

// layout is what the frame shared by every HTML email shows (templates/layout.html).
type layout struct {
	Title          string
	Preheader      string
	ButtonLabel    string
	ButtonURL      string
	FooterNote     string
	UnsubscribeURL string
}

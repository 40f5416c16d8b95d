// Package aitest helps test code that talks to AI providers, in any package: fake Claude
// and OpenAI servers that speak the real wire formats and answer by delegating to another
// ai.Provider (usually the rule-based one), scripted failures, and RunContract, the suite
// every ai.Provider implementation must pass.
//
// The fakes check what a real server would reject (method, path, headers, tool_choice or a
// strict response_format) and fail the test on a malformed request. They read the
// operation's inputs back from the tagged sections of the user message that the claude and
// openai packages write: JSON in <request>, <spec>, <facts> and <document_info>, and the raw
// document last in <document>.
package aitest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/ai"
	"github.com/vigilhq/vigil/domain/monitor"
)

// Operation names: the tool (Claude) or schema (OpenAI) each request asks for.
const (
	OpClassify = "record_spec"
	OpExtract  = "record_facts"
	OpEvaluate = "record_verdict"
	OpSuggest  = "record_selector"
)

// FakeServer is an httptest server speaking a provider's wire format. It is safe for
// concurrent use and closes itself when the test ends.
type FakeServer struct {
	t        testing.TB
	srv      *httptest.Server
	model    ai.Provider
	base     string
	mu       sync.Mutex
	requests int
	script   []scripted
	last     Request
	// errorBody renders an error in the provider's documented shape.
	errorBody func(status int, msg string) string
}

// Request is one request a FakeServer received.
type Request struct {
	Header http.Header
	Body   []byte
}

type scripted struct {
	status  int
	headers map[string]string
	body    string
}

// wireError is a request the real server would reject.
type wireError struct{ msg string }

func (e *wireError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &wireError{msg: fmt.Sprintf(format, args...)}
}

func newFakeServer(t testing.TB, model ai.Provider, basePath string, errorBody func(int, string) string, handle func(f *FakeServer, r *http.Request, body []byte) (any, error)) *FakeServer {
	t.Helper()
	f := &FakeServer{t: t, model: model, errorBody: errorBody}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if s, ok := f.record(r, body); ok {
			for k, v := range s.headers {
				w.Header().Set(k, v)
			}
			if w.Header().Get("Content-Type") == "" {
				w.Header().Set("Content-Type", "application/json")
			}
			w.WriteHeader(s.status)
			_, _ = io.WriteString(w, s.body)
			return
		}
		answer, err := handle(f, r, body)
		w.Header().Set("Content-Type", "application/json")
		var we *wireError
		switch {
		case errors.As(err, &we):
			f.t.Errorf("aitest: malformed request: %v", err)
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, f.errorBody(http.StatusBadRequest, err.Error()))
		case err != nil:
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, f.errorBody(http.StatusInternalServerError, err.Error()))
		default:
			_ = json.NewEncoder(w).Encode(answer)
		}
	}))
	f.base = f.srv.URL + basePath
	t.Cleanup(f.srv.Close)
	return f
}

// record counts r and pops the next scripted reply, if any.
func (f *FakeServer) record(r *http.Request, body []byte) (scripted, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests++
	f.last = Request{Header: r.Header.Clone(), Body: body}
	if len(f.script) == 0 {
		return scripted{}, false
	}
	s := f.script[0]
	f.script = f.script[1:]
	return s, true
}

func (f *FakeServer) seq() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests
}

// URL returns the base URL to configure the provider with: the server root for Claude
// (the client appends /v1/messages), the root plus /v1 for OpenAI (the client appends
// /chat/completions).
func (f *FakeServer) URL() string { return f.base }

// Requests returns how many requests the server received, scripted ones included.
func (f *FakeServer) Requests() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests
}

// LastRequest returns the last request received.
func (f *FakeServer) LastRequest() Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last
}

// FailNext makes the next n requests answer status with headers and body, verbatim. An
// empty body is replaced by an error body of the provider's documented shape.
func (f *FakeServer) FailNext(n int, status int, headers map[string]string, body string) {
	if body == "" {
		body = f.errorBody(status, http.StatusText(status))
	}
	f.push(n, scripted{status: status, headers: headers, body: body})
}

// ReplyRaw makes the next n requests answer 200 with body, verbatim: for malformed
// output, truncation and refusals. ClaudeToolUse and OpenAIMessage build such bodies.
func (f *FakeServer) ReplyRaw(n int, body string) {
	f.push(n, scripted{status: http.StatusOK, body: body})
}

func (f *FakeServer) push(n int, s scripted) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for range n {
		f.script = append(f.script, s)
	}
}

// answer works out the operation's inputs from the user message, asks the model and
// returns the answer in the shape of the operation's schema.
func (f *FakeServer) answer(ctx context.Context, op, content string) (map[string]any, error) {
	switch op {
	case OpClassify:
		var req struct {
			Prompt    string `json:"prompt"`
			SourceURL string `json:"source_url"`
		}
		if err := decodeSection(content, "request", &req); err != nil {
			return nil, err
		}
		spec, _, err := f.model.Classify(ctx, req.Prompt, ai.Hints{SourceURL: req.SourceURL})
		if domain.ErrorCode(err) == domain.EINVALID {
			return specAnswer(monitor.Spec{}, domain.ErrorMessage(err)), nil
		}
		if err != nil {
			return nil, fmt.Errorf("model: %w", err)
		}
		return specAnswer(spec, ""), nil
	case OpExtract:
		var spec monitor.Spec
		if err := decodeSection(content, "spec", &spec); err != nil {
			return nil, err
		}
		doc, err := document(content)
		if err != nil {
			return nil, err
		}
		facts, _, err := f.model.Extract(ctx, spec, doc)
		if err != nil && domain.ErrorCode(err) != domain.EINVALID { // EINVALID: not found, answer nulls
			return nil, fmt.Errorf("model: %w", err)
		}
		return factsAnswer(spec, facts), nil
	case OpEvaluate:
		var (
			spec  monitor.Spec
			facts []monitor.Fact
		)
		if err := decodeSection(content, "spec", &spec); err != nil {
			return nil, err
		}
		if err := decodeSection(content, "facts", &facts); err != nil {
			return nil, err
		}
		doc, err := document(content)
		if err != nil {
			return nil, err
		}
		v, _, err := f.model.Evaluate(ctx, spec, facts, doc)
		if err != nil {
			return nil, fmt.Errorf("model: %w", err)
		}
		return map[string]any{"state": string(v.State), "confidence": v.Confidence, "explanation": v.Explanation}, nil
	case OpSuggest:
		var req ai.SelectorRequest
		if err := decodeSection(content, "fact", &req.Fact); err != nil {
			return nil, err
		}
		var good struct {
			Value    any    `json:"value"`
			Unit     string `json:"unit"`
			Evidence string `json:"evidence"`
			Locator  string `json:"locator"`
		}
		if err := decodeSection(content, "last_good", &good); err != nil {
			return nil, err
		}
		req.LastGood = monitor.Fact{Key: req.Fact.Name, Unit: good.Unit, Evidence: good.Evidence, Locator: good.Locator}
		switch v := good.Value.(type) {
		case float64:
			req.LastGood.Number = &v
		case string:
			req.LastGood.Text = &v
		case bool:
			req.LastGood.Bool = &v
		}
		doc, err := document(content)
		if err != nil {
			return nil, err
		}
		suggester, ok := f.model.(ai.SelectorSuggester)
		if !ok { // the model cannot tell: the fact is not found
			return map[string]any{"selector": "", "reason": "not found"}, nil
		}
		sel, _, err := suggester.SuggestSelector(ctx, req, doc)
		if err != nil {
			return nil, fmt.Errorf("model: %w", err)
		}
		return map[string]any{"selector": sel, "reason": "found"}, nil
	}
	return nil, badRequest("unknown operation %q", op)
}

// Section returns the text of the first <tag> section of a user message; for "document",
// which comes last and holds raw text, it runs to the last closing tag.
func Section(content, tag string) (string, bool) {
	open, closing := "<"+tag+">\n", "\n</"+tag+">"
	i := strings.Index(content, open)
	if i < 0 {
		return "", false
	}
	rest := content[i+len(open):]
	j := strings.Index(rest, closing)
	if tag == "document" {
		j = strings.LastIndex(rest, closing)
	}
	if j < 0 {
		return "", false
	}
	return rest[:j], true
}

func decodeSection(content, tag string, v any) error {
	s, ok := Section(content, tag)
	if !ok {
		return badRequest("the user message has no <%s> section", tag)
	}
	if err := json.Unmarshal([]byte(s), v); err != nil {
		return badRequest("the <%s> section is not valid JSON: %v", tag, err)
	}
	return nil
}

func document(content string) (ai.Document, error) {
	body, ok := Section(content, "document")
	if !ok {
		return ai.Document{}, nil // no document: a monitor without a source
	}
	var info struct {
		URL         string    `json:"url"`
		ContentType string    `json:"content_type"`
		FetchedAt   time.Time `json:"fetched_at"`
	}
	if err := decodeSection(content, "document_info", &info); err != nil {
		return ai.Document{}, err
	}
	return ai.Document{URL: info.URL, ContentType: info.ContentType, FetchedAt: info.FetchedAt, Body: []byte(body)}, nil
}

func orNull(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// specAnswer renders a spec, or a rejection, with every property of the schema present.
func specAnswer(s monitor.Spec, rejection string) map[string]any {
	facts := make([]any, 0, len(s.Facts))
	for _, f := range s.Facts {
		facts = append(facts, map[string]any{"name": f.Name, "type": string(f.Type), "unit": orNull(f.Unit),
			"description": f.Description, "selector": orNull(f.Selector)})
	}
	var change any
	if c := s.Change; c != nil {
		change = map[string]any{"fact": c.Fact, "measure": c.Measure, "operator": c.Operator, "threshold": c.Threshold, "window": orNull(c.Window)}
	}
	kind := s.Kind
	if kind == "" {
		kind = monitor.KindCurrentState
	}
	warnings := s.Warnings
	if warnings == nil {
		warnings = []string{}
	}
	return map[string]any{"rejection": orNull(rejection), "kind": string(kind), "summary": s.Summary, "facts": facts,
		"condition": orNull(s.Condition), "change": change, "needs_source": s.NeedsSource, "confidence": s.Confidence, "warnings": warnings}
}

// factsAnswer renders one entry per fact of spec, null values for facts not found.
func factsAnswer(spec monitor.Spec, facts []monitor.Fact) map[string]any {
	byKey := make(map[string]monitor.Fact, len(facts))
	for _, f := range facts {
		byKey[f.Key] = f
	}
	out := make([]any, 0, len(spec.Facts))
	for _, fs := range spec.Facts {
		f, ok := byKey[fs.Name]
		entry := map[string]any{"key": fs.Name, "number": nil, "text": nil, "bool": nil, "unit": nil, "evidence": "", "confidence": 0.0}
		if ok {
			if f.Number != nil {
				entry["number"] = *f.Number
			}
			if f.Text != nil {
				entry["text"] = *f.Text
			}
			if f.Bool != nil {
				entry["bool"] = *f.Bool
			}
			entry["unit"], entry["evidence"], entry["confidence"] = orNull(f.Unit), f.Evidence, f.Confidence
		}
		out = append(out, entry)
	}
	return map[string]any{"facts": out}
}

// tokenCount approximates a token count the way real usage numbers scale: ~4 bytes a token.
func tokenCount(n int) int { return n/4 + 1 }

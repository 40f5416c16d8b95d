// Package claude is the AI provider backed by Anthropic's Messages API. Structured answers
// come from a forced tool call: each operation offers one tool (record_spec, record_facts,
// record_verdict) whose input schema is the answer's shape, and tool_choice makes the model
// call it. Answers are validated before they leave the package; anything Vigil cannot use is
// a retryable *ai.Error, never a panic.
package claude

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/vigilhq/vigil/adapters/ai/llm"
	"github.com/vigilhq/vigil/adapters/ai/pricing"
	"github.com/vigilhq/vigil/domain/ai"
	"github.com/vigilhq/vigil/domain/monitor"
)

// Name identifies this provider in usage records and errors.
const Name = "claude"

// Defaults for Config.
const (
	BaseURLDefault          = "https://api.anthropic.com"
	ModelDefault            = "claude-sonnet-4-5"
	VersionDefault          = "2023-06-01"
	MaxTokensDefault        = 4096
	MaxDocumentCharsDefault = 100_000
	MaxExcerptCharsDefault  = 20_000
	TimeoutDefault          = 2 * time.Minute
)

const (
	// webSearchMaxUses bounds the searches of one extraction.
	webSearchMaxUses = 5
	// webSearchCostPerRequest is Anthropic's list price of one web search ($10 per 1,000).
	webSearchCostPerRequest = 0.01
	// maxTurns bounds the continuations of a turn the API paused (stop_reason pause_turn,
	// sent during long server-side web searches).
	maxTurns = 4
	// maxResponseBytes bounds a response body; answers are a few kilobytes.
	maxResponseBytes = 4 << 20
	// maxErrorMessageLen bounds an API error message copied into an error.
	maxErrorMessageLen = 300
)

// Config configures the provider. Only APIKey is required.
type Config struct {
	APIKey     string
	BaseURL    string // default BaseURLDefault; the API path /v1/messages is appended
	Model      string // default ModelDefault
	MaxTokens  int    // answer budget, default MaxTokensDefault
	Prices     pricing.Table
	HTTPClient *http.Client // default a client with TimeoutDefault; callers bound calls with ctx
	Version    string       // anthropic-version header, default VersionDefault
	// WebSearch lets extraction search the web (Anthropic's server-side web_search tool)
	// for monitors without a source document.
	WebSearch bool
	// MaxDocumentChars cuts documents sent for extraction, default MaxDocumentCharsDefault.
	MaxDocumentChars int
	// MaxExcerptChars cuts documents sent as context for evaluation, default MaxExcerptCharsDefault.
	MaxExcerptChars int
}

// Provider is the Claude provider. It is safe for concurrent use.
type Provider struct {
	cfg      Config
	endpoint string
	now      func() time.Time
}

var _ ai.Provider = (*Provider)(nil)

// New returns a Claude provider, checking cfg and filling its defaults. now measures latency.
func New(cfg Config, now func() time.Time) (*Provider, error) {
	if strings.TrimSpace(cfg.APIKey) == "" {
		return nil, errors.New("claude: an API key is required")
	}
	if now == nil {
		return nil, errors.New("claude: a clock is required")
	}
	cfg.BaseURL = strings.TrimRight(cmp.Or(cfg.BaseURL, BaseURLDefault), "/")
	if u, err := url.Parse(cfg.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("claude: base URL %q must be an http or https URL", cfg.BaseURL)
	}
	cfg.Model = cmp.Or(cfg.Model, ModelDefault)
	cfg.Version = cmp.Or(cfg.Version, VersionDefault)
	cfg.MaxTokens = cmp.Or(cfg.MaxTokens, MaxTokensDefault)
	cfg.MaxDocumentChars = cmp.Or(cfg.MaxDocumentChars, MaxDocumentCharsDefault)
	cfg.MaxExcerptChars = cmp.Or(cfg.MaxExcerptChars, MaxExcerptCharsDefault)
	if cfg.MaxTokens < 0 || cfg.MaxDocumentChars < 0 || cfg.MaxExcerptChars < 0 {
		return nil, errors.New("claude: token and character limits must be positive")
	}
	if cfg.Prices == nil {
		cfg.Prices = pricing.Default()
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: TimeoutDefault}
	}
	return &Provider{cfg: cfg, endpoint: cfg.BaseURL + "/v1/messages", now: now}, nil
}

// Classify implements ai.Provider. A prompt the model rejects is an EINVALID
// *domain.Error carrying the model's reason.
func (p *Provider) Classify(ctx context.Context, prompt string, hints ai.Hints) (monitor.Spec, ai.Usage, error) {
	start := p.now()
	content, err := llm.ClassifyContent(prompt, hints)
	if err != nil {
		return monitor.Spec{}, p.usage(start, tokens{}), fmt.Errorf("claude classify: %w", err)
	}
	input, tok, err := p.call(ctx, call{system: llm.ClassifySystem(llm.ToolCall), content: content, tool: llm.RecordSpec,
		description: "Record the monitor spec for the user's request, or the reason it cannot be monitored.", schema: llm.SpecSchema()})
	u := p.usage(start, tok)
	if err != nil {
		return monitor.Spec{}, u, err
	}
	spec, err := llm.DecodeSpec(input)
	if err != nil {
		return monitor.Spec{}, u, p.answerError(err)
	}
	return spec, u, nil
}

// Extract implements ai.Provider. A fact missing from the document is an EINVALID
// *domain.Error. With WebSearch on and an empty document, Claude searches the web.
func (p *Provider) Extract(ctx context.Context, spec monitor.Spec, doc ai.Document) ([]monitor.Fact, ai.Usage, error) {
	start := p.now()
	content, err := llm.ExtractContent(spec, doc, p.cfg.MaxDocumentChars)
	if err != nil {
		return nil, p.usage(start, tokens{}), fmt.Errorf("claude extract: %w", err)
	}
	system := llm.ExtractSystem(llm.ToolCall, p.cfg.MaxDocumentChars)
	webSearch := p.cfg.WebSearch && len(doc.Body) == 0
	if webSearch {
		system += llm.ExtractWebSystem
	}
	input, tok, err := p.call(ctx, call{system: system, content: content, tool: llm.RecordFacts,
		description: "Record the value of every fact of the spec, with verbatim evidence.", schema: llm.FactsSchema(spec), webSearch: webSearch})
	u := p.usage(start, tok)
	if err != nil {
		return nil, u, err
	}
	facts, err := llm.DecodeFacts(input, spec, cmp.Or(doc.FetchedAt, start))
	if err != nil {
		return nil, u, p.answerError(err)
	}
	return facts, u, nil
}

// Evaluate implements ai.Provider.
func (p *Provider) Evaluate(ctx context.Context, spec monitor.Spec, facts []monitor.Fact, doc ai.Document) (monitor.Verdict, ai.Usage, error) {
	start := p.now()
	content, err := llm.EvaluateContent(spec, facts, doc, p.cfg.MaxExcerptChars)
	if err != nil {
		return monitor.Verdict{}, p.usage(start, tokens{}), fmt.Errorf("claude evaluate: %w", err)
	}
	input, tok, err := p.call(ctx, call{system: llm.EvaluateSystem(llm.ToolCall), content: content, tool: llm.RecordVerdict,
		description: "Record whether the monitor's condition holds.", schema: llm.VerdictSchema()})
	u := p.usage(start, tok)
	if err != nil {
		return monitor.Verdict{}, u, err
	}
	v, err := llm.DecodeVerdict(input)
	if err != nil {
		return monitor.Verdict{}, u, p.answerError(err)
	}
	return v, u, nil
}

// tokens is what the API reported using, summed over the turns of one call.
type tokens struct {
	model         string
	input, output int
	webSearches   int
}

func (p *Provider) usage(start time.Time, t tokens) ai.Usage {
	model := cmp.Or(t.model, p.cfg.Model)
	return ai.Usage{
		Provider:     Name,
		Model:        model,
		InputTokens:  t.input,
		OutputTokens: t.output,
		Cost:         p.cfg.Prices.Cost(model, t.input, t.output) + float64(t.webSearches)*webSearchCostPerRequest,
		Latency:      p.now().Sub(start),
	}
}

// call is one operation: a system prompt, the user content and the tool to force.
type call struct {
	system, content   string
	tool, description string
	schema            map[string]any
	webSearch         bool
}

type message struct {
	Role    string `json:"role"`
	Content any    `json:"content"` // a string, or the content blocks of a paused assistant turn
}

type messagesRequest struct {
	Model       string         `json:"model"`
	MaxTokens   int            `json:"max_tokens"`
	System      string         `json:"system"`
	Messages    []message      `json:"messages"`
	Tools       []any          `json:"tools"`
	ToolChoice  map[string]any `json:"tool_choice"`
	Temperature float64        `json:"temperature"` // always 0: the same input should give the same answer
}

type messagesResponse struct {
	Model      string            `json:"model"`
	Content    []json.RawMessage `json:"content"`
	StopReason string            `json:"stop_reason"`
	Usage      struct {
		InputTokens              int `json:"input_tokens"`
		OutputTokens             int `json:"output_tokens"`
		CacheCreationInputTokens int `json:"cache_creation_input_tokens"`
		CacheReadInputTokens     int `json:"cache_read_input_tokens"`
		ServerToolUse            struct {
			WebSearchRequests int `json:"web_search_requests"`
		} `json:"server_tool_use"`
	} `json:"usage"`
}

type contentBlock struct {
	Type  string          `json:"type"`
	Name  string          `json:"name"`
	Input json.RawMessage `json:"input"`
}

// call sends c and returns the input of the forced tool call.
func (p *Provider) call(ctx context.Context, c call) (json.RawMessage, tokens, error) {
	req := messagesRequest{
		Model:     p.cfg.Model,
		MaxTokens: p.cfg.MaxTokens,
		System:    c.system,
		Messages:  []message{{Role: "user", Content: c.content}},
		Tools: []any{map[string]any{
			"name": c.tool, "description": c.description, "input_schema": c.schema,
		}},
		ToolChoice: map[string]any{"type": "tool", "name": c.tool},
	}
	if c.webSearch {
		// Forcing record_facts would skip the search, so let the model pick a tool: it
		// searches first (server-side, within this response), then records the facts.
		req.Tools = append(req.Tools, map[string]any{"type": "web_search_20250305", "name": "web_search", "max_uses": webSearchMaxUses})
		req.ToolChoice = map[string]any{"type": "any"}
	}
	var (
		tok    tokens
		paused []json.RawMessage // the assistant's content so far, when the API paused the turn
	)
	for turn := 1; ; turn++ {
		resp, err := p.post(ctx, req)
		if err != nil {
			return nil, tok, err
		}
		tok.model = resp.Model
		tok.input += resp.Usage.InputTokens + resp.Usage.CacheCreationInputTokens + resp.Usage.CacheReadInputTokens
		tok.output += resp.Usage.OutputTokens
		tok.webSearches += resp.Usage.ServerToolUse.WebSearchRequests
		switch resp.StopReason {
		case "max_tokens":
			return nil, tok, p.fail(0, true, 0, "Claude's answer was cut off", fmt.Errorf("stop_reason max_tokens after %d output tokens", resp.Usage.OutputTokens))
		case "refusal":
			return nil, tok, p.fail(0, false, 0, "Claude refused to answer", errors.New("stop_reason refusal"))
		case "pause_turn":
			if turn >= maxTurns {
				return nil, tok, p.fail(0, true, 0, "Claude did not finish its answer", fmt.Errorf("still paused after %d turns", turn))
			}
			paused = append(paused, resp.Content...)
			req.Messages = []message{req.Messages[0], {Role: "assistant", Content: paused}}
			continue
		}
		for _, raw := range resp.Content {
			var b contentBlock
			if err := json.Unmarshal(raw, &b); err != nil {
				return nil, tok, p.malformed(fmt.Errorf("decode content block: %w", err))
			}
			if b.Type == "tool_use" && b.Name == c.tool {
				return b.Input, tok, nil
			}
		}
		return nil, tok, p.malformed(fmt.Errorf("no %s tool call in the answer (stop_reason %q)", c.tool, resp.StopReason))
	}
}

// post sends one Messages API request and maps every failure to an *ai.Error.
func (p *Provider) post(ctx context.Context, body messagesRequest) (*messagesResponse, error) {
	data, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("claude: encode request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.endpoint, bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("claude: build request: %w", err)
	}
	req.Header.Set("x-api-key", p.cfg.APIKey)
	req.Header.Set("anthropic-version", p.cfg.Version)
	req.Header.Set("content-type", "application/json")
	req.Header.Set("accept", "application/json")
	resp, err := p.cfg.HTTPClient.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, p.fail(0, true, 0, "Claude did not answer in time", err)
		}
		return nil, p.fail(0, true, 0, "Could not reach Claude", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return nil, p.fail(resp.StatusCode, true, 0, "Claude's answer was interrupted", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, p.statusError(resp, raw)
	}
	if len(raw) > maxResponseBytes {
		return nil, p.malformed(fmt.Errorf("response larger than %d bytes", maxResponseBytes))
	}
	var out messagesResponse
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, p.malformed(fmt.Errorf("decode response: %w", err))
	}
	return &out, nil
}

// statusError maps a non-200 answer. Error bodies have the documented shape
// {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}.
func (p *Provider) statusError(resp *http.Response, body []byte) error {
	var e struct {
		Error struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"error"`
	}
	_ = json.Unmarshal(body, &e) // a body of another shape leaves the message empty
	detail := p.redact(cmp.Or(e.Error.Message, http.StatusText(resp.StatusCode)))
	cause := fmt.Errorf("%s: %s", cmp.Or(e.Error.Type, "error"), detail)
	status := resp.StatusCode
	after := llm.RetryAfter(resp.Header.Get("retry-after"), p.now())
	switch {
	case status == http.StatusTooManyRequests:
		return p.fail(status, true, after, "Claude's rate limit was reached", cause)
	case status == 529 || e.Error.Type == "overloaded_error":
		return p.fail(status, true, after, "Claude is overloaded", cause)
	case status >= 500, status == http.StatusRequestTimeout:
		return p.fail(status, true, after, "Claude is unavailable", cause)
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return p.fail(status, false, 0, "Claude rejected the API key", cause)
	default:
		return p.fail(status, false, 0, "Claude rejected the request: "+detail, cause)
	}
}

// redact bounds a server message and removes the API key, should a server ever echo it.
func (p *Provider) redact(s string) string { return llm.Redact(s, p.cfg.APIKey, maxErrorMessageLen) }

// answerError passes on a definite answer and turns anything else into a malformed-output error.
func (p *Provider) answerError(err error) error { return llm.AnswerError(Name, "Claude", err) }

func (p *Provider) malformed(err error) *ai.Error { return llm.Malformed(Name, "Claude", err) }

// fail builds the provider error (llm.Fail).
func (p *Provider) fail(status int, retryable bool, after time.Duration, msg string, cause error) *ai.Error {
	return llm.Fail(Name, status, retryable, after, msg, cause)
}

var _ ai.SelectorSuggester = (*Provider)(nil)

// SuggestSelector implements ai.SelectorSuggester: Claude reads the changed markup and
// names the element that holds the fact now.
func (p *Provider) SuggestSelector(ctx context.Context, req ai.SelectorRequest, doc ai.Document) (string, ai.Usage, error) {
	start := p.now()
	content, err := llm.SuggestContent(req, doc, p.cfg.MaxDocumentChars)
	if err != nil {
		return "", p.usage(start, tokens{}), fmt.Errorf("claude suggest: %w", err)
	}
	input, tok, err := p.call(ctx, call{system: llm.SuggestSystem(llm.ToolCall), content: content, tool: llm.RecordSelector,
		description: "Record the selector that reads the fact from the document now.", schema: llm.SelectorSchema()})
	u := p.usage(start, tok)
	if err != nil {
		return "", u, err
	}
	sel, err := llm.DecodeSelector(input)
	if err != nil {
		return "", u, p.malformed(err)
	}
	return sel, u, nil
}

// Package openai is the AI provider backed by the Chat Completions API with strict
// structured outputs (response_format json_schema). It needs nothing OpenAI-only, so the
// same code serves OpenAI-compatible servers (Ollama, vLLM, llama.cpp) through BaseURL, with
// no API key for local ones. Answers are validated before they leave the package; anything
// Vigil cannot use is a retryable *ai.Error, never a panic.
package openai

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
	"strconv"
	"strings"
	"time"

	"github.com/vigilhq/vigil/adapters/ai/llm"
	"github.com/vigilhq/vigil/adapters/ai/pricing"
	"github.com/vigilhq/vigil/domain/ai"
	"github.com/vigilhq/vigil/domain/monitor"
)

// NameDefault identifies this provider in usage records and errors unless Config.Name says otherwise.
const NameDefault = "openai"

// Defaults for Config.
const (
	BaseURLDefault          = "https://api.openai.com/v1"
	ModelDefault            = "gpt-4o-mini"
	MaxDocumentCharsDefault = 100_000
	MaxExcerptCharsDefault  = 20_000
	TimeoutDefault          = 2 * time.Minute
)

const (
	// maxResponseBytes bounds a response body; answers are a few kilobytes.
	maxResponseBytes = 4 << 20
	// maxErrorMessageLen bounds a server message copied into an error.
	maxErrorMessageLen = 300
)

// Config configures the provider. Every field is optional: a local server needs only
// BaseURL and Model.
type Config struct {
	// Name identifies the provider in usage and errors, default NameDefault; set it to
	// "ollama" or "vllm" to tell a local server apart.
	Name string
	// APIKey is sent as a bearer token; leave it empty for servers that need none.
	APIKey string
	// BaseURL is the API root, default BaseURLDefault (http://localhost:11434/v1 for
	// Ollama); /chat/completions is appended.
	BaseURL string
	Model   string // default ModelDefault
	// MaxTokens bounds the answer (sent as max_completion_tokens); 0 leaves it to the server.
	MaxTokens  int
	Prices     pricing.Table // default pricing.Default(); unknown models cost 0
	HTTPClient *http.Client  // default a client with TimeoutDefault; callers bound calls with ctx
	// MaxDocumentChars cuts documents sent for extraction, default MaxDocumentCharsDefault.
	MaxDocumentChars int
	// MaxExcerptChars cuts documents sent as context for evaluation, default MaxExcerptCharsDefault.
	MaxExcerptChars int
}

// Provider is the OpenAI(-compatible) provider. It is safe for concurrent use.
type Provider struct {
	cfg      Config
	label    string // the provider's name in messages for users
	endpoint string
	now      func() time.Time
}

var _ ai.Provider = (*Provider)(nil)

// New returns a provider, checking cfg and filling its defaults. now measures latency.
func New(cfg Config, now func() time.Time) (*Provider, error) {
	if now == nil {
		return nil, errors.New("openai: a clock is required")
	}
	cfg.Name = cmp.Or(cfg.Name, NameDefault)
	cfg.BaseURL = strings.TrimRight(cmp.Or(cfg.BaseURL, BaseURLDefault), "/")
	if u, err := url.Parse(cfg.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%s: base URL %q must be an http or https URL", cfg.Name, cfg.BaseURL)
	}
	cfg.Model = cmp.Or(cfg.Model, ModelDefault)
	cfg.MaxDocumentChars = cmp.Or(cfg.MaxDocumentChars, MaxDocumentCharsDefault)
	cfg.MaxExcerptChars = cmp.Or(cfg.MaxExcerptChars, MaxExcerptCharsDefault)
	if cfg.MaxTokens < 0 || cfg.MaxDocumentChars < 0 || cfg.MaxExcerptChars < 0 {
		return nil, fmt.Errorf("%s: token and character limits must be positive", cfg.Name)
	}
	if cfg.Prices == nil {
		cfg.Prices = pricing.Default()
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: TimeoutDefault}
	}
	label := cfg.Name
	if label == NameDefault {
		label = "OpenAI"
	}
	return &Provider{cfg: cfg, label: label, endpoint: cfg.BaseURL + "/chat/completions", now: now}, nil
}

// Classify implements ai.Provider. A prompt the model rejects is an EINVALID
// *domain.Error carrying the model's reason.
func (p *Provider) Classify(ctx context.Context, prompt string, hints ai.Hints) (monitor.Spec, ai.Usage, error) {
	start := p.now()
	content, err := llm.ClassifyContent(prompt, hints)
	if err != nil {
		return monitor.Spec{}, p.usage(start, tokens{}), fmt.Errorf("%s classify: %w", p.cfg.Name, err)
	}
	answer, tok, err := p.call(ctx, llm.ClassifySystem(llm.JSONSchema), content, llm.RecordSpec, llm.SpecSchema())
	u := p.usage(start, tok)
	if err != nil {
		return monitor.Spec{}, u, err
	}
	spec, err := llm.DecodeSpec(answer)
	if err != nil {
		return monitor.Spec{}, u, p.answerError(err)
	}
	return spec, u, nil
}

// Extract implements ai.Provider. A fact missing from the document is an EINVALID
// *domain.Error.
func (p *Provider) Extract(ctx context.Context, spec monitor.Spec, doc ai.Document) ([]monitor.Fact, ai.Usage, error) {
	start := p.now()
	content, err := llm.ExtractContent(spec, doc, p.cfg.MaxDocumentChars)
	if err != nil {
		return nil, p.usage(start, tokens{}), fmt.Errorf("%s extract: %w", p.cfg.Name, err)
	}
	system := llm.ExtractSystem(llm.JSONSchema, p.cfg.MaxDocumentChars)
	answer, tok, err := p.call(ctx, system, content, llm.RecordFacts, llm.FactsSchema(spec))
	u := p.usage(start, tok)
	if err != nil {
		return nil, u, err
	}
	facts, err := llm.DecodeFacts(answer, spec, cmp.Or(doc.FetchedAt, start))
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
		return monitor.Verdict{}, p.usage(start, tokens{}), fmt.Errorf("%s evaluate: %w", p.cfg.Name, err)
	}
	answer, tok, err := p.call(ctx, llm.EvaluateSystem(llm.JSONSchema), content, llm.RecordVerdict, llm.VerdictSchema())
	u := p.usage(start, tok)
	if err != nil {
		return monitor.Verdict{}, u, err
	}
	v, err := llm.DecodeVerdict(answer)
	if err != nil {
		return monitor.Verdict{}, u, p.answerError(err)
	}
	return v, u, nil
}

// tokens is what the server reported using.
type tokens struct {
	model         string
	input, output int
}

func (p *Provider) usage(start time.Time, t tokens) ai.Usage {
	model := cmp.Or(t.model, p.cfg.Model)
	return ai.Usage{
		Provider:     p.cfg.Name,
		Model:        model,
		InputTokens:  t.input,
		OutputTokens: t.output,
		Cost:         p.cfg.Prices.Cost(model, t.input, t.output),
		Latency:      p.now().Sub(start),
	}
}

type chatMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type chatRequest struct {
	Model               string         `json:"model"`
	Messages            []chatMessage  `json:"messages"`
	ResponseFormat      map[string]any `json:"response_format"`
	MaxCompletionTokens int            `json:"max_completion_tokens,omitempty"`
}

type chatResponse struct {
	Model   string `json:"model"`
	Choices []struct {
		Message struct {
			Content json.RawMessage `json:"content"` // a string, or null with a refusal
			Refusal string          `json:"refusal"`
		} `json:"message"`
		FinishReason string `json:"finish_reason"`
	} `json:"choices"`
	Usage struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
	} `json:"usage"`
}

// call sends one chat completion constrained to schema and returns the JSON answer.
func (p *Provider) call(ctx context.Context, system, content, name string, schema map[string]any) ([]byte, tokens, error) {
	req := chatRequest{
		Model:    p.cfg.Model,
		Messages: []chatMessage{{Role: "system", Content: system}, {Role: "user", Content: content}},
		ResponseFormat: map[string]any{
			"type":        "json_schema",
			"json_schema": map[string]any{"name": name, "strict": true, "schema": schema},
		},
		MaxCompletionTokens: p.cfg.MaxTokens,
	}
	resp, err := p.post(ctx, req)
	if err != nil {
		return nil, tokens{}, err
	}
	tok := tokens{model: resp.Model, input: resp.Usage.PromptTokens, output: resp.Usage.CompletionTokens}
	if len(resp.Choices) == 0 {
		return nil, tok, p.malformed(errors.New("no choices in the answer"))
	}
	choice := resp.Choices[0]
	if refusal := strings.TrimSpace(choice.Message.Refusal); refusal != "" {
		msg := fmt.Sprintf("%s refused: %s", p.label, p.redact(refusal))
		return nil, tok, p.fail(0, false, 0, msg, errors.New("refusal"))
	}
	switch choice.FinishReason {
	case "length":
		return nil, tok, p.fail(0, true, 0, p.label+"'s answer was cut off", fmt.Errorf("finish_reason length after %d completion tokens", tok.output))
	case "content_filter":
		return nil, tok, p.fail(0, false, 0, p.label+" refused: its content filter blocked the answer", errors.New("finish_reason content_filter"))
	}
	var text string
	if err := json.Unmarshal(choice.Message.Content, &text); err != nil {
		return nil, tok, p.malformed(fmt.Errorf("message content is not a string: %w", err))
	}
	return []byte(unfence(text)), tok, nil
}

// unfence removes the Markdown code fence some compatible servers put around JSON.
func unfence(s string) string {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "```") || !strings.HasSuffix(s, "```") || len(s) < 6 {
		return s
	}
	s = strings.TrimSuffix(strings.TrimPrefix(s, "```"), "```")
	if i := strings.IndexByte(s, '\n'); i >= 0 && !strings.ContainsAny(s[:i], "{[") {
		s = s[i+1:] // the language tag line, e.g. ```json
	}
	return strings.TrimSpace(s)
}

// post sends one request and maps every failure to an *ai.Error.
func (p *Provider) post(ctx context.Context, body chatRequest) (*chatResponse, error) {
	data, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("%s: encode request: %w", p.cfg.Name, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.endpoint, bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s: build request: %w", p.cfg.Name, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if p.cfg.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+p.cfg.APIKey)
	}
	resp, err := p.cfg.HTTPClient.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, p.fail(0, true, 0, p.label+" did not answer in time", err)
		}
		return nil, p.fail(0, true, 0, "Could not reach "+p.label, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return nil, p.fail(resp.StatusCode, true, 0, p.label+"'s answer was interrupted", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, p.statusError(resp, raw)
	}
	if len(raw) > maxResponseBytes {
		return nil, p.malformed(fmt.Errorf("response larger than %d bytes", maxResponseBytes))
	}
	var out chatResponse
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, p.malformed(fmt.Errorf("decode response: %w", err))
	}
	return &out, nil
}

// apiError reads an error body: OpenAI's {"error":{"message","type","code"}}, and the
// variants compatible servers send ({"error":"..."}, or vLLM's top-level message and type).
func apiError(body []byte) (typ, code, msg string) {
	var e struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
		Type    string          `json:"type"`
	}
	if json.Unmarshal(body, &e) != nil {
		return "", "", ""
	}
	var obj struct {
		Message string          `json:"message"`
		Type    string          `json:"type"`
		Code    json.RawMessage `json:"code"` // a string at OpenAI, a number elsewhere
	}
	var str string
	switch {
	case json.Unmarshal(e.Error, &obj) == nil:
		var c string
		if json.Unmarshal(obj.Code, &c) != nil {
			c = string(obj.Code)
		}
		return obj.Type, c, obj.Message
	case json.Unmarshal(e.Error, &str) == nil:
		return "", "", str
	}
	return e.Type, "", e.Message
}

// statusError maps a non-200 answer.
func (p *Provider) statusError(resp *http.Response, body []byte) error {
	typ, code, msg := apiError(body)
	detail := p.redact(cmp.Or(msg, http.StatusText(resp.StatusCode)))
	cause := fmt.Errorf("%s: %s", cmp.Or(code, typ, "error"), detail)
	status := resp.StatusCode
	switch {
	case status == http.StatusTooManyRequests && (code == "insufficient_quota" || typ == "insufficient_quota"):
		return p.fail(status, false, 0, p.label+"'s quota is exhausted", cause)
	case status == http.StatusTooManyRequests:
		return p.fail(status, true, rateLimitDelay(resp.Header, p.now()), p.label+"'s rate limit was reached", cause)
	case status >= 500, status == http.StatusRequestTimeout, status == http.StatusConflict:
		return p.fail(status, true, rateLimitDelay(resp.Header, p.now()), p.label+" is unavailable", cause)
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return p.fail(status, false, 0, p.label+" rejected the API key", cause)
	default:
		return p.fail(status, false, 0, p.label+" rejected the request: "+detail, cause)
	}
}

// rateLimitDelay reads how long to wait: retry-after-ms, retry-after (seconds or an HTTP
// date), or else the reset of the exhausted rate limit (x-ratelimit-reset-requests or
// -tokens, durations such as "1s", "6m0s", "20ms"). 0 when the server gave no hint.
func rateLimitDelay(h http.Header, now time.Time) time.Duration {
	if ms, err := strconv.ParseFloat(strings.TrimSpace(h.Get("retry-after-ms")), 64); err == nil && ms > 0 {
		return time.Duration(ms * float64(time.Millisecond))
	}
	if d := llm.RetryAfter(h.Get("retry-after"), now); d > 0 {
		return d
	}
	var exhausted, latest time.Duration
	for _, limit := range []string{"requests", "tokens"} {
		d := resetDuration(h.Get("x-ratelimit-reset-" + limit))
		latest = max(latest, d)
		if strings.TrimSpace(h.Get("x-ratelimit-remaining-"+limit)) == "0" {
			exhausted = max(exhausted, d)
		}
	}
	return cmp.Or(exhausted, latest)
}

func resetDuration(v string) time.Duration {
	v = strings.TrimSpace(v)
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return d
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil && secs > 0 && secs <= 24*3600 {
		return time.Duration(secs * float64(time.Second))
	}
	return 0
}

// redact bounds a server message and removes the API key, should a server ever echo it.
func (p *Provider) redact(s string) string { return llm.Redact(s, p.cfg.APIKey, maxErrorMessageLen) }

// answerError passes on a definite answer and turns anything else into a malformed-output error.
func (p *Provider) answerError(err error) error { return llm.AnswerError(p.cfg.Name, p.label, err) }

func (p *Provider) malformed(err error) *ai.Error { return llm.Malformed(p.cfg.Name, p.label, err) }

// fail builds the provider error (llm.Fail).
func (p *Provider) fail(status int, retryable bool, after time.Duration, msg string, cause error) *ai.Error {
	return llm.Fail(p.cfg.Name, status, retryable, after, msg, cause)
}

var _ ai.SelectorSuggester = (*Provider)(nil)

// SuggestSelector implements ai.SelectorSuggester.
func (p *Provider) SuggestSelector(ctx context.Context, req ai.SelectorRequest, doc ai.Document) (string, ai.Usage, error) {
	start := p.now()
	content, err := llm.SuggestContent(req, doc, p.cfg.MaxDocumentChars)
	if err != nil {
		return "", p.usage(start, tokens{}), fmt.Errorf("%s suggest: %w", p.cfg.Name, err)
	}
	answer, tok, err := p.call(ctx, llm.SuggestSystem(llm.JSONSchema), content, llm.RecordSelector, llm.SelectorSchema())
	u := p.usage(start, tok)
	if err != nil {
		return "", u, err
	}
	sel, err := llm.DecodeSelector(answer)
	if err != nil {
		return "", u, p.malformed(err)
	}
	return sel, u, nil
}

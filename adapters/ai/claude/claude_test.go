package claude_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/ai/aitest"
	"github.com/vigilhq/vigil/adapters/ai/claude"
	"github.com/vigilhq/vigil/adapters/ai/fallback"
	"github.com/vigilhq/vigil/adapters/ai/llm"
	"github.com/vigilhq/vigil/adapters/ai/pricing"
	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/ai"
	"github.com/vigilhq/vigil/domain/monitor"
)

const apiKey = "sk-ant-api03-SECRET-test-key"

// stepClock advances by step on every reading, so latency is deterministic.
type stepClock struct {
	mu   sync.Mutex
	t    time.Time
	step time.Duration
}

func (c *stepClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(c.step)
	return c.t
}

type testBundle struct {
	srv *aitest.FakeServer
	p   *claude.Provider
}

func setup(t *testing.T, edit func(*claude.Config)) testBundle {
	t.Helper()
	srv := aitest.NewClaudeServer(t, fallback.New(time.Now))
	cfg := claude.Config{APIKey: apiKey, BaseURL: srv.URL()}
	if edit != nil {
		edit(&cfg)
	}
	clock := &stepClock{t: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC), step: 250 * time.Millisecond}
	p, err := claude.New(cfg, clock.now)
	require.NoError(t, err)
	return testBundle{srv: srv, p: p}
}

// body decodes the last request's JSON body.
func (b testBundle) body(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(b.srv.LastRequest().Body, &m))
	return m
}

func userContent(t *testing.T, body map[string]any) string {
	t.Helper()
	msgs := body["messages"].([]any)
	return msgs[0].(map[string]any)["content"].(string)
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	_, err := claude.New(claude.Config{}, time.Now)
	require.ErrorContains(t, err, "API key")
	_, err = claude.New(claude.Config{APIKey: "k", BaseURL: "ftp://example.com"}, time.Now)
	require.ErrorContains(t, err, "base URL")
	_, err = claude.New(claude.Config{APIKey: "k"}, nil)
	require.Error(t, err)
	_, err = claude.New(claude.Config{APIKey: "k"}, time.Now)
	require.NoError(t, err)
}

func TestRequestShape(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	_, u, err := b.p.Classify(t.Context(), aitest.PromptBelow80, ai.Hints{SourceURL: "https://shop.example/p/1"})
	require.NoError(t, err)

	h := b.srv.LastRequest().Header
	require.Equal(t, apiKey, h.Get("x-api-key"))
	require.Empty(t, h.Get("Authorization"), "Claude takes the key in x-api-key only")
	require.Equal(t, claude.VersionDefault, h.Get("anthropic-version"))
	require.Equal(t, "application/json", h.Get("content-type"))

	body := b.body(t)
	require.Equal(t, claude.ModelDefault, body["model"])
	require.EqualValues(t, claude.MaxTokensDefault, body["max_tokens"])
	require.Contains(t, body["system"], "historical_change")
	require.Equal(t, map[string]any{"type": "tool", "name": llm.RecordSpec}, body["tool_choice"])
	tools := body["tools"].([]any)
	require.Len(t, tools, 1)
	tool := tools[0].(map[string]any)
	require.Equal(t, llm.RecordSpec, tool["name"])
	require.NotEmpty(t, tool["description"])
	require.Contains(t, tool["input_schema"].(map[string]any)["properties"], "rejection")
	content := userContent(t, body)
	req, ok := aitest.Section(content, "request")
	require.True(t, ok, content)
	require.JSONEq(t, `{"prompt":"Tell me when the price drops below $80","source_url":"https://shop.example/p/1"}`, req)

	require.Equal(t, claude.Name, u.Provider)
	require.Equal(t, claude.ModelDefault, u.Model)
	require.Positive(t, u.InputTokens)
	require.Positive(t, u.OutputTokens)
	require.Equal(t, 250*time.Millisecond, u.Latency)
}

func TestExtractRequestTruncatesDocument(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *claude.Config) { c.MaxDocumentChars = 40 })
	doc := aitest.PriceDocument("64.5")
	doc.ContentType = "text/plain"
	doc.Body = []byte("Price: 64.5 USD. " + strings.Repeat("é", 100))
	facts, _, err := b.p.Extract(t.Context(), aitest.PriceSpec(), doc)
	require.NoError(t, err)
	require.Len(t, facts, 1)
	require.Equal(t, doc.FetchedAt, facts[0].ObservedAt)
	require.Equal(t, "USD", facts[0].Unit, "the spec's unit fills in for a model that gives none")

	body := b.body(t)
	require.Equal(t, map[string]any{"type": "tool", "name": llm.RecordFacts}, body["tool_choice"])
	require.Contains(t, body["system"], "40 characters")
	content := userContent(t, body)
	text, ok := aitest.Section(content, "document")
	require.True(t, ok)
	require.Equal(t, string([]rune(string(doc.Body))[:40]), text)
	info, _ := aitest.Section(content, "document_info")
	require.Contains(t, info, `"truncated":true`)
	require.Contains(t, info, `"characters":117`)
	schema := body["tools"].([]any)[0].(map[string]any)["input_schema"].(map[string]any)
	key := schema["properties"].(map[string]any)["facts"].(map[string]any)["items"].(map[string]any)["properties"].(map[string]any)["key"].(map[string]any)
	require.Equal(t, []any{"price"}, key["enum"], "keys are limited to the spec's facts")
}

func TestErrors(t *testing.T) {
	t.Parallel()
	validSpec := `{"rejection":null,"kind":"current_state","summary":"s","facts":[{"name":"price","type":"number","unit":null,"description":"d","selector":null}],"condition":"price < 80.0","change":null,"needs_source":true,"confidence":0.9,"warnings":[]}`
	tests := []struct {
		name      string
		script    func(*aitest.FakeServer)
		retryable bool
		after     time.Duration
		status    int
		message   string
	}{
		{"429 with retry-after", func(s *aitest.FakeServer) {
			s.FailNext(1, 429, map[string]string{"retry-after": "7"}, "")
		}, true, 7 * time.Second, 429, "rate limit"},
		{"529 overloaded", func(s *aitest.FakeServer) {
			s.FailNext(1, 529, nil, aitest.ClaudeErrorBody(529, "Overloaded"))
		}, true, 0, 529, "Claude is overloaded"},
		{"500", func(s *aitest.FakeServer) { s.FailNext(1, 500, nil, "") }, true, 0, 500, "Claude is unavailable"},
		{"503 with a body of another shape", func(s *aitest.FakeServer) {
			s.FailNext(1, 503, map[string]string{"Content-Type": "text/html"}, "<html>upstream</html>")
		}, true, 0, 503, "Claude is unavailable"},
		{"401", func(s *aitest.FakeServer) {
			s.FailNext(1, 401, nil, aitest.ClaudeErrorBody(401, "invalid x-api-key"))
		}, false, 0, 401, "Claude rejected the API key"},
		{"403", func(s *aitest.FakeServer) { s.FailNext(1, 403, nil, "") }, false, 0, 403, "Claude rejected the API key"},
		{"400 reads the documented body", func(s *aitest.FakeServer) {
			s.FailNext(1, 400, nil, `{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: Field required"}}`)
		}, false, 0, 400, "Claude rejected the request: max_tokens: Field required"},
		{"400 echoing the key is redacted", func(s *aitest.FakeServer) {
			s.FailNext(1, 400, nil, aitest.ClaudeErrorBody(400, "bad key "+apiKey))
		}, false, 0, 400, "[redacted]"},
		{"max_tokens stop", func(s *aitest.FakeServer) {
			s.ReplyRaw(1, aitest.ClaudeToolUse(llm.RecordSpec, `{"kind":"current_st`+`"}`, "max_tokens"))
		}, true, 0, 0, "cut off"},
		{"refusal stop", func(s *aitest.FakeServer) {
			s.ReplyRaw(1, aitest.ClaudeText("I can't help with that.", "refusal"))
		}, false, 0, 0, "refused"},
		{"malformed tool input", func(s *aitest.FakeServer) {
			s.ReplyRaw(1, aitest.ClaudeToolUse(llm.RecordSpec, `{"kind":5,"facts":"price"}`, "tool_use"))
		}, true, 0, 0, "Claude returned an answer Vigil could not use"},
		{"schema-invalid spec", func(s *aitest.FakeServer) {
			s.ReplyRaw(1, aitest.ClaudeToolUse(llm.RecordSpec, strings.Replace(validSpec, `"name":"price"`, `"name":"Unit Price"`, 1), "tool_use"))
		}, true, 0, 0, "could not use"},
		{"current_state without condition", func(s *aitest.FakeServer) {
			s.ReplyRaw(1, aitest.ClaudeToolUse(llm.RecordSpec, strings.Replace(validSpec, `"condition":"price < 80.0"`, `"condition":null`, 1), "tool_use"))
		}, true, 0, 0, "could not use"},
		{"no tool call", func(s *aitest.FakeServer) {
			s.ReplyRaw(1, aitest.ClaudeText(`{"kind":"current_state"}`, "end_turn"))
		}, true, 0, 0, "could not use"},
		{"wrong tool", func(s *aitest.FakeServer) {
			s.ReplyRaw(1, aitest.ClaudeToolUse(llm.RecordVerdict, `{"state":"active","confidence":1,"explanation":"x"}`, "tool_use"))
		}, true, 0, 0, "could not use"},
		{"body not JSON", func(s *aitest.FakeServer) { s.ReplyRaw(1, `{"content": [`) }, true, 0, 0, "could not use"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, nil)
			tt.script(b.srv)
			_, _, err := b.p.Classify(t.Context(), aitest.PromptBelow80, ai.Hints{})
			requireProviderError(t, err, tt.retryable, tt.after, tt.status, tt.message)
			require.Equal(t, 1, b.srv.Requests(), "the provider never retries by itself")
		})
	}
}

func requireProviderError(t *testing.T, err error, retryable bool, after time.Duration, status int, message string) {
	t.Helper()
	require.Error(t, err)
	pe, ok := ai.AsError(err)
	require.True(t, ok, "want *ai.Error, got %T: %v", err, err)
	require.Equal(t, claude.Name, pe.Provider)
	require.Equal(t, retryable, pe.Retryable, err.Error())
	require.Equal(t, after, pe.RetryAfter)
	require.Equal(t, status, pe.StatusCode)
	require.Contains(t, pe.Message+": "+err.Error(), message)
	require.NotContains(t, err.Error(), apiKey)
	require.Equal(t, domain.EUNAVAILABLE, domain.ErrorCode(err))
	require.NotErrorIs(t, err, domain.ErrInvalid, "a bad answer must not look like a bad prompt")
}

func TestRejection(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	_, _, err := b.p.Classify(t.Context(), aitest.PromptUnmonitorable, ai.Hints{})
	require.ErrorIs(t, err, domain.ErrInvalid)
	require.NotEmpty(t, domain.ErrorMessage(err))

	b.srv.ReplyRaw(1, aitest.ClaudeToolUse(llm.RecordSpec,
		`{"rejection":"Vigil watches web pages; it cannot read your inbox.","kind":"current_state","summary":"","facts":[],"condition":null,"change":null,"needs_source":false,"confidence":0,"warnings":[]}`, "tool_use"))
	_, u, err := b.p.Classify(t.Context(), "tell me when I get an email from my boss", ai.Hints{})
	require.ErrorIs(t, err, domain.ErrInvalid)
	require.Equal(t, "Vigil watches web pages; it cannot read your inbox.", domain.ErrorMessage(err))
	require.Positive(t, u.Cost, "a rejection is still paid for")
}

func TestHistoricalChange(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	b.srv.ReplyRaw(1, aitest.ClaudeToolUse(llm.RecordSpec,
		`{"rejection":null,"kind":"historical_change","summary":"Price rises 5% in a day","facts":[{"name":"price","type":"number","unit":"USD","description":"d","selector":null}],"condition":null,"change":{"fact":"price","measure":"percent","operator":"increases","threshold":5,"window":"24h"},"needs_source":true,"confidence":0.8,"warnings":["Assumed US dollars."]}`, "tool_use"))
	spec, _, err := b.p.Classify(t.Context(), "tell me when the price rises 5% in 24h", ai.Hints{})
	require.NoError(t, err)
	require.Equal(t, monitor.Spec{
		Kind: monitor.KindHistoricalChange, Summary: "Price rises 5% in a day",
		Facts:       []monitor.FactSpec{{Name: "price", Type: monitor.FactNumber, Unit: "USD", Description: "d"}},
		Change:      &monitor.ChangeRule{Fact: "price", Measure: "percent", Operator: "increases", Threshold: 5, Window: "24h"},
		NeedsSource: true, Confidence: 0.8, Warnings: []string{"Assumed US dollars."},
	}, spec)
}

func TestExtractAnswers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		input   string
		invalid bool // EINVALID (not found) rather than a provider error
	}{
		{"unknown key", `{"facts":[{"key":"cost","number":1,"text":null,"bool":null,"unit":null,"evidence":"x","confidence":1}]}`, false},
		{"two values", `{"facts":[{"key":"price","number":1,"text":"1","bool":null,"unit":null,"evidence":"x","confidence":1}]}`, false},
		{"wrong type", `{"facts":[{"key":"price","number":null,"text":"64.5","bool":null,"unit":null,"evidence":"x","confidence":1}]}`, false},
		{"duplicate", `{"facts":[{"key":"price","number":1,"evidence":"x","confidence":1},{"key":"price","number":2,"evidence":"y","confidence":1}]}`, false},
		{"confidence out of range", `{"facts":[{"key":"price","number":1,"evidence":"x","confidence":7}]}`, false},
		{"not an object", `[1,2]`, false},
		{"not found", `{"facts":[{"key":"price","number":null,"text":null,"bool":null,"unit":null,"evidence":"","confidence":0}]}`, true},
		{"omitted", `{"facts":[]}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, nil)
			b.srv.ReplyRaw(1, aitest.ClaudeToolUse(llm.RecordFacts, tt.input, "tool_use"))
			_, _, err := b.p.Extract(t.Context(), aitest.PriceSpec(), aitest.PriceDocument("64.5"))
			if tt.invalid {
				require.ErrorIs(t, err, domain.ErrInvalid)
				require.Contains(t, domain.ErrorMessage(err), "price")
				return
			}
			requireProviderError(t, err, true, 0, 0, "could not use")
		})
	}
}

func TestEvaluateAnswers(t *testing.T) {
	t.Parallel()
	for name, input := range map[string]string{
		"state not allowed":   `{"state":"true","confidence":1,"explanation":"x"}`,
		"confidence too high": `{"state":"active","confidence":1.5,"explanation":"x"}`,
		"no explanation":      `{"state":"active","confidence":1,"explanation":"  "}`,
		"string confidence":   `{"state":"active","confidence":"high","explanation":"x"}`,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, nil)
			b.srv.ReplyRaw(1, aitest.ClaudeToolUse(llm.RecordVerdict, input, "tool_use"))
			_, _, err := b.p.Evaluate(t.Context(), aitest.PriceSpec(), nil, ai.Document{})
			requireProviderError(t, err, true, 0, 0, "could not use")
		})
	}
}

func TestCost(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	// ClaudeToolUse reports model claude-sonnet-4-5-20250929, 1200 input and 80 output tokens.
	b.srv.ReplyRaw(1, aitest.ClaudeToolUse(llm.RecordVerdict, `{"state":"active","confidence":0.9,"explanation":"The price is 64.5."}`, "tool_use"))
	v, u, err := b.p.Evaluate(t.Context(), aitest.PriceSpec(), nil, ai.Document{})
	require.NoError(t, err)
	require.Equal(t, monitor.StateActive, v.State)
	require.Equal(t, "claude-sonnet-4-5-20250929", u.Model)
	require.Equal(t, 1200, u.InputTokens)
	require.Equal(t, 80, u.OutputTokens)
	require.InDelta(t, (1200*3.0+80*15.0)/1e6, u.Cost, 1e-12)

	b = setup(t, func(c *claude.Config) {
		c.Prices = pricing.Table{"claude-sonnet-4-5": {InputPerMTok: 10, OutputPerMTok: 100}}
	})
	b.srv.ReplyRaw(1, aitest.ClaudeToolUse(llm.RecordVerdict, `{"state":"inactive","confidence":0.9,"explanation":"x"}`, "tool_use"))
	_, u, err = b.p.Evaluate(t.Context(), aitest.PriceSpec(), nil, ai.Document{})
	require.NoError(t, err)
	require.InDelta(t, (1200*10.0+80*100.0)/1e6, u.Cost, 1e-12)
}

func TestWebSearch(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *claude.Config) { c.WebSearch = true })
	facts := `{"facts":[{"key":"price","number":64.5,"text":null,"bool":null,"unit":"USD","evidence":"now $64.50","confidence":0.9}]}`

	// With a document there is nothing to search for.
	b.srv.ReplyRaw(1, aitest.ClaudeToolUse(llm.RecordFacts, facts, "tool_use"))
	_, _, err := b.p.Extract(t.Context(), aitest.PriceSpec(), aitest.PriceDocument("64.5"))
	require.NoError(t, err)
	require.Len(t, b.body(t)["tools"], 1)

	// Without one, Claude may search; a long search pauses the turn and is continued.
	paused := `{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929",` +
		`"content":[{"type":"server_tool_use","id":"srvtoolu_1","name":"web_search","input":{"query":"widget price"}}],` +
		`"stop_reason":"pause_turn","usage":{"input_tokens":1000,"output_tokens":20,"server_tool_use":{"web_search_requests":1}}}`
	b.srv.ReplyRaw(1, paused)
	b.srv.ReplyRaw(1, aitest.ClaudeToolUse(llm.RecordFacts, facts, "tool_use"))
	got, u, err := b.p.Extract(t.Context(), aitest.PriceSpec(), ai.Document{})
	require.NoError(t, err)
	require.InDelta(t, 64.5, *got[0].Number, 1e-9)
	require.Equal(t, 3, b.srv.Requests())

	body := b.body(t)
	require.Equal(t, map[string]any{"type": "any"}, body["tool_choice"])
	tools := body["tools"].([]any)
	require.Len(t, tools, 2)
	require.Equal(t, "web_search_20250305", tools[1].(map[string]any)["type"])
	msgs := body["messages"].([]any)
	require.Len(t, msgs, 2, "the paused turn is sent back to continue it")
	require.Equal(t, "assistant", msgs[1].(map[string]any)["role"])
	require.Contains(t, body["system"], "search the web")
	require.Equal(t, 2200, u.InputTokens)
	require.InDelta(t, (2200*3.0+100*15.0)/1e6+0.01, u.Cost, 1e-12, "searches are paid for too")
}

func TestNetworkErrors(t *testing.T) {
	t.Parallel()
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	p, err := claude.New(claude.Config{APIKey: apiKey, BaseURL: dead.URL}, time.Now)
	require.NoError(t, err)
	_, _, err = p.Classify(t.Context(), aitest.PromptBelow80, ai.Hints{})
	requireProviderError(t, err, true, 0, 0, "Could not reach Claude")

	release := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(hung.Close)
	t.Cleanup(func() { close(release) })
	p, err = claude.New(claude.Config{APIKey: apiKey, BaseURL: hung.URL}, time.Now)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, _, err = p.Classify(ctx, aitest.PromptBelow80, ai.Hints{})
	requireProviderError(t, err, true, 0, 0, "did not answer in time")
	require.True(t, errors.Is(err, context.DeadlineExceeded), err.Error())
}

package openai_test

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
	"github.com/vigilhq/vigil/adapters/ai/fallback"
	"github.com/vigilhq/vigil/adapters/ai/llm"
	"github.com/vigilhq/vigil/adapters/ai/openai"
	"github.com/vigilhq/vigil/adapters/ai/pricing"
	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/ai"
	"github.com/vigilhq/vigil/domain/monitor"
)

const apiKey = "sk-proj-SECRET-test-key"

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
	p   *openai.Provider
}

func setup(t *testing.T, edit func(*openai.Config)) testBundle {
	t.Helper()
	srv := aitest.NewOpenAIServer(t, fallback.New(time.Now))
	cfg := openai.Config{APIKey: apiKey, BaseURL: srv.URL()}
	if edit != nil {
		edit(&cfg)
	}
	clock := &stepClock{t: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC), step: 100 * time.Millisecond}
	p, err := openai.New(cfg, clock.now)
	require.NoError(t, err)
	return testBundle{srv: srv, p: p}
}

func (b testBundle) body(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(b.srv.LastRequest().Body, &m))
	return m
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	_, err := openai.New(openai.Config{BaseURL: "localhost:11434"}, time.Now)
	require.ErrorContains(t, err, "base URL")
	_, err = openai.New(openai.Config{}, nil)
	require.Error(t, err)
	p, err := openai.New(openai.Config{}, time.Now)
	require.NoError(t, err, "no API key is fine: local servers need none")
	require.NotNil(t, p)
}

func TestRequestShape(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *openai.Config) { c.MaxTokens = 1000 })
	_, u, err := b.p.Classify(t.Context(), aitest.PromptBelow80, ai.Hints{})
	require.NoError(t, err)

	h := b.srv.LastRequest().Header
	require.Equal(t, "Bearer "+apiKey, h.Get("Authorization"))
	require.Equal(t, "application/json", h.Get("Content-Type"))
	for name := range h {
		require.False(t, strings.HasPrefix(strings.ToLower(name), "openai-"), "no OpenAI-only headers: %s", name)
	}
	body := b.body(t)
	require.Equal(t, openai.ModelDefault, body["model"])
	require.EqualValues(t, 1000, body["max_completion_tokens"])
	rf := body["response_format"].(map[string]any)
	require.Equal(t, "json_schema", rf["type"])
	js := rf["json_schema"].(map[string]any)
	require.Equal(t, llm.RecordSpec, js["name"])
	require.Equal(t, true, js["strict"])
	msgs := body["messages"].([]any)
	require.Equal(t, "system", msgs[0].(map[string]any)["role"])
	require.Contains(t, msgs[0].(map[string]any)["content"], "historical_change")
	require.Equal(t, "user", msgs[1].(map[string]any)["role"])

	require.Equal(t, openai.NameDefault, u.Provider)
	require.Equal(t, openai.ModelDefault, u.Model)
	require.Positive(t, u.InputTokens)
	require.Equal(t, 100*time.Millisecond, u.Latency)
}

func TestLocalServer(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *openai.Config) { c.APIKey, c.Name, c.Model = "", "ollama", "llama3.1:8b" })
	facts, u, err := b.p.Extract(t.Context(), aitest.PriceSpec(), aitest.PriceDocument("64.5"))
	require.NoError(t, err)
	require.Len(t, facts, 1)
	require.Empty(t, b.srv.LastRequest().Header.Get("Authorization"), "no key, no header")
	require.NotContains(t, b.body(t), "max_completion_tokens", "left to the server unless configured")
	require.Equal(t, "ollama", u.Provider)
	require.Equal(t, "llama3.1:8b", u.Model)
	require.Zero(t, u.Cost, "local models are free")

	b.srv.FailNext(1, 500, nil, "")
	_, _, err = b.p.Extract(t.Context(), aitest.PriceSpec(), aitest.PriceDocument("64.5"))
	pe, ok := ai.AsError(err)
	require.True(t, ok)
	require.Equal(t, "ollama", pe.Provider)
	require.Equal(t, "ollama is unavailable", pe.Message)
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
			s.FailNext(1, 429, map[string]string{"retry-after": "3"}, "")
		}, true, 3 * time.Second, 429, "rate limit"},
		{"429 with retry-after-ms", func(s *aitest.FakeServer) {
			s.FailNext(1, 429, map[string]string{"retry-after-ms": "1500", "retry-after": "2"}, "")
		}, true, 1500 * time.Millisecond, 429, "rate limit"},
		{"429 with the exhausted limit's reset", func(s *aitest.FakeServer) {
			s.FailNext(1, 429, map[string]string{
				"x-ratelimit-remaining-requests": "59", "x-ratelimit-reset-requests": "1s",
				"x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "6m0s",
			}, "")
		}, true, 6 * time.Minute, 429, "rate limit"},
		{"429 with a reset only", func(s *aitest.FakeServer) {
			s.FailNext(1, 429, map[string]string{"x-ratelimit-reset-requests": "20ms"}, "")
		}, true, 20 * time.Millisecond, 429, "rate limit"},
		{"429 out of quota", func(s *aitest.FakeServer) {
			s.FailNext(1, 429, nil, `{"error":{"message":"You exceeded your current quota.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}`)
		}, false, 0, 429, "quota"},
		{"500", func(s *aitest.FakeServer) { s.FailNext(1, 500, nil, "") }, true, 0, 500, "OpenAI is unavailable"},
		{"503 HTML", func(s *aitest.FakeServer) {
			s.FailNext(1, 503, map[string]string{"Content-Type": "text/html"}, "<html>bad gateway</html>")
		}, true, 0, 503, "OpenAI is unavailable"},
		{"401", func(s *aitest.FakeServer) {
			s.FailNext(1, 401, nil, aitest.OpenAIErrorBody(401, "Incorrect API key provided: sk-proj-***-key."))
		}, false, 0, 401, "OpenAI rejected the API key"},
		{"400 reads the body", func(s *aitest.FakeServer) {
			s.FailNext(1, 400, nil, aitest.OpenAIErrorBody(400, "Invalid schema for response_format 'record_spec'."))
		}, false, 0, 400, "OpenAI rejected the request: Invalid schema for response_format 'record_spec'."},
		{"400 echoing the key is redacted", func(s *aitest.FakeServer) {
			s.FailNext(1, 400, nil, aitest.OpenAIErrorBody(400, "bad key "+apiKey))
		}, false, 0, 400, "[redacted]"},
		{"404 with a string error, as some local servers send", func(s *aitest.FakeServer) {
			s.FailNext(1, 404, nil, `{"error":"model \"llama9\" not found, try pulling it first"}`)
		}, false, 0, 404, `model "llama9" not found`},
		{"400 vLLM style", func(s *aitest.FakeServer) {
			s.FailNext(1, 400, nil, `{"object":"error","message":"This model's maximum context length is 8192 tokens.","type":"BadRequestError","param":null,"code":400}`)
		}, false, 0, 400, "maximum context length"},
		{"refusal", func(s *aitest.FakeServer) {
			s.ReplyRaw(1, aitest.OpenAIMessage("", "I'm sorry, I cannot assist with that request.", "stop"))
		}, false, 0, 0, "OpenAI refused: I'm sorry, I cannot assist with that request."},
		{"length", func(s *aitest.FakeServer) {
			s.ReplyRaw(1, aitest.OpenAIMessage(`{"rejection":null,"kind":"curr`, "", "length"))
		}, true, 0, 0, "cut off"},
		{"content filter", func(s *aitest.FakeServer) {
			s.ReplyRaw(1, aitest.OpenAIMessage("", "", "content_filter"))
		}, false, 0, 0, "refused"},
		{"content not JSON", func(s *aitest.FakeServer) {
			s.ReplyRaw(1, aitest.OpenAIMessage("Sure! Here is the spec: kind=current_state", "", "stop"))
		}, true, 0, 0, "OpenAI returned an answer Vigil could not use"},
		{"schema-invalid spec", func(s *aitest.FakeServer) {
			s.ReplyRaw(1, aitest.OpenAIMessage(strings.Replace(validSpec, `"type":"number"`, `"type":"integer"`, 1), "", "stop"))
		}, true, 0, 0, "could not use"},
		{"no choices", func(s *aitest.FakeServer) {
			s.ReplyRaw(1, `{"id":"x","object":"chat.completion","model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":0}}`)
		}, true, 0, 0, "could not use"},
		{"body not JSON", func(s *aitest.FakeServer) { s.ReplyRaw(1, "data: [DONE]") }, true, 0, 0, "could not use"},
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
	require.Equal(t, openai.NameDefault, pe.Provider)
	require.Equal(t, retryable, pe.Retryable, err.Error())
	require.Equal(t, after, pe.RetryAfter)
	require.Equal(t, status, pe.StatusCode)
	require.Contains(t, pe.Message+": "+err.Error(), message)
	require.NotContains(t, err.Error(), apiKey)
	require.Equal(t, domain.EUNAVAILABLE, domain.ErrorCode(err))
	require.NotErrorIs(t, err, domain.ErrInvalid, "a bad answer must not look like a bad prompt")
}

func TestFencedJSON(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	b.srv.ReplyRaw(1, aitest.OpenAIMessage("```json\n{\"state\":\"active\",\"confidence\":0.9,\"explanation\":\"The price is 64.5.\"}\n```", "", "stop"))
	v, _, err := b.p.Evaluate(t.Context(), aitest.PriceSpec(), nil, ai.Document{})
	require.NoError(t, err)
	require.Equal(t, monitor.StateActive, v.State)
}

func TestRejectionAndNotFound(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	b.srv.ReplyRaw(1, aitest.OpenAIMessage(`{"rejection":"Vigil cannot predict the future.","kind":"current_state","summary":"","facts":[],"condition":null,"change":null,"needs_source":false,"confidence":0,"warnings":[]}`, "", "stop"))
	_, _, err := b.p.Classify(t.Context(), "tell me the winning lottery numbers", ai.Hints{})
	require.ErrorIs(t, err, domain.ErrInvalid)
	require.Equal(t, "Vigil cannot predict the future.", domain.ErrorMessage(err))

	_, _, err = b.p.Extract(t.Context(), aitest.PriceSpec(), ai.Document{ContentType: "application/json", Body: []byte(`{"name":"widget"}`)})
	require.ErrorIs(t, err, domain.ErrInvalid)
	require.Equal(t, "Could not find the price in the source.", domain.ErrorMessage(err))
}

func TestCost(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	// OpenAIMessage reports model gpt-4o-mini-2024-07-18, 1200 prompt and 80 completion tokens.
	b.srv.ReplyRaw(1, aitest.OpenAIMessage(`{"state":"inactive","confidence":1,"explanation":"The price is 95."}`, "", "stop"))
	_, u, err := b.p.Evaluate(t.Context(), aitest.PriceSpec(), nil, ai.Document{})
	require.NoError(t, err)
	require.Equal(t, "gpt-4o-mini-2024-07-18", u.Model)
	require.Equal(t, 1200, u.InputTokens)
	require.Equal(t, 80, u.OutputTokens)
	require.InDelta(t, (1200*0.15+80*0.6)/1e6, u.Cost, 1e-12)

	b = setup(t, func(c *openai.Config) {
		c.Prices = pricing.Default().Merge(pricing.Table{"gpt-4o-mini": {InputPerMTok: 1, OutputPerMTok: 2}})
	})
	b.srv.ReplyRaw(1, aitest.OpenAIMessage(`{"state":"inactive","confidence":1,"explanation":"x"}`, "", "stop"))
	_, u, err = b.p.Evaluate(t.Context(), aitest.PriceSpec(), nil, ai.Document{})
	require.NoError(t, err)
	require.InDelta(t, (1200*1.0+80*2.0)/1e6, u.Cost, 1e-12)
}

func TestNetworkErrors(t *testing.T) {
	t.Parallel()
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	p, err := openai.New(openai.Config{APIKey: apiKey, BaseURL: dead.URL + "/v1"}, time.Now)
	require.NoError(t, err)
	_, _, err = p.Classify(t.Context(), aitest.PromptBelow80, ai.Hints{})
	requireProviderError(t, err, true, 0, 0, "Could not reach OpenAI")

	release := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(hung.Close)
	t.Cleanup(func() { close(release) })
	p, err = openai.New(openai.Config{APIKey: apiKey, BaseURL: hung.URL + "/v1"}, time.Now)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, _, err = p.Classify(ctx, aitest.PromptBelow80, ai.Hints{})
	requireProviderError(t, err, true, 0, 0, "did not answer in time")
	require.True(t, errors.Is(err, context.DeadlineExceeded), err.Error())
}

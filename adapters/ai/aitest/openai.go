package aitest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/vigilhq/vigil/domain/ai"
)

// NewOpenAIServer starts a fake Chat Completions API (POST /v1/chat/completions; URL
// returns the /v1 base) answering with model. It accepts requests with or without a bearer
// token, as OpenAI-compatible local servers do, and requires a strict json_schema
// response_format whose every object lists all its properties as required and forbids
// additional ones, as OpenAI does.
func NewOpenAIServer(t testing.TB, model ai.Provider) *FakeServer {
	t.Helper()
	return newFakeServer(t, model, "/v1", OpenAIErrorBody, handleOpenAI)
}

// OpenAIErrorBody returns an error body of OpenAI's documented shape for status.
func OpenAIErrorBody(status int, msg string) string {
	typ := map[int]string{400: "invalid_request_error", 401: "invalid_request_error", 429: "requests"}[status]
	if typ == "" {
		typ = "server_error"
	}
	data, _ := json.Marshal(map[string]any{"error": map[string]any{"message": msg, "type": typ, "param": nil, "code": nil}})
	return string(data)
}

// OpenAIMessage returns a chat completion body with one choice: content (a string, sent
// verbatim inside a JSON string), refusal (null when empty) and finishReason.
func OpenAIMessage(content, refusal, finishReason string) string {
	c, _ := json.Marshal(content)
	r := []byte("null")
	if refusal != "" {
		c = []byte("null")
		r, _ = json.Marshal(refusal)
	}
	return fmt.Sprintf(`{"id":"chatcmpl-fake","object":"chat.completion","created":1760000000,"model":"gpt-4o-mini-2024-07-18",`+
		`"choices":[{"index":0,"message":{"role":"assistant","content":%s,"refusal":%s},"logprobs":null,"finish_reason":%q}],`+
		`"usage":{"prompt_tokens":1200,"completion_tokens":80,"total_tokens":1280}}`, c, r, finishReason)
}

type openAIRequest struct {
	Model    string `json:"model"`
	Messages []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	} `json:"messages"`
	ResponseFormat struct {
		Type       string `json:"type"`
		JSONSchema struct {
			Name   string         `json:"name"`
			Strict bool           `json:"strict"`
			Schema map[string]any `json:"schema"`
		} `json:"json_schema"`
	} `json:"response_format"`
}

func handleOpenAI(f *FakeServer, r *http.Request, body []byte) (any, error) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" {
		return nil, badRequest("want POST /v1/chat/completions, got %s %s", r.Method, r.URL.Path)
	}
	if a := r.Header.Get("Authorization"); a != "" && (!strings.HasPrefix(a, "Bearer ") || len(a) == len("Bearer ")) {
		return nil, badRequest("malformed Authorization header")
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		return nil, badRequest("Content-Type is %q, want application/json", r.Header.Get("Content-Type"))
	}
	var req openAIRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, badRequest("body is not JSON: %v", err)
	}
	if req.Model == "" {
		return nil, badRequest("model is required")
	}
	rf := req.ResponseFormat
	if rf.Type != "json_schema" || !rf.JSONSchema.Strict || rf.JSONSchema.Name == "" {
		return nil, badRequest("response_format must be a strict json_schema with a name")
	}
	if problems := strictProblems(rf.JSONSchema.Schema, "schema"); len(problems) > 0 {
		return nil, badRequest("schema is not valid for strict mode: %s", strings.Join(problems, "; "))
	}
	content := ""
	for _, m := range req.Messages {
		if m.Role == "user" {
			if err := json.Unmarshal(m.Content, &content); err != nil {
				return nil, badRequest("the user message content must be a string: %v", err)
			}
		}
	}
	if content == "" {
		return nil, badRequest("no user message")
	}
	answer, err := f.answer(r.Context(), rf.JSONSchema.Name, content)
	if err != nil {
		return nil, err
	}
	out, _ := json.Marshal(answer)
	in, completion := tokenCount(len(body)), tokenCount(len(out))
	return map[string]any{
		"id": fmt.Sprintf("chatcmpl-fake-%d", f.seq()), "object": "chat.completion", "created": 1760000000, "model": req.Model,
		"choices": []any{map[string]any{"index": 0, "message": map[string]any{"role": "assistant", "content": string(out), "refusal": nil},
			"logprobs": nil, "finish_reason": "stop"}},
		"usage": map[string]any{"prompt_tokens": in, "completion_tokens": completion, "total_tokens": in + completion},
	}, nil
}

// strictProblems lists where schema breaks OpenAI's strict-mode rules: every object must
// set additionalProperties false and require all of its properties.
func strictProblems(schema any, path string) []string {
	m, ok := schema.(map[string]any)
	if !ok {
		return nil
	}
	var problems []string
	if isObject(m["type"]) {
		if m["additionalProperties"] != false {
			problems = append(problems, path+": additionalProperties must be false")
		}
		props, _ := m["properties"].(map[string]any)
		required := map[string]bool{}
		list, _ := m["required"].([]any)
		for _, r := range list {
			if s, ok := r.(string); ok {
				required[s] = true
			}
		}
		names := make([]string, 0, len(props))
		for name := range props {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			if !required[name] {
				problems = append(problems, fmt.Sprintf("%s: property %q must be required", path, name))
			}
			problems = append(problems, strictProblems(props[name], path+"."+name)...)
		}
	}
	problems = append(problems, strictProblems(m["items"], path+"[]")...)
	if alts, ok := m["anyOf"].([]any); ok {
		for i, alt := range alts {
			problems = append(problems, strictProblems(alt, fmt.Sprintf("%s|%d", path, i))...)
		}
	}
	return problems
}

func isObject(typ any) bool {
	switch t := typ.(type) {
	case string:
		return t == "object"
	case []any:
		for _, v := range t {
			if v == "object" {
				return true
			}
		}
	}
	return false
}

package aitest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/vigilhq/vigil/domain/ai"
)

// NewClaudeServer starts a fake Anthropic Messages API (POST /v1/messages) answering with
// model. It requires the x-api-key, anthropic-version and content-type headers, a model,
// max_tokens, a user message and a tool_choice naming one of the offered tools, and answers
// with a tool_use block calling the forced tool.
func NewClaudeServer(t testing.TB, model ai.Provider) *FakeServer {
	t.Helper()
	return newFakeServer(t, model, "", ClaudeErrorBody, handleClaude)
}

// ClaudeErrorBody returns an error body of the documented shape for status.
func ClaudeErrorBody(status int, msg string) string {
	typ := map[int]string{400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
		404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error", 529: "overloaded_error"}[status]
	if typ == "" {
		typ = "api_error"
	}
	data, _ := json.Marshal(map[string]any{"type": "error", "error": map[string]any{"type": typ, "message": msg}})
	return string(data)
}

// ClaudeToolUse returns a Messages API response body whose content is one tool_use block
// calling tool with input (raw JSON, inserted verbatim), ending with stopReason.
func ClaudeToolUse(tool, input, stopReason string) string {
	return fmt.Sprintf(`{"id":"msg_fake","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929",`+
		`"content":[{"type":"tool_use","id":"toolu_fake","name":%q,"input":%s}],"stop_reason":%q,"stop_sequence":null,`+
		`"usage":{"input_tokens":1200,"output_tokens":80}}`, tool, input, stopReason)
}

// ClaudeText returns a Messages API response body holding only text, as when the model
// ignores the tool.
func ClaudeText(text, stopReason string) string {
	data, _ := json.Marshal(text)
	return fmt.Sprintf(`{"id":"msg_fake","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929",`+
		`"content":[{"type":"text","text":%s}],"stop_reason":%q,"stop_sequence":null,"usage":{"input_tokens":1200,"output_tokens":80}}`, data, stopReason)
}

type claudeRequest struct {
	Model     string `json:"model"`
	MaxTokens int    `json:"max_tokens"`
	System    any    `json:"system"`
	Messages  []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	} `json:"messages"`
	Tools []struct {
		Type        string         `json:"type"`
		Name        string         `json:"name"`
		InputSchema map[string]any `json:"input_schema"`
	} `json:"tools"`
	ToolChoice struct {
		Type string `json:"type"`
		Name string `json:"name"`
	} `json:"tool_choice"`
}

func handleClaude(f *FakeServer, r *http.Request, body []byte) (any, error) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/messages" {
		return nil, badRequest("want POST /v1/messages, got %s %s", r.Method, r.URL.Path)
	}
	for _, h := range []string{"x-api-key", "anthropic-version"} {
		if r.Header.Get(h) == "" {
			return nil, badRequest("missing %s header", h)
		}
	}
	if r.Header.Get("content-type") != "application/json" {
		return nil, badRequest("content-type is %q, want application/json", r.Header.Get("content-type"))
	}
	var req claudeRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, badRequest("body is not JSON: %v", err)
	}
	if req.Model == "" || req.MaxTokens <= 0 {
		return nil, badRequest("model and a positive max_tokens are required")
	}
	if len(req.Messages) == 0 || req.Messages[0].Role != "user" {
		return nil, badRequest("the first message must be the user's")
	}
	var content string
	if err := json.Unmarshal(req.Messages[0].Content, &content); err != nil {
		return nil, badRequest("the user message content must be a string: %v", err)
	}
	op := ""
	for _, tool := range req.Tools {
		if tool.Type != "" { // a server tool such as web_search_20250305
			continue
		}
		if tool.Name == "" || tool.InputSchema["type"] != "object" {
			return nil, badRequest("tool %q needs a name and an object input_schema", tool.Name)
		}
		if req.ToolChoice.Type == "any" || tool.Name == req.ToolChoice.Name {
			op = tool.Name
		}
	}
	if (req.ToolChoice.Type != "tool" && req.ToolChoice.Type != "any") || op == "" {
		return nil, badRequest("tool_choice must force one of the offered tools, got %+v", req.ToolChoice)
	}
	answer, err := f.answer(r.Context(), op, content)
	if err != nil {
		return nil, err
	}
	out, _ := json.Marshal(answer)
	n := f.seq()
	return map[string]any{
		"id": fmt.Sprintf("msg_fake_%d", n), "type": "message", "role": "assistant", "model": req.Model,
		"content":     []any{map[string]any{"type": "tool_use", "id": fmt.Sprintf("toolu_fake_%d", n), "name": op, "input": answer}},
		"stop_reason": "tool_use", "stop_sequence": nil,
		"usage": map[string]any{"input_tokens": tokenCount(len(body)), "output_tokens": tokenCount(len(out))},
	}, nil
}

package llm_test

import (
	"strings"
	"testing"

	"github.com/vigilhq/vigil/adapters/ai/llm"
)

func TestSystemPrompts(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		a    llm.Answer
		want string
	}{{llm.ToolCall, "by calling the record_"}, {llm.JSONSchema, "answer with JSON matching the record_"}} {
		for name, p := range map[string]string{
			"classify": llm.ClassifySystem(tt.a), "extract": llm.ExtractSystem(tt.a, 1234), "evaluate": llm.EvaluateSystem(tt.a),
			"suggest": llm.SuggestSystem(tt.a),
		} {
			if strings.Contains(p, "{") && strings.Contains(p, "{answer}") || strings.Contains(p, "{max_chars}") {
				t.Errorf("%s prompt has an unfilled placeholder", name)
			}
			if !strings.Contains(p, tt.want) {
				t.Errorf("%s prompt lacks %q", name, tt.want)
			}
		}
	}
	if !strings.Contains(llm.ExtractSystem(llm.ToolCall, 1234), "1234 characters") {
		t.Error("extract prompt does not state the document limit")
	}
}

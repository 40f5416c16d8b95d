package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/httpapi"
	"github.com/vigilhq/vigil/domain/monitor"
)

// labelledPrompt is one prompt of testdata/prompts.json and what it must be read as: a
// condition over present facts, a change rule ("fact operator measure threshold window
// baseline", "-" for none), or a refusal.
type labelledPrompt struct {
	Prompt    string `json:"prompt"`
	Condition string `json:"condition"`
	Change    string `json:"change"`
	Reject    bool   `json:"reject"`
}

func changeLabel(c *monitor.ChangeRule) string {
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	window, baseline := dash(c.Window), "-"
	if c.Window != "" {
		baseline = dash(c.Baseline)
	}
	return fmt.Sprintf("%s %s %s %g %s %s", c.Fact, c.Operator, c.Measure, c.Threshold, window, baseline)
}

// TestPromptSet runs the labelled prompt set through POST /api/monitors/validate with the
// rules, as a user without an AI key meets them. At least 95% must be read as labelled,
// and no prompt may be read wrongly: one the rules cannot read must be a 422 that shows
// prompts that work.
func TestPromptSet(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join("testdata", "prompts.json"))
	require.NoError(t, err)
	var set []labelledPrompt
	require.NoError(t, json.Unmarshal(data, &set))
	require.GreaterOrEqual(t, len(set), 150)
	b := setupMonitorsAPIWith(t, stackOptions{rulesOnly: true})

	var right int
	var wrong, refused []string
	for _, p := range set {
		body, err := json.Marshal(map[string]string{"prompt": p.Prompt})
		require.NoError(t, err)
		rec := b.do(t, http.MethodPost, "/api/monitors/validate", string(body), b.ann, nil)
		if rec.Code == http.StatusUnprocessableEntity {
			problem := requireProblem(t, rec, http.StatusUnprocessableEntity, "invalid")
			require.Contains(t, problem.Detail, "Prompts that work", "%q: a refusal must show prompts that work", p.Prompt)
			if p.Reject {
				right++
			} else {
				refused = append(refused, fmt.Sprintf("%q: refused (%s)", p.Prompt, problem.Errors["prompt"]))
			}
			continue
		}
		require.Equal(t, http.StatusOK, rec.Code, "%q: %s", p.Prompt, rec.Body.String())
		spec := decode[httpapi.ValidationJSON](t, rec).Spec
		var got, want string
		switch {
		case p.Reject:
			got, want = spec.Condition+changeOf(spec), "a refusal"
		case p.Change != "":
			got, want = changeOf(spec), p.Change
		default:
			got, want = spec.Condition, p.Condition
			if spec.Kind != monitor.KindCurrentState {
				got = changeOf(spec)
			}
		}
		if got == want {
			right++
			continue
		}
		wrong = append(wrong, fmt.Sprintf("%q: read as %q, want %q", p.Prompt, got, want))
	}
	score := float64(right) / float64(len(set))
	t.Logf("prompt set: %d of %d read as labelled (%.1f%%); %d refused that should be read; %d read wrongly",
		right, len(set), 100*score, len(refused), len(wrong))
	for _, r := range refused {
		t.Log("refused: " + r)
	}
	require.Empty(t, wrong, "prompts read wrongly:\n%s", strings.Join(wrong, "\n"))
	require.GreaterOrEqual(t, score, 0.95, "too few prompts read as labelled")
}

func changeOf(s monitor.Spec) string {
	if s.Change == nil {
		return ""
	}
	return changeLabel(s.Change)
}

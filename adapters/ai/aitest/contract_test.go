package aitest_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/ai/aitest"
	"github.com/vigilhq/vigil/adapters/ai/claude"
	"github.com/vigilhq/vigil/adapters/ai/fallback"
	"github.com/vigilhq/vigil/adapters/ai/openai"
	"github.com/vigilhq/vigil/domain/ai"
)

func TestContractFallback(t *testing.T) {
	t.Parallel()
	aitest.RunContract(t, func(*testing.T) ai.Provider { return fallback.New(time.Now) })
}

func TestContractClaude(t *testing.T) {
	t.Parallel()
	aitest.RunContract(t, func(t *testing.T) ai.Provider {
		srv := aitest.NewClaudeServer(t, fallback.New(time.Now))
		p, err := claude.New(claude.Config{APIKey: "sk-ant-test", BaseURL: srv.URL()}, time.Now)
		require.NoError(t, err)
		return p
	})
}

func TestContractOpenAI(t *testing.T) {
	t.Parallel()
	aitest.RunContract(t, func(t *testing.T) ai.Provider {
		srv := aitest.NewOpenAIServer(t, fallback.New(time.Now))
		p, err := openai.New(openai.Config{APIKey: "sk-test", BaseURL: srv.URL()}, time.Now)
		require.NoError(t, err)
		return p
	})
}

// TestContractOpenAICompatible runs the suite the way a local server is configured: no API
// key, a model the price table does not know, its own provider name.
func TestContractOpenAICompatible(t *testing.T) {
	t.Parallel()
	aitest.RunContract(t, func(t *testing.T) ai.Provider {
		srv := aitest.NewOpenAIServer(t, fallback.New(time.Now))
		p, err := openai.New(openai.Config{Name: "ollama", BaseURL: srv.URL(), Model: "llama3.1:8b"}, time.Now)
		require.NoError(t, err)
		return p
	})
}

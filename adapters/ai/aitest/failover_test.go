package aitest_test

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/ai/aitest"
	"github.com/vigilhq/vigil/adapters/ai/chain"
	"github.com/vigilhq/vigil/adapters/ai/claude"
	"github.com/vigilhq/vigil/adapters/ai/fallback"
	"github.com/vigilhq/vigil/adapters/ai/openai"
	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/ai"
	"github.com/vigilhq/vigil/domain/monitor"
)

type failoverBundle struct {
	claudeSrv, openaiSrv *aitest.FakeServer
	chain                *chain.Chain
}

// setupFailover chains the real Claude and OpenAI adapters, each against its fake server,
// and the rules, with fast retries.
func setupFailover(t *testing.T) *failoverBundle {
	t.Helper()
	b := &failoverBundle{
		claudeSrv: aitest.NewClaudeServer(t, fallback.New(time.Now)),
		openaiSrv: aitest.NewOpenAIServer(t, fallback.New(time.Now)),
	}
	cp, err := claude.New(claude.Config{APIKey: "sk-ant-test", BaseURL: b.claudeSrv.URL()}, time.Now)
	require.NoError(t, err)
	op, err := openai.New(openai.Config{APIKey: "sk-test", BaseURL: b.openaiSrv.URL()}, time.Now)
	require.NoError(t, err)
	b.chain, err = chain.New([]chain.Named{
		{Name: "claude", Label: "Claude", Provider: cp},
		{Name: "openai", Label: "OpenAI", Provider: op},
		{Name: "fallback", Label: "rules", Provider: fallback.New(time.Now)},
	}, chain.Config{BackoffBase: 5 * time.Millisecond, BackoffMax: 20 * time.Millisecond, Logger: zerolog.Nop()})
	require.NoError(t, err)
	return b
}

func TestFailoverClaudeOverloadedOpenAIAnswers(t *testing.T) {
	t.Parallel()
	b := setupFailover(t)
	b.claudeSrv.FailNext(10, 529, nil, aitest.ClaudeErrorBody(529, "Overloaded"))
	spec, u, err := b.chain.Classify(context.Background(), "Tell me when the price drops below $80", ai.Hints{})
	require.NoError(t, err)
	require.Equal(t, monitor.KindCurrentState, spec.Kind)
	require.Equal(t, "openai", u.Provider)
	require.Equal(t, 3, b.claudeSrv.Requests(), "Claude is retried before failing over")
	require.Equal(t, 1, b.openaiSrv.Requests())
	require.Contains(t, u.Notes, "Claude is unavailable; classified with OpenAI instead.")
	require.Contains(t, spec.Warnings, "Claude is unavailable; classified with OpenAI instead.")
}

func TestFailoverBothFailingRulesAnswer(t *testing.T) {
	t.Parallel()
	b := setupFailover(t)
	b.claudeSrv.FailNext(10, 500, nil, aitest.ClaudeErrorBody(500, "internal"))
	b.openaiSrv.FailNext(10, 503, nil, aitest.OpenAIErrorBody(503, "unavailable"))
	facts, u, err := b.chain.Extract(context.Background(), aitest.PriceSpec(), aitest.PriceDocument("64.5"))
	require.NoError(t, err)
	require.Equal(t, fallback.Name, u.Provider)
	require.Len(t, facts, 1)
	require.Equal(t, 64.5, *facts[0].Number)
	require.Contains(t, u.Notes[0], "Claude is unavailable")

	// A prompt nobody can monitor is the user's problem, not a provider failure: it is
	// returned as such, whoever answers.
	b2 := setupFailover(t)
	_, _, err = b2.chain.Classify(context.Background(), "Write me a poem about the sea", ai.Hints{})
	require.Equal(t, domain.EINVALID, domain.ErrorCode(err), "%v", err)
	require.Equal(t, 0, b2.openaiSrv.Requests())
}

func TestFailoverRetryAfterHonoured(t *testing.T) {
	t.Parallel()
	b := setupFailover(t)
	b.claudeSrv.FailNext(1, 429, map[string]string{"retry-after": "0"}, aitest.ClaudeErrorBody(429, "rate limited"))
	_, u, err := b.chain.Classify(context.Background(), "price above 100", ai.Hints{})
	require.NoError(t, err)
	require.Equal(t, "claude", u.Provider, "a rate-limited call is retried at the same provider")
	require.Equal(t, 2, b.claudeSrv.Requests())
	require.Equal(t, 0, b.openaiSrv.Requests())
}

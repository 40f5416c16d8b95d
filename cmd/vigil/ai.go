package main

import (
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/vigilhq/vigil/adapters/ai/chain"
	"github.com/vigilhq/vigil/adapters/ai/claude"
	"github.com/vigilhq/vigil/adapters/ai/fallback"
	"github.com/vigilhq/vigil/adapters/ai/openai"
	"github.com/vigilhq/vigil/adapters/ai/pricing"
	"github.com/vigilhq/vigil/adapters/postgres"
	"github.com/vigilhq/vigil/adapters/render"
	"github.com/vigilhq/vigil/adapters/source"
	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/domain/ai"
	"github.com/vigilhq/vigil/domain/app"
)

// newAIProvider builds the provider chain of VIGIL_AI_PROVIDERS: each provider in order,
// with retries, circuit breakers, caching and the per-user budget, ending at the rules.
func newAIProvider(cfg config.Config, spend chain.SpendStore, observer chain.Observer, log zerolog.Logger, now func() time.Time) (*chain.Chain, error) {
	prices := pricing.Default()
	if cfg.AIPrices != "" {
		override, err := pricing.Parse(cfg.AIPrices)
		if err != nil {
			return nil, fmt.Errorf("AI_PRICES: %w", err)
		}
		prices = prices.Merge(override)
	}
	var named []chain.Named
	for _, name := range cfg.AIProviders {
		var (
			p     ai.Provider
			label string
			err   error
		)
		switch name {
		case "claude":
			label = "Claude"
			p, err = claude.New(claude.Config{APIKey: cfg.AnthropicAPIKey, BaseURL: cfg.AnthropicBaseURL, Model: cfg.AnthropicModel, Prices: prices}, now)
		case "openai":
			label = "OpenAI"
			p, err = openai.New(openai.Config{APIKey: cfg.OpenAIAPIKey, BaseURL: cfg.OpenAIBaseURL, Model: cfg.OpenAIModel, Prices: prices}, now)
		case "fallback":
			label, p = "rules", fallback.New(now)
		default:
			err = fmt.Errorf("unknown provider %q", name)
		}
		if err != nil {
			return nil, fmt.Errorf("AI provider %s: %w", name, err)
		}
		named = append(named, chain.Named{Name: name, Label: label, Provider: p})
	}
	if len(named) == 0 || named[len(named)-1].Name != "fallback" {
		// The rules never fail for lack of a network, so they always end the chain.
		named = append(named, chain.Named{Name: "fallback", Label: "rules", Provider: fallback.New(now)})
	}
	c, err := chain.New(named, chain.Config{MonthlyBudget: cfg.AIMonthlyBudget, Spend: spend, Observer: observer,
		// The rules that end the chain also read the facts whose selector the user gave.
		Logger: log.With().Str("component", "ai").Logger(), Now: now, Exact: named[len(named)-1].Provider})
	if err != nil {
		return nil, fmt.Errorf("AI provider chain: %w", err)
	}
	return c, nil
}

// aiProvider returns the process's AI chain, built on first use (roles are built one after
// another, so no lock is needed): in `vigil all` the API and the evaluator share its
// caches, in-flight coalescing and circuit breakers.
func (m *Main) aiProvider() (ai.Provider, error) {
	if m.ai == nil {
		p, err := newAIProvider(m.cfg, postgres.NewEvaluationStore(m.pool, "vigil/"+m.name), m.metrics, m.log, m.now)
		if err != nil {
			return nil, err
		}
		m.ai = p
		m.metrics.WatchBreakers(p)
	}
	return m.ai, nil
}

// sourceFetcher returns the process's fetcher, built on first use, so monitors sharing a
// source share one fetch whichever role asks.
// pageRenderer returns the process's page renderer, or nil, with a log line, when no
// Chromium is installed: monitors that ask for rendering are then refused with a 422
// naming VIGIL_CHROMIUM. A VIGIL_CHROMIUM that names no file is a start-up error.
func (m *Main) pageRenderer() (app.Fetcher, error) {
	if !m.pagesBuilt {
		m.pagesBuilt = true
		path, err := render.Find(m.cfg.Chromium)
		switch {
		case err != nil && m.cfg.Chromium != "":
			return nil, fmt.Errorf("VIGIL_CHROMIUM: %w", err)
		case err != nil:
			m.log.Info().Msg("no Chromium on PATH: monitors that ask for rendering are refused (set VIGIL_CHROMIUM)")
		default:
			fetcher := m.sourceFetcher()
			r, err := render.New(render.Config{ExecPath: path, Tabs: m.cfg.RenderTabs, Timeout: m.cfg.RenderTimeout,
				AllowPrivate: m.cfg.AllowPrivateSources, UserAgent: fetcher.UserAgent(), Polite: fetcher.Polite()}, m.now)
			if err != nil {
				return nil, err
			}
			m.pages = r
			m.log.Info().Str("chromium", path).Int("tabs", m.cfg.RenderTabs).Msg("pages are rendered on request")
		}
	}
	if m.pages == nil {
		return nil, nil // an untyped nil: the use cases test for no renderer
	}
	return m.pages, nil
}

// botAgent is the User-Agent of Vigil's requests: who it is and where its operator says
// what it does and how to reach them.
func botAgent(contact string) string {
	if contact == "" {
		return source.UserAgentDefault
	}
	return fmt.Sprintf("%s/1.0 (+%s)", source.RobotsAgent, contact)
}

func (m *Main) sourceFetcher() *source.Fetcher {
	if m.fetcher == nil {
		m.fetcher = source.New(source.Config{AllowPrivate: m.cfg.AllowPrivateSources, UserAgent: botAgent(m.cfg.BotContact),
			Polite: source.PoliteConfig{HostConcurrency: m.cfg.SourceHostConcurrency, HostDelay: m.cfg.SourceHostDelay, Robots: m.cfg.SourceRobots}}, m.now)
	}
	return m.fetcher
}

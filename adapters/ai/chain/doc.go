// Package chain is the AI provider chain: one ai.Provider that asks a list of providers in
// order (typically Claude, OpenAI, then the rule-based fallback) and hides their outages,
// their cost and their latency from the rest of Vigil.
//
// For each call and each provider the chain runs a failsafe-go executor made of, from the
// outside in:
//
//   - a timeout that bounds all the time spent on that provider for this call (every attempt
//     and every backoff wait): Config.ClassifyTimeout for Classify, Config.CallTimeout for
//     Extract and Evaluate;
//   - a retry policy that retries only an *ai.Error with Retryable set, with exponential
//     backoff and jitter, waiting at least the provider's RetryAfter; when that wait would not
//     fit in what is left of the timeout the chain moves on at once instead of waiting;
//   - a circuit breaker shared by every call to that provider. It counts attempts: it opens
//     after Config.BreakerFailures failed attempts among the last Config.BreakerWindow,
//     lets one probe through after Config.BreakerDelay, and closes when the probe succeeds.
//     An open breaker skips the provider without calling it.
//
// A provider that says the input cannot be monitored (a *domain.Error with code EINVALID)
// ends the call: another provider is not asked to second-guess it. Any other failure moves on
// to the next provider, and the answer then carries a note for the user ("Claude is
// unavailable; evaluated with rules instead."). When every provider fails the chain returns an
// EUNAVAILABLE *domain.Error.
//
// Answers are cached in memory (bounded LRU) per provider and model: Classify by prompt and
// hints, Extract by spec and document hash, Evaluate by spec, facts and document hash. A cache
// hit costs nothing and is marked Usage.Cached. Lookups go through the providers in order, so
// the best provider's cached answer wins, and a worse provider's cached answer is only used
// when the better ones cannot answer now. Identical calls in flight at the same time share one
// provider call.
//
// Usage.Cost of an answer includes what the failed attempts of the same call were billed
// (a provider may bill malformed output), so budgets see every dollar. Every attempt is logged
// at info level with provider, model, operation, latency, tokens, cost and outcome; prompts
// are cut to 60 characters, documents and keys are never logged. Cache hits and attempts an
// open breaker refused are logged at debug level. Config.Observer is told about each of these
// from the same place, with the same outcome, so metrics count what the logs show.
//
// With a monthly budget, a user who has spent it is served by the last provider only (the
// rule-based fallback) until the month ends; cached answers of other providers are still
// served since they cost nothing.
package chain

// Package ai is the port to AI providers: classify a prompt once, then extract facts from a
// source and judge the current state on every run. Historical comparison never goes here.
package ai

import (
	"context"
	"time"

	"github.com/vigilhq/vigil/domain/monitor"
)

// Document is a fetched source.
type Document struct {
	URL         string
	ContentType string // media type without parameters, e.g. application/json
	Body        []byte
	// Text is the document's visible text (HTML without markup, scripts and styles; feed
	// entries), or empty when Body is already text or structured data such as JSON.
	Text      string
	FetchedAt time.Time
	Hash      string // hex SHA-256 of Body
	// Format is how the monitor says the document is read (json, html, text, rss);
	// "" or auto decides from ContentType and Body.
	Format string
}

// Hints help classification: the source, when the user gave one.
type Hints struct {
	SourceURL string
}

// Usage is the cost of one provider call.
type Usage struct {
	Provider     string
	Model        string
	InputTokens  int
	OutputTokens int
	Cost         float64
	Latency      time.Duration
	// Notes are short, user-facing remarks about how the answer was produced, such as
	// "Claude is unavailable; evaluated with rules instead".
	Notes []string
	// Cached says the answer came from a cache and cost nothing this time.
	Cached bool
}

type userKey struct{}

type fetchedAfterKey struct{}

// WithFetchedAfter asks the fetcher for a document fetched at or after t: one it fetched
// earlier for another monitor is not shared. The evaluator passes the time its slot was
// scheduled, so monitors of one source share one fetch per scheduling tick, and no
// evaluation sees an older document than the one before it.
func WithFetchedAfter(ctx context.Context, t time.Time) context.Context {
	return context.WithValue(ctx, fetchedAfterKey{}, t)
}

// FetchedAfter returns the time WithFetchedAfter set, or the zero time.
func FetchedAfter(ctx context.Context) time.Time {
	t, _ := ctx.Value(fetchedAfterKey{}).(time.Time)
	return t
}

// WithUser returns a context carrying the id of the user a call is made for, so providers
// can apply that user's budget.
func WithUser(ctx context.Context, userID string) context.Context {
	return context.WithValue(ctx, userKey{}, userID)
}

// UserFrom returns the user id set by WithUser, or "".
func UserFrom(ctx context.Context) string {
	id, _ := ctx.Value(userKey{}).(string)
	return id
}

// Provider is an AI provider. Implementations return an EINVALID *domain.Error when a
// prompt cannot be monitored (its message says what was not understood) and an
// EUNAVAILABLE one when the provider cannot answer now.
type Provider interface {
	Classify(ctx context.Context, prompt string, hints Hints) (monitor.Spec, Usage, error)
	Extract(ctx context.Context, spec monitor.Spec, doc Document) ([]monitor.Fact, Usage, error)
	Evaluate(ctx context.Context, spec monitor.Spec, facts []monitor.Fact, doc Document) (monitor.Verdict, Usage, error)
}

// SelectorRequest asks where a fact went: its selector stopped finding it after the
// source changed.
type SelectorRequest struct {
	Spec     monitor.Spec
	Fact     monitor.FactSpec // the fact, with the selector that found nothing
	LastGood monitor.Fact     // its last good value, evidence and locator
}

// SelectorSuggester is a provider that can suggest a new selector for a fact whose
// selector stopped matching. It answers "" when the fact is not on the page; the caller
// checks any suggestion before trusting it.
type SelectorSuggester interface {
	SuggestSelector(ctx context.Context, req SelectorRequest, doc Document) (string, Usage, error)
}

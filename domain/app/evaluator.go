package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/ai"
	"github.com/vigilhq/vigil/domain/event"
	"github.com/vigilhq/vigil/domain/monitor"
)

// MonitorFinder loads monitors.
type MonitorFinder interface {
	// FindMonitorByID returns the monitor or ENOTFOUND.
	FindMonitorByID(ctx context.Context, id string) (*monitor.Monitor, error)
}

// Fetcher fetches a monitor's source. It returns EUNAVAILABLE for problems worth
// retrying (timeouts, 5xx) and EINVALID for ones that are not (404, too large, forbidden address).
type Fetcher interface {
	Fetch(ctx context.Context, url string) (ai.Document, error)
}

// Evaluator runs one evaluation: fetch the source, extract facts, judge the state, and
// publish EvaluationCompleted. It never writes Postgres; the recorder does.
type Evaluator struct {
	monitors    MonitorFinder
	fetcher     Fetcher
	provider    ai.Provider
	pub         Publisher
	now         func() time.Time
	maxAttempts int
}

// EvaluatorMaxAttemptsDefault is how many deliveries a transient failure is retried before
// the evaluation is recorded as failed.
const EvaluatorMaxAttemptsDefault = 3

// NewEvaluator returns an Evaluator. maxAttempts <= 0 means EvaluatorMaxAttemptsDefault.
func NewEvaluator(monitors MonitorFinder, fetcher Fetcher, provider ai.Provider, pub Publisher, now func() time.Time, maxAttempts int) *Evaluator {
	if maxAttempts <= 0 {
		maxAttempts = EvaluatorMaxAttemptsDefault
	}
	return &Evaluator{monitors: monitors, fetcher: fetcher, provider: provider, pub: pub, now: now, maxAttempts: maxAttempts}
}

// Evaluate handles one EvaluationDue delivered for the attempt-th time. A deleted monitor
// is skipped. A transient failure is returned (to be retried) until the last attempt; then,
// like a permanent failure, it is published as a failed evaluation so the user sees it.
func (e *Evaluator) Evaluate(ctx context.Context, due event.EvaluationDue, attempt int) error {
	m, err := e.monitors.FindMonitorByID(ctx, due.MonitorID)
	if errors.Is(err, domain.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("load monitor %s: %w", due.MonitorID, err)
	}
	started := e.now().UTC()
	done := event.EvaluationCompleted{MonitorID: m.ID, Kind: m.Spec.Kind, ScheduledFor: due.ScheduledFor.UTC(), StartedAt: started, Attempt: attempt}
	err = e.run(ctx, m, &done)
	if err != nil {
		if domain.ErrorCode(err) != domain.EINVALID && attempt < e.maxAttempts {
			return fmt.Errorf("evaluate monitor %s (attempt %d): %w", m.ID, attempt, err)
		}
		done.Status = monitor.EvaluationFailed
		done.State = monitor.StateUnknown
		done.Error = domain.ErrorMessage(err)
		done.Facts = nil
	}
	done.FinishedAt = e.now().UTC()
	done.Usage.LatencyMS = done.FinishedAt.Sub(started).Milliseconds()
	if err := e.pub.Publish(ctx, done); err != nil {
		return fmt.Errorf("publish evaluation of %s: %w", m.ID, err)
	}
	return nil
}

func (e *Evaluator) run(ctx context.Context, m *monitor.Monitor, done *event.EvaluationCompleted) error {
	if m.SourceURL == "" {
		return &domain.Error{Code: domain.EINVALID, Message: "The monitor has no source to watch."}
	}
	doc, err := e.fetcher.Fetch(ctx, m.SourceURL)
	if err != nil {
		return fmt.Errorf("fetch source: %w", err)
	}
	done.SourceHash = doc.Hash
	facts, u1, err := e.provider.Extract(ctx, m.Spec, doc)
	if err != nil {
		return fmt.Errorf("extract facts: %w", err)
	}
	done.Facts = facts
	done.Status = monitor.EvaluationSucceeded
	if m.Spec.Kind == monitor.KindHistoricalChange {
		// The system compares history, never the AI: the recorder judges from stored facts.
		done.State = monitor.StateUnknown
		done.Usage = event.Usage{Provider: u1.Provider, Model: u1.Model, InputTokens: u1.InputTokens, OutputTokens: u1.OutputTokens, Cost: u1.Cost}
		return nil
	}
	verdict, u2, err := e.provider.Evaluate(ctx, m.Spec, facts, doc)
	if err != nil {
		return fmt.Errorf("evaluate condition: %w", err)
	}
	done.State = verdict.State
	done.Confidence = verdict.Confidence
	done.Explanation = verdict.Explanation
	if verdict.State == monitor.StateUnknown {
		done.Status = monitor.EvaluationAbstained
	}
	done.Usage = event.Usage{
		Provider: u2.Provider, Model: u2.Model,
		InputTokens: u1.InputTokens + u2.InputTokens, OutputTokens: u1.OutputTokens + u2.OutputTokens,
		Cost: u1.Cost + u2.Cost,
	}
	return nil
}

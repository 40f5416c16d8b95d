package ai

import (
	"errors"
	"fmt"
	"time"

	"github.com/vigilhq/vigil/domain"
)

// Error is a provider failure. The provider chain reads it to decide what to do next:
// retry the same provider (Retryable, after RetryAfter when the provider said so), or move
// on to the next provider. Message is short and safe to show users.
type Error struct {
	Provider   string
	Retryable  bool          // worth another attempt at the same provider (429, 5xx, overloaded, malformed output)
	RetryAfter time.Duration // the provider's own hint, 0 when none
	StatusCode int           // HTTP status when there was one
	Message    string
	Err        error
}

// Error implements error.
func (e *Error) Error() string {
	msg := fmt.Sprintf("%s: %s", e.Provider, e.Message)
	if e.StatusCode != 0 {
		msg += fmt.Sprintf(" (HTTP %d)", e.StatusCode)
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// AsError returns the *Error in err's chain, if any.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// MissingFact returns the fact an Extract error says is not in the document, or "" when
// the error is about something else. Providers name it in the EINVALID error's "fact" field.
func MissingFact(err error) string {
	var de *domain.Error
	if !errors.As(err, &de) || de.Code != domain.EINVALID {
		return ""
	}
	return de.Fields["fact"]
}

// ErrNoSuggester says no provider can suggest selectors: none is configured that can.
var ErrNoSuggester = errors.New("no AI provider can suggest a selector")

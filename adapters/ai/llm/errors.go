package llm

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/ai"
)

// RetryAfter reads a Retry-After header: delay seconds or an HTTP date. 0 when absent or
// invalid, or beyond a day.
func RetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		if secs <= 0 || secs > 24*3600 {
			return 0
		}
		return time.Duration(secs * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// Redact bounds a server message to maxRunes and removes secret (the API key), should a
// server ever echo it.
func Redact(s, secret string, maxRunes int) string {
	if secret != "" {
		s = strings.ReplaceAll(s, secret, "[redacted]")
	}
	if r := []rune(s); len(r) > maxRunes {
		s = string(r[:maxRunes]) + "…"
	}
	return s
}

// Fail builds a provider error. It wraps an EUNAVAILABLE *domain.Error, as the port
// promises, so code that only knows domain codes sees "unavailable".
func Fail(provider string, status int, retryable bool, after time.Duration, msg string, cause error) *ai.Error {
	return &ai.Error{Provider: provider, Retryable: retryable, RetryAfter: after, StatusCode: status, Message: msg,
		Err: &domain.Error{Code: domain.EUNAVAILABLE, Message: msg + ".", Err: cause}}
}

// Malformed is the retryable error of an answer Vigil could not use.
func Malformed(provider, label string, cause error) *ai.Error {
	return Fail(provider, 0, true, 0, label+" returned an answer Vigil could not use", cause)
}

// AnswerError passes on a definite answer (*domain.Error: the prompt was rejected, a fact
// is not in the document) and turns anything else into a malformed-output error.
func AnswerError(provider, label string, err error) error {
	var de *domain.Error
	if errors.As(err, &de) {
		return de
	}
	return Malformed(provider, label, err)
}

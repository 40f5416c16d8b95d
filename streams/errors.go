package streams

import (
	"errors"
	"time"
)

// retryError asks the runner to redeliver after a fixed delay.
type retryError struct {
	err   error
	after time.Duration
}

func (e *retryError) Error() string {
	if e.err == nil {
		return "retry"
	}
	return e.err.Error()
}
func (e *retryError) Unwrap() error { return e.err }

// permanentError asks the runner to give up on the message.
type permanentError struct{ err error }

func (e *permanentError) Error() string {
	if e.err == nil {
		return "permanent failure"
	}
	return e.err.Error()
}
func (e *permanentError) Unwrap() error { return e.err }

// Retry wraps err so the runner redelivers the message after the given delay (NakWithDelay)
// instead of the backoff by delivery count. The last allowed delivery is still dead-lettered.
func Retry(err error, after time.Duration) error {
	return &retryError{err: err, after: max(after, 0)}
}

// Permanent wraps err so the runner stops redelivering the message: it is copied to the dead
// letter stream and terminated.
func Permanent(err error) error {
	return &permanentError{err: err}
}

// IsPermanent reports whether err, or an error it wraps, was made by Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// retryAfter returns the delay asked for by Retry, if any.
func retryAfter(err error) (time.Duration, bool) {
	var r *retryError
	if errors.As(err, &r) {
		return r.after, true
	}
	return 0, false
}

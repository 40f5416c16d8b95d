package domain_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/vigilhq/vigil/domain"
)

func TestErrorCodes(t *testing.T) {
	t.Parallel()
	wrapped := fmt.Errorf("load monitor 42: %w", domain.Errorf(domain.ENOTFOUND, "Monitor not found."))
	if !errors.Is(wrapped, domain.ErrNotFound) {
		t.Fatal("wrapped not-found error does not match ErrNotFound")
	}
	if errors.Is(wrapped, domain.ErrConflict) {
		t.Fatal("not-found error matches ErrConflict")
	}
	if got := domain.ErrorCode(wrapped); got != domain.ENOTFOUND {
		t.Fatalf("ErrorCode = %q, want %q", got, domain.ENOTFOUND)
	}
	if got := domain.ErrorMessage(wrapped); got != "Monitor not found." {
		t.Fatalf("ErrorMessage = %q", got)
	}
	plain := errors.New("connection reset")
	if domain.ErrorCode(plain) != domain.EINTERNAL || domain.ErrorMessage(plain) != "Internal error." {
		t.Fatal("plain errors must be internal with a generic message")
	}
	if domain.ErrorCode(nil) != "" {
		t.Fatal("nil error has a code")
	}
}

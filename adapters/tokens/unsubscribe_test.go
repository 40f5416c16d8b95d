package tokens_test

import (
	"bytes"
	"testing"

	"github.com/vigilhq/vigil/adapters/tokens"
)

func TestUnsubscribe(t *testing.T) {
	t.Parallel()
	if _, err := tokens.NewUnsubscribe([]byte("short")); err == nil {
		t.Fatal("short key accepted")
	}
	u, err := tokens.NewUnsubscribe(bytes.Repeat([]byte("k"), 32))
	if err != nil {
		t.Fatal(err)
	}
	tok := u.Sign("user-1", "Ann@Example.com")
	id, email, err := u.Verify(tok)
	if err != nil || id != "user-1" || email != "ann@example.com" {
		t.Fatalf("Verify = %q %q %v", id, email, err)
	}
	other, _ := tokens.NewUnsubscribe(bytes.Repeat([]byte("x"), 32))
	for _, bad := range []string{"", "abc", tok + "x", other.Sign("user-1", "ann@example.com"), "dXNlcg." + tok[len(tok)-43:]} {
		if _, _, err := u.Verify(bad); err != tokens.ErrInvalidToken {
			t.Errorf("Verify(%q) = %v, want ErrInvalidToken", bad, err)
		}
	}
}

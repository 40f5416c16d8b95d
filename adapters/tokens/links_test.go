package tokens_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/tokens"
)

func TestLinksScopedAndExpiring(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	l, err := tokens.NewLinks([]byte(strings.Repeat("k", 32)))
	require.NoError(t, err)
	other, err := tokens.NewLinks([]byte(strings.Repeat("o", 32)))
	require.NoError(t, err)

	tok := l.SignRecipient("user-1", "Bob@Example.com", now.Add(time.Hour))
	user, email, err := l.VerifyRecipient(tok, now)
	require.NoError(t, err)
	require.Equal(t, "user-1", user)
	require.Equal(t, "bob@example.com", email)

	_, _, err = l.VerifyRecipient(tok, now.Add(2*time.Hour))
	require.ErrorIs(t, err, tokens.ErrExpiredToken)
	_, _, err = other.VerifyRecipient(tok, now)
	require.ErrorIs(t, err, tokens.ErrInvalidToken, "another key's token")

	// The same values signed for another purpose do not confirm a recipient.
	foreign := l.Sign("monitor", now.Add(time.Hour), "user-1", "bob@example.com")
	_, _, err = l.VerifyRecipient(foreign, now)
	require.ErrorIs(t, err, tokens.ErrInvalidToken)

	for _, bad := range []string{"", "abc", tok + "x", "x." + strings.SplitN(tok, ".", 2)[1]} {
		_, _, err := l.VerifyRecipient(bad, now)
		require.ErrorIs(t, err, tokens.ErrInvalidToken, bad)
	}
	_, err = tokens.NewLinks([]byte("short"))
	require.Error(t, err)
}

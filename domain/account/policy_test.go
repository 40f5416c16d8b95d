package account

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPasswordPolicy(t *testing.T) {
	t.Parallel()
	p := NewPasswordPolicy()
	cases := []struct {
		name, password, wantErr string
	}{
		{"empty", "", "is required"},
		{"short", "abc123XYZ", "at least 10"},
		{"ten characters", "kq8#Lm2$vZ", ""},
		{"ten runes, more bytes", "ünïcödé✓✓✓", ""},
		{"128 characters", strings.Repeat("x", 127) + "y", ""},
		{"129 characters", strings.Repeat("x", 128) + "y", "at most 128"},
		{"common", "qwertyuiop", "too common"},
		{"common, other case", "PassWord123", "too common"},
		{"common digits", "1234567890", "too common"},
		{"invalid utf-8", "abcdefghij\xff", "UTF-8"},
		{"passphrase", "correct horse battery staple", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := p.Check(tc.password)
			if tc.wantErr == "" {
				require.Empty(t, got)
				return
			}
			require.Contains(t, got, tc.wantErr)
			if tc.password != "" {
				require.NotContains(t, got, tc.password, "the message must not echo the password")
			}
		})
	}
}

func TestCommonPasswordList(t *testing.T) {
	t.Parallel()
	set := loadCommonPasswords()
	require.GreaterOrEqual(t, len(set), 1000)
	for w := range set {
		require.Equal(t, strings.ToLower(w), w)
		require.Equal(t, strings.TrimSpace(w), w)
	}
	require.True(t, NewPasswordPolicy().IsCommon("LetMeIn"))
}

func TestValidateEmail(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"ann@example.com", "Ann.Lee+vigil@Example.CO.uk", "admin@vigil.localhost", "root@localhost"} {
		require.Empty(t, validateEmail(ok), ok)
	}
	for _, bad := range []string{"", "ann", "@example.com", "ann@", "ann@example", "Ann <ann@example.com>",
		"ann@exa mple.com", strings.Repeat("a", 320) + "@example.com"} {
		require.NotEmpty(t, validateEmail(bad), bad)
	}
}

func TestValidateTimezone(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"UTC", "Europe/Berlin", "America/Argentina/Buenos_Aires"} {
		require.Empty(t, validateTimezone(ok), ok)
	}
	for _, bad := range []string{"", "Local", "Mars/Olympus", "../etc/passwd", "+02:00"} {
		require.NotEmpty(t, validateTimezone(bad), bad)
	}
}

func TestRefreshTokenFormat(t *testing.T) {
	t.Parallel()
	tok, hash, err := newRefreshToken()
	require.NoError(t, err)
	require.Len(t, tok, 43, "256 bits in unpadded base64url")
	got, ok := hashRefreshToken(tok)
	require.True(t, ok)
	require.Equal(t, hash, got)
	other, _, err := newRefreshToken()
	require.NoError(t, err)
	require.NotEqual(t, tok, other)
	for _, bad := range []string{"", "short", tok + "A", tok[:42] + "!", strings.Repeat("=", 43)} {
		_, ok := hashRefreshToken(bad)
		require.False(t, ok, bad)
	}
}

func TestRoleValid(t *testing.T) {
	t.Parallel()
	require.True(t, RoleUser.Valid())
	require.True(t, RoleAdmin.Valid())
	require.False(t, Role("root").Valid())
}

package account

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestNewAPIKeyParses(t *testing.T) {
	t.Parallel()
	format := regexp.MustCompile(`^vgl_[A-Za-z0-9]{8}_[A-Za-z0-9_-]{43}$`)
	seen := map[string]bool{}
	for range 200 {
		key, prefix, err := newAPIKey()
		require.NoError(t, err)
		require.Regexp(t, format, key)
		require.Len(t, key, APIKeyLen)
		got, ok := parseAPIKey(key)
		require.True(t, ok, key)
		require.Equal(t, prefix, got)
		require.False(t, seen[key])
		seen[key] = true
	}
}

func TestParseAPIKeyRejects(t *testing.T) {
	t.Parallel()
	key, _, err := newAPIKey()
	require.NoError(t, err)
	secret := key[13:]
	cases := map[string]string{
		"empty":                 "",
		"tag only":              "vgl_",
		"other tag":             "vgx_" + key[4:],
		"short":                 key[:len(key)-1],
		"long":                  key + "A",
		"no separator":          key[:12] + "." + secret,
		"prefix with dash":      "vgl_abc-defg_" + secret,
		"prefix with non-ascii": "vgl_abcdéfg_" + secret[1:],
		"secret not base64url":  key[:13] + strings.Repeat("+", 43),
		"secret padding bits":   key[:13] + secret[:42] + "B", // the last character's low bits must be zero
		"jwt-looking":           "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiIxIn0.sig",
	}
	for name, k := range cases {
		_, ok := parseAPIKey(k)
		require.False(t, ok, name)
	}
}

func TestAPIKeyUsable(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	later, earlier := now.Add(time.Second), now.Add(-time.Second)
	cases := []struct {
		name string
		key  APIKey
		want bool
	}{
		{"no expiry", APIKey{}, true},
		{"expires later", APIKey{ExpiresAt: &later}, true},
		{"expires now", APIKey{ExpiresAt: &now}, false},
		{"expired", APIKey{ExpiresAt: &earlier}, false},
		{"revoked", APIKey{RevokedAt: &earlier}, false},
	}
	for _, tt := range cases {
		require.Equal(t, tt.want, tt.key.Usable(now), tt.name)
	}
}

func TestParseAllowlistPattern(t *testing.T) {
	t.Parallel()
	cases := []struct {
		raw, pattern, kind string
		ok                 bool
	}{
		{"ann@example.com", "ann@example.com", AllowlistKindEmail, true},
		{"  Ann@Example.COM ", "ann@example.com", AllowlistKindEmail, true},
		{"@Example.com", "@example.com", AllowlistKindDomain, true},
		{"@sub.example.co.uk", "@sub.example.co.uk", AllowlistKindDomain, true},
		{"", "", "", false},
		{"@", "", "", false},
		{"@nodot", "", "", false},
		{"example.com", "", "", false},
		{"@a@example.com", "", "", false},
		{"ann@@example.com", "", "", false},
		{"Ann <ann@example.com>", "", "", false},
		{"ann@example.com\n", "ann@example.com", AllowlistKindEmail, true},
	}
	for _, tt := range cases {
		pattern, kind, msg := ParseAllowlistPattern(tt.raw)
		if !tt.ok {
			require.NotEmpty(t, msg, "%q", tt.raw)
			continue
		}
		require.Empty(t, msg, "%q", tt.raw)
		require.Equal(t, tt.pattern, pattern)
		require.Equal(t, tt.kind, kind)
	}
}

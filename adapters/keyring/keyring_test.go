package keyring_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/keyring"
)

func key(t *testing.T, id string) keyring.Key {
	t.Helper()
	b := make([]byte, keyring.KeySize)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return keyring.Key{ID: id, Secret: b}
}

func TestSealOpenRotate(t *testing.T) {
	t.Parallel()
	old, cur := key(t, "k1"), key(t, "k2")
	before, err := keyring.New([]keyring.Key{old})
	require.NoError(t, err)
	sealedOld, err := before.Seal([]byte("whsec_abc"), []byte("action-1"))
	require.NoError(t, err)
	require.Equal(t, "k1", keyring.KeyID(sealedOld))
	require.NotContains(t, sealedOld, "whsec_abc")

	// After rotation the new key seals and both open.
	after, err := keyring.New([]keyring.Key{cur, old})
	require.NoError(t, err)
	sealedNew, err := after.Seal([]byte("whsec_abc"), []byte("action-1"))
	require.NoError(t, err)
	require.Equal(t, "k2", keyring.KeyID(sealedNew))
	for _, s := range []string{sealedOld, sealedNew} {
		plain, err := after.Open(s, []byte("action-1"))
		require.NoError(t, err)
		require.Equal(t, "whsec_abc", string(plain))
	}
	// Two seals of the same value differ (random nonce).
	again, err := after.Seal([]byte("whsec_abc"), []byte("action-1"))
	require.NoError(t, err)
	require.NotEqual(t, sealedNew, again)

	// A key that was retired no longer opens what it sealed.
	retired, err := keyring.New([]keyring.Key{cur})
	require.NoError(t, err)
	_, err = retired.Open(sealedOld, []byte("action-1"))
	require.ErrorIs(t, err, keyring.ErrUnreadable)
}

func TestOpenRefusesTamperingAndOtherContexts(t *testing.T) {
	t.Parallel()
	k, err := keyring.New([]keyring.Key{key(t, "k1")})
	require.NoError(t, err)
	sealed, err := k.Seal([]byte("secret"), []byte("action-1"))
	require.NoError(t, err)

	_, err = k.Open(sealed, []byte("action-2"))
	require.ErrorIs(t, err, keyring.ErrUnreadable, "a value copied to another row must not open")

	parts := strings.SplitN(sealed, ":", 3)
	raw, err := base64.RawURLEncoding.DecodeString(parts[2])
	require.NoError(t, err)
	raw[len(raw)-1] ^= 1
	tampered := parts[0] + ":" + parts[1] + ":" + base64.RawURLEncoding.EncodeToString(raw)
	for _, bad := range []string{tampered, "", "v1:k1", "v2:k1:" + parts[2], "v1:k1:!!", "v1:k1:AAAA"} {
		_, err := k.Open(bad, []byte("action-1"))
		require.ErrorIs(t, err, keyring.ErrUnreadable, bad)
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	a, b := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	keys, err := keyring.Parse("2026=" + base64.StdEncoding.EncodeToString(a) + ", old=" + base64.RawURLEncoding.EncodeToString(b))
	require.NoError(t, err)
	require.Equal(t, []keyring.Key{{ID: "2026", Secret: a}, {ID: "old", Secret: b}}, keys)

	short := base64.StdEncoding.EncodeToString([]byte("short"))
	for _, bad := range []string{"", "nokey", "=abc", "k=" + short, "k=not base64!"} {
		_, err := keyring.Parse(bad)
		require.Error(t, err, bad)
		require.NotContains(t, err.Error(), short)
	}
	_, err = keyring.New([]keyring.Key{{ID: "bad id", Secret: a}})
	require.Error(t, err)
	_, err = keyring.New([]keyring.Key{{ID: "k", Secret: a}, {ID: "k", Secret: b}})
	require.Error(t, err)
}

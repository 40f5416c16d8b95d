package tokens_test

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/tokens"
	"github.com/vigilhq/vigil/domain/account"
)

const issuer = "https://vigil.example"

type jwtBundle struct {
	key  ed25519.PrivateKey
	ks   *tokens.KeySet
	now  time.Time
	user *account.User
}

func newKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	return k
}

func setupJWT(t *testing.T) *jwtBundle {
	t.Helper()
	b := &jwtBundle{key: newKey(t), now: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC),
		user: &account.User{ID: "0190a5e4-0000-7000-8000-000000000001", Role: account.RoleUser}}
	ks, err := tokens.NewKeySet([]ed25519.PrivateKey{b.key}, tokens.JWTConfig{Issuer: issuer, Now: func() time.Time { return b.now }})
	require.NoError(t, err)
	b.ks = ks
	return b
}

func (b *jwtBundle) issue(t *testing.T) string {
	t.Helper()
	tok, exp, err := b.ks.Issue(b.user, "family-1")
	require.NoError(t, err)
	require.Equal(t, 15*time.Minute, exp)
	return tok
}

func b64(v any) string {
	raw, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(raw)
}

// craft builds a compact JWS by hand, signed with key (nil: empty signature).
func craft(header, payload map[string]any, key ed25519.PrivateKey) string {
	input := b64(header) + "." + b64(payload)
	sig := ""
	if key != nil {
		sig = base64.RawURLEncoding.EncodeToString(ed25519.Sign(key, []byte(input)))
	}
	return input + "." + sig
}

func (b *jwtBundle) claims() map[string]any {
	return map[string]any{"iss": issuer, "aud": []string{tokens.AudienceDefault}, "sub": b.user.ID, "role": "user",
		"sid": "family-1", "iat": b.now.Unix(), "exp": b.now.Add(15 * time.Minute).Unix()}
}

func (b *jwtBundle) header() map[string]any {
	return map[string]any{"alg": "EdDSA", "typ": "at+jwt", "kid": b.ks.SigningKeyID()}
}

func requireInvalid(t *testing.T, ks *tokens.KeySet, token string) {
	t.Helper()
	_, err := ks.Verify(token)
	require.Error(t, err)
	require.True(t, errors.Is(err, tokens.ErrInvalidToken), "error %v is not ErrInvalidToken", err)
}

func TestIssueAndVerify(t *testing.T) {
	t.Parallel()
	b := setupJWT(t)
	tok := b.issue(t)
	c, err := b.ks.Verify(tok)
	require.NoError(t, err)
	require.Equal(t, b.user.ID, c.UserID)
	require.Equal(t, account.RoleUser, c.Role)
	require.Equal(t, "family-1", c.SessionID)
	require.Equal(t, b.now.Add(15*time.Minute), c.ExpiresAt.UTC())

	// A token crafted by hand with the right key is accepted: the attack tests below differ
	// from it in one thing each.
	_, err = b.ks.Verify(craft(b.header(), b.claims(), b.key))
	require.NoError(t, err)

	parts := strings.Split(tok, ".")
	var hdr map[string]any
	raw, _ := base64.RawURLEncoding.DecodeString(parts[0])
	require.NoError(t, json.Unmarshal(raw, &hdr))
	require.Equal(t, "EdDSA", hdr["alg"])
	require.Equal(t, "at+jwt", hdr["typ"])
	require.Equal(t, b.ks.SigningKeyID(), hdr["kid"])
}

func TestVerifyRejectsAttacks(t *testing.T) {
	t.Parallel()
	b := setupJWT(t)
	valid := b.issue(t)
	parts := strings.Split(valid, ".")

	with := func(m map[string]any, k string, v any) map[string]any {
		out := map[string]any{}
		for key, val := range m {
			out[key] = val
		}
		if v == nil {
			delete(out, k)
		} else {
			out[k] = v
		}
		return out
	}
	hmacToken := func() string { // alg confusion: HS256 keyed with the public key bytes
		h := with(b.header(), "alg", "HS256")
		input := b64(h) + "." + b64(b.claims())
		m := hmac.New(sha256.New, b.key.Public().(ed25519.PublicKey))
		m.Write([]byte(input))
		return input + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	}
	tamperedPayload := func() string { // role user -> admin, signature kept
		return parts[0] + "." + b64(with(b.claims(), "role", "admin")) + "." + parts[2]
	}
	cases := map[string]string{
		"alg none, no signature":        craft(with(b.header(), "alg", "none"), b.claims(), nil),
		"alg none, signature kept":      b64(map[string]any{"alg": "none"}) + "." + parts[1] + "." + parts[2],
		"alg none header only":          b64(map[string]any{"alg": "none"}) + "." + b64(b.claims()) + ".",
		"alg None capitalised":          craft(with(b.header(), "alg", "None"), b.claims(), b.key),
		"alg HS256 with public key":     hmacToken(),
		"wrong key, right kid":          craft(b.header(), b.claims(), newKey(t)),
		"tampered payload":              tamperedPayload(),
		"tampered signature":            parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(make([]byte, 64)),
		"unknown kid":                   craft(with(b.header(), "kid", "not-a-key-of-ours"), b.claims(), b.key),
		"missing kid":                   craft(with(b.header(), "kid", nil), b.claims(), b.key),
		"wrong typ":                     craft(with(b.header(), "typ", "JWT"), b.claims(), b.key),
		"wrong issuer":                  craft(b.header(), with(b.claims(), "iss", "https://evil.example"), b.key),
		"wrong audience":                craft(b.header(), with(b.claims(), "aud", []string{"other-api"}), b.key),
		"no audience":                   craft(b.header(), with(b.claims(), "aud", nil), b.key),
		"no subject":                    craft(b.header(), with(b.claims(), "sub", nil), b.key),
		"no expiry":                     craft(b.header(), with(b.claims(), "exp", nil), b.key),
		"expired":                       craft(b.header(), with(b.claims(), "exp", b.now.Add(-time.Minute).Unix()), b.key),
		"issued in the future":          craft(b.header(), with(b.claims(), "iat", b.now.Add(time.Hour).Unix()), b.key),
		"unknown role":                  craft(b.header(), with(b.claims(), "role", "root"), b.key),
		"JSON serialisation":            `{"payload":"` + parts[1] + `","signatures":[{"protected":"` + parts[0] + `","signature":"` + parts[2] + `"}]}`,
		"two parts":                     parts[0] + "." + parts[1],
		"garbage":                       "not.a.jwt",
		"empty":                         "",
		"critical header extension":     craft(with(b.header(), "crit", []string{"exp"}), b.claims(), b.key),
		"header is not base64":          "***." + parts[1] + "." + parts[2],
		"payload is not JSON":           parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte("nope")) + "." + parts[2],
		"signature from another issuer": otherIssuerToken(t, b),
	}
	for name, tok := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			requireInvalid(t, b.ks, tok)
		})
	}
}

func otherIssuerToken(t *testing.T, b *jwtBundle) string {
	t.Helper()
	other, err := tokens.NewKeySet([]ed25519.PrivateKey{b.key}, tokens.JWTConfig{Issuer: "https://other.example",
		Now: func() time.Time { return b.now }})
	require.NoError(t, err)
	tok, _, err := other.Issue(b.user, "f")
	require.NoError(t, err)
	return tok
}

func TestVerifyExpiryWithInjectedClock(t *testing.T) {
	t.Parallel()
	b := setupJWT(t)
	tok := b.issue(t)
	now := b.now
	ks, err := tokens.NewKeySet([]ed25519.PrivateKey{b.key}, tokens.JWTConfig{Issuer: issuer, Now: func() time.Time { return now }})
	require.NoError(t, err)

	now = b.now.Add(15*time.Minute - time.Second)
	_, err = ks.Verify(tok)
	require.NoError(t, err, "valid until exp")
	now = b.now.Add(15*time.Minute + tokens.LeewayDefault + time.Second)
	requireInvalid(t, ks, tok)
}

func TestKeyRotation(t *testing.T) {
	t.Parallel()
	oldKey, newKeyV := newKey(t), newKey(t)
	now := func() time.Time { return time.Now() }
	before, err := tokens.NewKeySet([]ed25519.PrivateKey{oldKey}, tokens.JWTConfig{Issuer: issuer, Now: now})
	require.NoError(t, err)
	after, err := tokens.NewKeySet([]ed25519.PrivateKey{newKeyV, oldKey}, tokens.JWTConfig{Issuer: issuer, Now: now})
	require.NoError(t, err)
	require.NotEqual(t, before.SigningKeyID(), after.SigningKeyID())

	u := &account.User{ID: "u1", Role: account.RoleAdmin}
	oldTok, _, err := before.Issue(u, "s")
	require.NoError(t, err)
	c, err := after.Verify(oldTok)
	require.NoError(t, err, "tokens of the previous key verify during rotation")
	require.Equal(t, account.RoleAdmin, c.Role)

	newTok, _, err := after.Issue(u, "s")
	require.NoError(t, err)
	requireInvalid(t, before, newTok)

	retired, err := tokens.NewKeySet([]ed25519.PrivateKey{newKeyV}, tokens.JWTConfig{Issuer: issuer, Now: now})
	require.NoError(t, err)
	requireInvalid(t, retired, oldTok)
}

func TestJWKSHasOnlyPublicKeys(t *testing.T) {
	t.Parallel()
	k1, k2 := newKey(t), newKey(t)
	ks, err := tokens.NewKeySet([]ed25519.PrivateKey{k1, k2}, tokens.JWTConfig{Issuer: issuer})
	require.NoError(t, err)
	raw, err := ks.JWKS()
	require.NoError(t, err)
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	require.NoError(t, json.Unmarshal(raw, &set))
	require.Len(t, set.Keys, 2)
	for i, k := range set.Keys {
		require.NotContains(t, k, "d", "private part in the JWKS")
		require.Equal(t, "OKP", k["kty"])
		require.Equal(t, "Ed25519", k["crv"])
		require.Equal(t, "EdDSA", k["alg"])
		require.Equal(t, "sig", k["use"])
		require.NotEmpty(t, k["kid"])
		pub := []ed25519.PrivateKey{k1, k2}[i].Public().(ed25519.PublicKey)
		require.Equal(t, base64.RawURLEncoding.EncodeToString(pub), k["x"])
	}
	require.Equal(t, ks.SigningKeyID(), set.Keys[0]["kid"])
	require.NotContains(t, string(raw), base64.RawURLEncoding.EncodeToString(k1.Seed()))
}

func TestParsePrivateKeys(t *testing.T) {
	t.Parallel()
	k1, k2 := newKey(t), newKey(t)
	p1, err := tokens.EncodePrivateKeyPEM(k1)
	require.NoError(t, err)
	p2, err := tokens.EncodePrivateKeyPEM(k2)
	require.NoError(t, err)

	keys, err := tokens.ParsePrivateKeys(string(p1) + "\n" + string(p2))
	require.NoError(t, err)
	require.Equal(t, []ed25519.PrivateKey{k1, k2}, keys)

	keys, err = tokens.ParsePrivateKeys(base64.StdEncoding.EncodeToString(k1.Seed()) + ", " + base64.RawURLEncoding.EncodeToString(k2))
	require.NoError(t, err)
	require.Equal(t, []ed25519.PrivateKey{k1, k2}, keys)

	for name, bad := range map[string]string{
		"empty":       " ",
		"not base64":  "!!!",
		"wrong size":  base64.StdEncoding.EncodeToString([]byte("short")),
		"public only": "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\n",
	} {
		_, err := tokens.ParsePrivateKeys(bad)
		require.Error(t, err, name)
	}
	_, err = tokens.NewKeySet(nil, tokens.JWTConfig{Issuer: issuer})
	require.Error(t, err)
	_, err = tokens.NewKeySet([]ed25519.PrivateKey{k1}, tokens.JWTConfig{})
	require.Error(t, err, "issuer required")
}

func TestLoadOrCreateKeyFileAgreesAcrossConcurrentStarts(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sub", "jwt-ed25519.pem")
	const n = 8
	keys := make([]ed25519.PrivateKey, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, err := tokens.LoadOrCreateKeyFile(path)
			if err != nil {
				t.Error(err)
				return
			}
			keys[i] = k
		}()
	}
	wg.Wait()
	for i := 1; i < n; i++ {
		require.Equal(t, keys[0], keys[i], "process %d got another key", i)
	}
	info, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	again, err := tokens.LoadOrCreateKeyFile(path)
	require.NoError(t, err)
	require.Equal(t, keys[0], again)
	entries, err := os.ReadDir(filepath.Dir(path))
	require.NoError(t, err)
	require.Len(t, entries, 1, "temporary files left behind")
}

// TestVerifiedTokensAreRememberedExactly: once a token verified, the same token verifies
// again (from memory) with the same claims until it expires (TestVerifyExpiryWithInjectedClock),
// while any other string, such as the token with its signature or payload changed, is
// verified afresh and refused.
func TestVerifiedTokensAreRememberedExactly(t *testing.T) {
	t.Parallel()
	b := setupJWT(t)
	tok := b.issue(t)
	first, err := b.ks.Verify(tok)
	require.NoError(t, err)
	again, err := b.ks.Verify(tok)
	require.NoError(t, err)
	require.Equal(t, first, again)

	parts := strings.Split(tok, ".")
	sig := []byte(parts[2])
	sig[len(sig)/2] ^= 1
	requireInvalid(t, b.ks, parts[0]+"."+parts[1]+"."+string(sig))
	admin := b.claims()
	admin["role"] = "admin"
	requireInvalid(t, b.ks, parts[0]+"."+b64(admin)+"."+parts[2])
	requireInvalid(t, b.ks, craft(b.header(), admin, newKey(t)))
	c, err := b.ks.Verify(tok)
	require.NoError(t, err)
	require.Equal(t, first, c, "the genuine token still verifies")
}

package google

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
)

// stateKeyInfo separates the cookie key from any other key derived from the same secret;
// bump the version to invalidate every sign-in in flight.
const stateKeyInfo = "vigil google sign-in state cookie v1"

// maxCookieLen bounds what open will try to decode; a sealed state is about 300 bytes.
const maxCookieLen = 1024

// sealedState is what the cookie carries. Short JSON names keep the cookie small.
type sealedState struct {
	State    string `json:"s"`
	Verifier string `json:"v"`
	Nonce    string `json:"n"`
	Expires  int64  `json:"e"` // Unix seconds
}

// stateSealer encrypts and authenticates sealedState with AES-256-GCM. Encryption, not just
// a MAC, because the PKCE verifier and the nonce must stay unreadable to the browser.
type stateSealer struct {
	aead cipher.AEAD
}

func newStateSealer(secret []byte) (*stateSealer, error) {
	key, err := hkdf.Key(sha256.New, secret, nil, stateKeyInfo, 32)
	if err != nil {
		return nil, fmt.Errorf("derive state key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("state cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("state cipher: %w", err)
	}
	return &stateSealer{aead: aead}, nil
}

// seal returns base64url(nonce || ciphertext) with the cookie name as additional data, so
// the value cannot be replayed as any other sealed value we might add later.
func (s *stateSealer) seal(st sealedState) (string, error) {
	plain, err := json.Marshal(st)
	if err != nil {
		return "", fmt.Errorf("encode state: %w", err)
	}
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("state nonce: %w", err)
	}
	sealed := s.aead.Seal(nonce, nonce, plain, []byte(CookieName))
	return base64.RawURLEncoding.EncodeToString(sealed), nil
}

// open reverses seal. Any change to the value, or a value sealed under another secret, fails.
func (s *stateSealer) open(value string) (sealedState, error) {
	if len(value) > maxCookieLen {
		return sealedState{}, errors.New("cookie too long")
	}
	raw, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil {
		return sealedState{}, fmt.Errorf("decode cookie: %w", err)
	}
	if len(raw) < s.aead.NonceSize()+s.aead.Overhead() {
		return sealedState{}, errors.New("cookie too short")
	}
	nonce, ciphertext := raw[:s.aead.NonceSize()], raw[s.aead.NonceSize():]
	plain, err := s.aead.Open(nil, nonce, ciphertext, []byte(CookieName))
	if err != nil {
		return sealedState{}, fmt.Errorf("authenticate cookie: %w", err)
	}
	var st sealedState
	if err := json.Unmarshal(plain, &st); err != nil {
		return sealedState{}, fmt.Errorf("decode state: %w", err)
	}
	if st.State == "" || st.Verifier == "" || st.Nonce == "" || st.Expires == 0 {
		return sealedState{}, errors.New("incomplete state")
	}
	return st, nil
}

// randomToken returns 256 random bits, base64url-encoded.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails since Go 1.24
	return base64.RawURLEncoding.EncodeToString(b)
}

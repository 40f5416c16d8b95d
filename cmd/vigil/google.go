package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"path/filepath"

	"github.com/vigilhq/vigil/adapters/google"
	"github.com/vigilhq/vigil/adapters/httpapi"
)

// googleStateLabel derives the key of Google sign-in's state cookie from the secret key, so
// that key is never used for two purposes (unsubscribe links sign with the key itself).
const googleStateLabel = "vigil/google-sign-in/state-cookie/v1"

// googleSignIn returns the Google sign-in client (google sign-in), or nil when
// GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET are unset. Every API process derives the same
// state-cookie key, so any of them can finish a sign-in another one started.
func (m *Main) googleSignIn() (httpapi.GoogleSignIn, error) {
	if !m.cfg.GoogleEnabled() {
		return nil, nil
	}
	secret, err := m.secretKey()
	if err != nil {
		return nil, err
	}
	c, err := google.New(google.Config{
		ClientID:     m.cfg.GoogleClientID,
		ClientSecret: m.cfg.GoogleClientSecret,
		RedirectURL:  m.cfg.GoogleRedirectURL,
		Issuer:       m.cfg.GoogleIssuer,
		AuthURL:      m.cfg.GoogleAuthURL,
		TokenURL:     m.cfg.GoogleTokenURL,
		JWKSURL:      m.cfg.GoogleJWKSURL,
		StateSecret:  deriveKey(secret, googleStateLabel),
	}, m.now)
	if err != nil {
		return nil, fmt.Errorf("GOOGLE_*: %w", err)
	}
	return c, nil
}

// secretKey returns VIGIL_SECRET_KEY or, in dev mode without one, the key generated once in
// the data dir — the key unsubscribeTokens signs with.
func (m *Main) secretKey() ([]byte, error) {
	if m.cfg.SecretKey != "" {
		return []byte(m.cfg.SecretKey), nil
	}
	return devSecret(filepath.Join(m.cfg.DataDir, "secret.key"))
}

// deriveKey returns HMAC-SHA256(secret, label): a 32-byte key for one purpose.
func deriveKey(secret []byte, label string) []byte {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(label))
	return mac.Sum(nil)
}

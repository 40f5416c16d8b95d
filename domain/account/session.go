package account

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"time"
)

// Refresh token parameters.
const (
	// RefreshTokenBytes is the entropy of a refresh token: 256 bits.
	RefreshTokenBytes = 32
	// FamilyLifetimeDefault is how long a login lasts at most, however often it refreshes.
	FamilyLifetimeDefault = 30 * 24 * time.Hour
)

// newRefreshToken returns a fresh token (base64url, no padding) and its SHA-256 hash.
func newRefreshToken() (token string, hash []byte, err error) {
	b := make([]byte, RefreshTokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", nil, fmt.Errorf("read random token: %w", err)
	}
	sum := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(b), sum[:], nil
}

// hashRefreshToken returns the stored form of token; ok is false when token cannot be one
// Vigil issued, so malformed input never reaches the database.
func hashRefreshToken(token string) (hash []byte, ok bool) {
	if len(token) != base64.RawURLEncoding.EncodedLen(RefreshTokenBytes) {
		return nil, false
	}
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) != RefreshTokenBytes {
		return nil, false
	}
	sum := sha256.Sum256(b)
	return sum[:], true
}

// Package tokens signs and verifies the tokens Vigil hands out: one-click unsubscribe links
// now; access tokens and JWKS with the accounts issue.
package tokens

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
)

// ErrInvalidToken is returned for a token that is malformed or not signed by the key.
var ErrInvalidToken = errors.New("invalid token")

// Unsubscribe signs unsubscribe tokens: the recipient's user id and address, authenticated
// with HMAC-SHA256, so a link can only unsubscribe the address it was sent to.
type Unsubscribe struct {
	key []byte
}

// NewUnsubscribe returns a signer with a secret key of at least 32 bytes.
func NewUnsubscribe(secret []byte) (*Unsubscribe, error) {
	if len(secret) < 32 {
		return nil, errors.New("unsubscribe key: need at least 32 bytes of secret")
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte("vigil/unsubscribe/v1"))
	return &Unsubscribe{key: mac.Sum(nil)}, nil
}

// Sign returns the token for userID and email.
func (u *Unsubscribe) Sign(userID, email string) string {
	payload := userID + "\n" + strings.ToLower(email)
	return base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." + base64.RawURLEncoding.EncodeToString(u.mac(payload))
}

// Verify returns the user id and email a token was signed for.
func (u *Unsubscribe) Verify(token string) (userID, email string, err error) {
	p, s, ok := strings.Cut(token, ".")
	if !ok {
		return "", "", ErrInvalidToken
	}
	payload, err1 := base64.RawURLEncoding.DecodeString(p)
	sig, err2 := base64.RawURLEncoding.DecodeString(s)
	if err1 != nil || err2 != nil || !hmac.Equal(sig, u.mac(string(payload))) {
		return "", "", ErrInvalidToken
	}
	userID, email, ok = strings.Cut(string(payload), "\n")
	if !ok || userID == "" || email == "" {
		return "", "", ErrInvalidToken
	}
	return userID, email, nil
}

func (u *Unsubscribe) mac(payload string) []byte {
	m := hmac.New(sha256.New, u.key)
	m.Write([]byte(payload))
	return m.Sum(nil)
}

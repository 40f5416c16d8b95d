package tokens

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Purposes of link tokens. A token signed for one purpose never verifies for another.
const (
	PurposeRecipient = "recipient" // confirm an email action's recipient
)

// ErrExpiredToken is returned for a well-signed token past its expiry.
var ErrExpiredToken = errors.New("expired token")

// Links signs the tokens of links in emails: each names one purpose, a few values (a user
// id, an address...) and an expiry, authenticated with HMAC-SHA256.
type Links struct {
	key []byte
}

// NewLinks returns a signer with a secret key of at least 32 bytes.
func NewLinks(secret []byte) (*Links, error) {
	if len(secret) < 32 {
		return nil, errors.New("link key: need at least 32 bytes of secret")
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte("vigil/links/v1"))
	return &Links{key: mac.Sum(nil)}, nil
}

// Sign returns a token for purpose and values, valid until expires. Values must not
// contain newlines.
func (l *Links) Sign(purpose string, expires time.Time, values ...string) string {
	payload := strings.Join(append([]string{purpose, strconv.FormatInt(expires.Unix(), 10)}, values...), "\n")
	return base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." + base64.RawURLEncoding.EncodeToString(l.mac(payload))
}

// Verify returns the n values of a token signed for purpose, ErrInvalidToken when it is
// malformed, forged or for another purpose, ErrExpiredToken when it expired before now.
func (l *Links) Verify(token, purpose string, n int, now time.Time) ([]string, error) {
	p, s, ok := strings.Cut(token, ".")
	if !ok {
		return nil, ErrInvalidToken
	}
	payload, err1 := base64.RawURLEncoding.DecodeString(p)
	sig, err2 := base64.RawURLEncoding.DecodeString(s)
	if err1 != nil || err2 != nil || !hmac.Equal(sig, l.mac(string(payload))) {
		return nil, ErrInvalidToken
	}
	parts := strings.Split(string(payload), "\n")
	if len(parts) != n+2 || parts[0] != purpose {
		return nil, ErrInvalidToken
	}
	exp, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return nil, ErrInvalidToken
	}
	if now.Unix() > exp {
		return nil, ErrExpiredToken
	}
	for _, v := range parts[2:] {
		if v == "" {
			return nil, ErrInvalidToken
		}
	}
	return parts[2:], nil
}

// SignRecipient returns a token confirming email as a recipient of userID's actions.
func (l *Links) SignRecipient(userID, email string, expires time.Time) string {
	return l.Sign(PurposeRecipient, expires, userID, strings.ToLower(email))
}

// VerifyRecipient returns the user id and address a recipient token confirms.
func (l *Links) VerifyRecipient(token string, now time.Time) (userID, email string, err error) {
	v, err := l.Verify(token, PurposeRecipient, 2, now)
	if err != nil {
		return "", "", err
	}
	return v[0], v[1], nil
}

func (l *Links) mac(payload string) []byte {
	m := hmac.New(sha256.New, l.key)
	m.Write([]byte(payload))
	return m.Sum(nil)
}

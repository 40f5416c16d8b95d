// Package password hashes passwords with bcrypt for domain/account.
//
// bcrypt reads at most 72 bytes of its input and silently ignores the rest, so two long
// passwords sharing their first 72 bytes would match each other. Vigil therefore never
// gives bcrypt the password itself: it hashes bcrypt(base64(SHA-256(password))). SHA-256
// maps any length to 32 bytes without losing the tail; base64 makes those bytes text
// without NUL bytes (some bcrypt implementations stop at a NUL) and is 44 bytes, under the
// limit. The salt and cost of bcrypt still make each guess slow. Hashes made this way carry
// the prefix "$sha256b64$" before the ordinary bcrypt hash, so they are never confused with
// plain bcrypt hashes (as older tools and `vigil seed` wrote), which Compare still accepts
// for passwords of at most 72 bytes — a longer one would be truncated, so it never matches.
package password

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"github.com/vigilhq/vigil/domain/account"
)

// Cost limits. 12 costs roughly 250 ms on one core of a current server: slow enough to make
// offline guessing expensive, fast enough for logins. Below 10 is refused.
const (
	CostDefault = 12
	CostMin     = 10
	CostMax     = 16
)

// prefix marks hashes of the pre-hashed password.
const prefix = "$sha256b64$"

// bcryptMaxInput is how many bytes of input bcrypt reads.
const bcryptMaxInput = 72

// Hasher hashes passwords with bcrypt at a fixed cost. It satisfies account.PasswordHasher.
type Hasher struct {
	cost int
}

var _ account.PasswordHasher = (*Hasher)(nil)

// New returns a Hasher with cost (CostDefault when 0). A cost outside CostMin..CostMax is
// an error.
func New(cost int) (*Hasher, error) {
	if cost == 0 {
		cost = CostDefault
	}
	if cost < CostMin || cost > CostMax {
		return nil, fmt.Errorf("bcrypt cost %d: must be from %d to %d", cost, CostMin, CostMax)
	}
	return &Hasher{cost: cost}, nil
}

// Cost returns the bcrypt cost new hashes get.
func (h *Hasher) Cost() int { return h.cost }

// Hash returns the stored form of password.
func (h *Hasher) Hash(password string) (string, error) {
	b, err := bcrypt.GenerateFromPassword(prehash(password), h.cost)
	if err != nil {
		return "", fmt.Errorf("bcrypt: %w", err)
	}
	return prefix + string(b), nil
}

// Compare reports whether password matches hash. It returns an error only for a hash
// that is not one this package (or plain bcrypt) wrote.
func (h *Hasher) Compare(hash, password string) (bool, error) {
	input := []byte(password)
	stored, pre := strings.CutPrefix(hash, prefix)
	if pre {
		input = prehash(password)
	}
	err := bcrypt.CompareHashAndPassword([]byte(stored), input)
	switch {
	case err == nil:
		// A plain bcrypt hash only proves the first 72 bytes; never accept more than that.
		return pre || len(input) <= bcryptMaxInput, nil
	case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword):
		return false, nil
	default:
		return false, fmt.Errorf("bcrypt: malformed hash: %w", err)
	}
}

func prehash(password string) []byte {
	sum := sha256.Sum256([]byte(password))
	out := make([]byte, base64.StdEncoding.EncodedLen(len(sum)))
	base64.StdEncoding.Encode(out, sum[:])
	return out
}

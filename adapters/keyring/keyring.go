// Package keyring encrypts secrets stored at rest (webhook signing secrets) with
// AES-256-GCM. Keys have ids so they can rotate: the first key seals, every key opens,
// and each sealed value names the key that sealed it.
package keyring

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// KeySize is the length of an AES-256 key.
const KeySize = 32

const version = "v1"

var kidPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// Key is one data key and its id.
type Key struct {
	ID     string
	Secret []byte // KeySize bytes
}

// Keyring seals with its first key and opens with any of them. Safe for concurrent use.
type Keyring struct {
	sealID string
	aeads  map[string]cipher.AEAD
}

// New returns a keyring of keys, the first of which seals.
func New(keys []Key) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, errors.New("keyring: at least one key is required")
	}
	k := &Keyring{sealID: keys[0].ID, aeads: map[string]cipher.AEAD{}}
	for _, key := range keys {
		if !kidPattern.MatchString(key.ID) {
			return nil, fmt.Errorf("keyring: key id %q must be 1-32 letters, digits, - or _", key.ID)
		}
		if len(key.Secret) != KeySize {
			return nil, fmt.Errorf("keyring: key %q has %d bytes, want %d", key.ID, len(key.Secret), KeySize)
		}
		if _, dup := k.aeads[key.ID]; dup {
			return nil, fmt.Errorf("keyring: key id %q is listed twice", key.ID)
		}
		block, err := aes.NewCipher(key.Secret)
		if err != nil {
			return nil, fmt.Errorf("keyring: key %q: %w", key.ID, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("keyring: key %q: %w", key.ID, err)
		}
		k.aeads[key.ID] = aead
	}
	return k, nil
}

// Parse reads keys written as "id=base64key,id2=base64key" (VIGIL_DATA_KEYS). Its errors
// never contain key material.
func Parse(raw string) ([]Key, error) {
	var keys []Key
	for i, part := range strings.Split(raw, ",") {
		id, b64, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || id == "" {
			return nil, fmt.Errorf("key %d: write it as id=base64 (32 random bytes, e.g. from `openssl rand -base64 32`)", i+1)
		}
		secret, err := decodeKey(strings.TrimSpace(b64))
		if err != nil || len(secret) != KeySize {
			return nil, fmt.Errorf("key %q: must be the base64 of exactly %d random bytes", id, KeySize)
		}
		keys = append(keys, Key{ID: id, Secret: secret})
	}
	return keys, nil
}

func decodeKey(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not base64")
}

// Seal encrypts plaintext, bound to context (such as the id of the row that holds it, so
// a sealed value copied to another row does not open). The result is
// "v1:<key id>:<base64url(nonce || ciphertext)>".
func (k *Keyring) Seal(plaintext, context []byte) (string, error) {
	aead := k.aeads[k.sealID]
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("keyring: nonce: %w", err)
	}
	out := aead.Seal(nonce, nonce, plaintext, context)
	return version + ":" + k.sealID + ":" + base64.RawURLEncoding.EncodeToString(out), nil
}

// ErrUnreadable is returned for a sealed value that is malformed, sealed by an unknown
// key, tampered with or bound to another context.
var ErrUnreadable = errors.New("keyring: sealed value cannot be opened")

// Open decrypts a value Seal returned with the same context.
func (k *Keyring) Open(sealed string, context []byte) ([]byte, error) {
	parts := strings.SplitN(sealed, ":", 3)
	if len(parts) != 3 || parts[0] != version {
		return nil, ErrUnreadable
	}
	aead, ok := k.aeads[parts[1]]
	if !ok {
		return nil, fmt.Errorf("%w: key %q is not configured", ErrUnreadable, parts[1])
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(raw) < aead.NonceSize()+aead.Overhead() {
		return nil, ErrUnreadable
	}
	plain, err := aead.Open(nil, raw[:aead.NonceSize()], raw[aead.NonceSize():], context)
	if err != nil {
		return nil, ErrUnreadable
	}
	return plain, nil
}

// KeyID returns the id of the key that sealed a value, "" when it is malformed; operators
// use it to find values still sealed by a key they want to retire.
func KeyID(sealed string) string {
	parts := strings.SplitN(sealed, ":", 3)
	if len(parts) != 3 || parts[0] != version {
		return ""
	}
	return parts[1]
}

// SealedByCurrent reports whether sealed was sealed by the key that seals now; a value
// that is not is re-sealed by a rotation (see `vigil keys rotate`).
func (k *Keyring) SealedByCurrent(sealed string) bool { return KeyID(sealed) == k.sealID }

// SealKeyID returns the id of the key that seals.
func (k *Keyring) SealKeyID() string { return k.sealID }

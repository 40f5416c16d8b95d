package tokens

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ParsePrivateKeys reads one or more Ed25519 private keys: PEM blocks ("PRIVATE KEY",
// PKCS #8), or base64 values separated by commas or white space, each a 32-byte seed, a
// 64-byte private key or a PKCS #8 DER key. The order is kept: the first key signs.
func ParsePrivateKeys(raw string) ([]ed25519.PrivateKey, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil, errors.New("no keys")
	}
	var keys []ed25519.PrivateKey
	if strings.Contains(raw, "-----BEGIN") {
		rest := []byte(raw)
		for n := 1; ; n++ {
			var block *pem.Block
			block, rest = pem.Decode(rest)
			if block == nil {
				break
			}
			if block.Type != "PRIVATE KEY" {
				return nil, fmt.Errorf("key %d: PEM block %q, want PRIVATE KEY (PKCS #8 Ed25519)", n, block.Type)
			}
			k, err := parsePKCS8(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("key %d: %w", n, err)
			}
			keys = append(keys, k)
		}
		if len(bytes.TrimSpace(rest)) > 0 {
			return nil, fmt.Errorf("key %d: text after the last PEM block is not a key", len(keys)+1)
		}
		return keys, nil
	}
	fields := strings.FieldsFunc(raw, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' || r == '\r' })
	for i, f := range fields {
		b, err := decodeBase64(f)
		if err != nil {
			return nil, fmt.Errorf("key %d: not PEM and not base64", i+1)
		}
		switch len(b) {
		case ed25519.SeedSize:
			keys = append(keys, ed25519.NewKeyFromSeed(b))
		case ed25519.PrivateKeySize:
			k := ed25519.PrivateKey(b)
			if !bytes.Equal(ed25519.NewKeyFromSeed(k.Seed()), k) {
				return nil, fmt.Errorf("key %d: the public half does not match the seed", i+1)
			}
			keys = append(keys, k)
		default:
			k, err := parsePKCS8(b)
			if err != nil {
				return nil, fmt.Errorf("key %d: %d bytes is neither a 32-byte seed, a 64-byte key nor PKCS #8: %w", i+1, len(b), err)
			}
			keys = append(keys, k)
		}
	}
	return keys, nil
}

func decodeBase64(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not base64")
}

func parsePKCS8(der []byte) (ed25519.PrivateKey, error) {
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("parse PKCS #8: %w", err)
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("a %T, want an Ed25519 key", k)
	}
	return ek, nil
}

// EncodePrivateKeyPEM returns key as a PKCS #8 "PRIVATE KEY" PEM block.
func EncodePrivateKeyPEM(key ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode PKCS #8: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// LoadOrCreateKeyFile returns the Ed25519 key kept in the PEM file at path, generating it
// when the file does not exist (for development). The new file is written completely under
// a temporary name and then hard-linked into place, which fails if the file appeared
// meanwhile; so processes starting together agree on one key and never read half a file.
// The file is readable by its owner only (0600).
func LoadOrCreateKeyFile(path string) (ed25519.PrivateKey, error) {
	for attempt := 0; attempt < 3; attempt++ {
		key, err := readKeyFile(path)
		if err == nil {
			return key, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		if err := createKeyFile(path); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, err
		}
	}
	return nil, fmt.Errorf("jwt key file %s: could not be read after creating it", path)
}

func readKeyFile(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(filepath.Clean(path)) // the operator's key file
	if err != nil {
		return nil, fmt.Errorf("read jwt key file: %w", err)
	}
	keys, err := ParsePrivateKeys(string(b))
	if err != nil {
		return nil, fmt.Errorf("jwt key file %s: %w", path, err)
	}
	if len(keys) != 1 {
		return nil, fmt.Errorf("jwt key file %s: holds %d keys, want 1", path, len(keys))
	}
	return keys[0], nil
}

func createKeyFile(path string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("generate jwt key: %w", err)
	}
	pemBytes, err := EncodePrivateKeyPEM(key)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".jwt-key-*")
	if err != nil {
		return fmt.Errorf("create jwt key file: %w", err)
	}
	defer os.Remove(tmp.Name()) //nolint:errcheck // gone after a successful link or not
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("chmod jwt key file: %w", err)
	}
	_, werr := tmp.Write(pemBytes)
	if err := errors.Join(werr, tmp.Sync(), tmp.Close()); err != nil {
		return fmt.Errorf("write jwt key file: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return err
		}
		return createKeyFileExclusive(path, pemBytes)
	}
	return nil
}

// createKeyFileExclusive is the fallback for file systems without hard links: O_EXCL
// creation, with readers retrying while the file is still incomplete.
func createKeyFileExclusive(path string, pemBytes []byte) error {
	f, err := os.OpenFile(filepath.Clean(path), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		time.Sleep(50 * time.Millisecond) // let the other writer finish
		return err
	}
	if err != nil {
		return fmt.Errorf("create jwt key file: %w", err)
	}
	_, werr := f.Write(pemBytes)
	if err := errors.Join(werr, f.Close()); err != nil {
		return fmt.Errorf("write jwt key file: %w", err)
	}
	return nil
}

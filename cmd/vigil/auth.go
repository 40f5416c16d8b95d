package main

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/vigilhq/vigil/adapters/password"
	"github.com/vigilhq/vigil/adapters/postgres"
	"github.com/vigilhq/vigil/adapters/tokens"
	"github.com/vigilhq/vigil/domain/account"
)

// jwtKeyFile is where dev mode keeps its generated signing key, inside VIGIL_DATA_DIR.
const jwtKeyFile = "jwt-ed25519.pem"

// accounts wires the account use cases for the API role: bcrypt hasher, Postgres stores and
// the access-token key set (which the API also uses to verify bearer tokens and to serve
// the JWKS).
func (m *Main) accounts() (*account.Service, *tokens.KeySet, error) {
	keys, err := m.jwtKeys()
	if err != nil {
		return nil, nil, err
	}
	keySet, err := tokens.NewKeySet(keys, tokens.JWTConfig{Issuer: m.cfg.JWTIssuer, Audience: tokens.AudienceDefault, Now: m.now})
	if err != nil {
		return nil, nil, fmt.Errorf("access tokens: %w", err)
	}
	hasher, err := password.New(m.cfg.BcryptCost)
	if err != nil {
		return nil, nil, fmt.Errorf("BCRYPT_COST: %w", err)
	}
	resetMail, err := m.resetMailer() // password reset
	if err != nil {
		return nil, nil, err
	}
	welcome, err := m.welcomeMailer()
	if err != nil {
		return nil, nil, err
	}
	svc, err := account.NewService(account.Deps{
		Users:     postgres.NewAccountStore(m.pool, "vigil/"+m.name),
		Sessions:  postgres.NewSessionStore(m.pool),
		Audit:     postgres.NewAuditStore(m.pool),
		Allowlist: postgres.NewAllowlistStore(m.pool),
		Hasher:    hasher,
		Tokens:    keySet,
		Clock:     account.ClockFunc(m.now),

		ResetTokens: postgres.NewResetTokenStore(m.pool),               // password reset
		ResetMailer: resetMail,                                         // password reset
		ResetQueue:  postgres.NewResetQueueStore(m.pool),               // password reset
		Google:      postgres.NewAccountStore(m.pool, "vigil/"+m.name), // google sign-in

		Welcome:       welcome,
		Verifications: postgres.NewAccountStore(m.pool, "vigil/"+m.name),
	}, account.Config{Beta: m.cfg.Beta})
	if err != nil {
		return nil, nil, err
	}
	return svc, keySet, nil
}

// jwtKeys returns the access-token keys: VIGIL_JWT_PRIVATE_KEYS when set (the first signs);
// in dev mode otherwise one key generated once and kept in the data dir, so tokens survive
// restarts and separate role processes agree. Prod without keys never gets here (config).
func (m *Main) jwtKeys() ([]ed25519.PrivateKey, error) {
	if m.cfg.JWTPrivateKeys != "" {
		keys, err := tokens.ParsePrivateKeys(m.cfg.JWTPrivateKeys)
		if err != nil {
			return nil, fmt.Errorf("VIGIL_JWT_PRIVATE_KEYS: %w", err)
		}
		return keys, nil
	}
	if !m.cfg.Dev() {
		return nil, errors.New("VIGIL_JWT_PRIVATE_KEYS: required when VIGIL_ENV=prod")
	}
	key, err := tokens.LoadOrCreateKeyFile(filepath.Join(m.cfg.DataDir, jwtKeyFile))
	if err != nil {
		return nil, err
	}
	return []ed25519.PrivateKey{key}, nil
}

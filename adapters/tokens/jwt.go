package tokens

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/vigilhq/vigil/domain/account"
)

// Access token settings.
const (
	// AccessLifetimeDefault is how long an access token is valid. Short, because a stolen one
	// cannot be revoked; the refresh token carries the session.
	AccessLifetimeDefault = 15 * time.Minute
	// AudienceDefault is the "aud" of access tokens: Vigil's own API.
	AudienceDefault = "vigil-api"
	// LeewayDefault absorbs clock differences between API replicas when checking exp and iat.
	LeewayDefault = 10 * time.Second
	// accessTokenType is the "typ" header (RFC 9068), so no other JWT signed by the same key
	// (an ID token, say) passes as an access token.
	accessTokenType = "at+jwt"
	claimRole       = "role"
	claimSession    = "sid"
)

// Claims is what a verified access token says.
type Claims = account.AccessClaims

// JWTConfig configures a KeySet.
type JWTConfig struct {
	Issuer   string        // "iss" written and required; typically PUBLIC_BASE_URL
	Audience string        // "aud" written and required; AudienceDefault when empty
	Lifetime time.Duration // AccessLifetimeDefault when 0
	Leeway   time.Duration // LeewayDefault when 0; negative means none
	Now      func() time.Time
}

// KeySet signs access tokens with its first key and verifies them with any of its keys,
// so keys can rotate: add a new key first, keep the old one verifying until its tokens
// expired (15 minutes), then drop it. It satisfies account.AccessTokens.
type KeySet struct {
	cfg     JWTConfig
	signing jwk.Key // private, with kid and alg
	verify  jwk.Set // public keys, with kid and alg

	// verified remembers the claims of tokens whose signature checked out, so a client's
	// next requests with the same token skip the Ed25519 verification (the largest cost of
	// an authenticated request). A hit is still refused once the token expires. The keys
	// that verified it are the process's for its life, so nothing else can change the
	// answer; a rotated-out key stops verifying when the processes restart with the new set.
	mu       sync.Mutex
	verified map[string]Claims
}

// verifiedMax bounds the remembered tokens; past it, the expired ones are forgotten, and
// if that is not enough, all of them.
const verifiedMax = 50_000

var _ account.AccessTokens = (*KeySet)(nil)

// NewKeySet returns a KeySet over keys; keys[0] signs. Keys get their RFC 7638 thumbprint
// as key id.
func NewKeySet(keys []ed25519.PrivateKey, cfg JWTConfig) (*KeySet, error) {
	if len(keys) == 0 {
		return nil, errors.New("jwt keys: at least one Ed25519 private key is required")
	}
	if cfg.Issuer == "" {
		return nil, errors.New("jwt keys: an issuer is required")
	}
	if cfg.Audience == "" {
		cfg.Audience = AudienceDefault
	}
	if cfg.Lifetime <= 0 {
		cfg.Lifetime = AccessLifetimeDefault
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = LeewayDefault
	}
	cfg.Leeway = max(cfg.Leeway, 0)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	ks := &KeySet{cfg: cfg, verify: jwk.NewSet(), verified: map[string]Claims{}}
	seen := map[string]bool{}
	for i, raw := range keys {
		if len(raw) != ed25519.PrivateKeySize {
			return nil, fmt.Errorf("jwt key %d: not an Ed25519 private key", i+1)
		}
		priv, err := jwk.FromRaw(raw)
		if err != nil {
			return nil, fmt.Errorf("jwt key %d: %w", i+1, err)
		}
		pub, err := jwk.PublicKeyOf(priv)
		if err != nil {
			return nil, fmt.Errorf("jwt key %d: public key: %w", i+1, err)
		}
		tp, err := pub.Thumbprint(crypto.SHA256)
		if err != nil {
			return nil, fmt.Errorf("jwt key %d: thumbprint: %w", i+1, err)
		}
		kid := base64.RawURLEncoding.EncodeToString(tp)
		if seen[kid] {
			continue // the same key listed twice
		}
		seen[kid] = true
		for _, k := range []jwk.Key{priv, pub} {
			for name, v := range map[string]any{jwk.KeyIDKey: kid, jwk.AlgorithmKey: jwa.EdDSA, jwk.KeyUsageKey: jwk.ForSignature} {
				if err := k.Set(name, v); err != nil {
					return nil, fmt.Errorf("jwt key %d: set %s: %w", i+1, name, err)
				}
			}
		}
		if i == 0 {
			ks.signing = priv
		}
		if err := ks.verify.AddKey(pub); err != nil {
			return nil, fmt.Errorf("jwt key %d: %w", i+1, err)
		}
	}
	return ks, nil
}

// SigningKeyID returns the kid of the signing key.
func (ks *KeySet) SigningKeyID() string { return ks.signing.KeyID() }

// Issue signs an access token for u in the refresh family sessionID: sub is the user id,
// role the user's role, sid the family, and iss, aud, iat, exp and a random jti.
func (ks *KeySet) Issue(u *account.User, sessionID string) (string, time.Duration, error) {
	now := ks.cfg.Now().UTC().Truncate(time.Second)
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", 0, fmt.Errorf("jwt id: %w", err)
	}
	tok, err := jwt.NewBuilder().
		Issuer(ks.cfg.Issuer).
		Audience([]string{ks.cfg.Audience}).
		Subject(u.ID).
		IssuedAt(now).
		Expiration(now.Add(ks.cfg.Lifetime)).
		JwtID(base64.RawURLEncoding.EncodeToString(jti)).
		Claim(claimRole, string(u.Role)).
		Claim(claimSession, sessionID).
		Build()
	if err != nil {
		return "", 0, fmt.Errorf("build access token: %w", err)
	}
	hdr := jws.NewHeaders()
	if err := hdr.Set(jws.TypeKey, accessTokenType); err != nil {
		return "", 0, fmt.Errorf("access token header: %w", err)
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(jwa.EdDSA, ks.signing, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		return "", 0, fmt.Errorf("sign access token: %w", err)
	}
	return string(signed), ks.cfg.Lifetime, nil
}

// Verify checks an access token and returns its claims. It accepts only a compact JWS with
// alg EdDSA, typ at+jwt and the kid of one of the set's keys, a valid signature by that
// key, the configured iss and aud, an unexpired exp, an iat not in the future, a subject
// and a known role. Every failure is ErrInvalidToken, wrapped with the reason.
func (ks *KeySet) Verify(token string) (Claims, error) {
	now := ks.cfg.Now()
	ks.mu.Lock()
	c, ok := ks.verified[token]
	ks.mu.Unlock()
	if ok {
		if now.Before(c.ExpiresAt.Add(ks.cfg.Leeway)) {
			return c, nil
		}
		return Claims{}, fmt.Errorf("%w: %v", ErrInvalidToken, jwt.ErrTokenExpired())
	}
	c, err := ks.verifyToken(token)
	if err != nil {
		return Claims{}, err
	}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if len(ks.verified) >= verifiedMax {
		for t, old := range ks.verified {
			if !now.Before(old.ExpiresAt.Add(ks.cfg.Leeway)) {
				delete(ks.verified, t)
			}
		}
		if len(ks.verified) >= verifiedMax {
			clear(ks.verified)
		}
	}
	ks.verified[token] = c
	return c, nil
}

// verifyToken checks a token's header, signature and claims.
func (ks *KeySet) verifyToken(token string) (Claims, error) {
	if err := ks.checkHeader(token); err != nil {
		return Claims{}, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	tok, err := jwt.ParseString(token,
		jwt.WithKeySet(ks.verify, jws.WithRequireKid(true), jws.WithInferAlgorithmFromKey(false), jws.WithUseDefault(false)),
		jwt.WithValidate(true),
		jwt.WithIssuer(ks.cfg.Issuer),
		jwt.WithAudience(ks.cfg.Audience),
		jwt.WithRequiredClaim(jwt.SubjectKey),
		jwt.WithRequiredClaim(jwt.ExpirationKey),
		jwt.WithRequiredClaim(jwt.IssuedAtKey),
		jwt.WithClock(jwt.ClockFunc(ks.cfg.Now)),
		jwt.WithAcceptableSkew(ks.cfg.Leeway),
	)
	if err != nil {
		return Claims{}, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	c := Claims{UserID: tok.Subject(), ExpiresAt: tok.Expiration()}
	if v, ok := tok.Get(claimRole); ok {
		s, _ := v.(string)
		c.Role = account.Role(s)
	}
	if !c.Role.Valid() {
		return Claims{}, fmt.Errorf("%w: unknown role", ErrInvalidToken)
	}
	if v, ok := tok.Get(claimSession); ok {
		c.SessionID, _ = v.(string)
	}
	return c, nil
}

// checkHeader rejects, before any key is looked at, what is not a compact EdDSA access
// token: JSON serialisation, alg none or any other algorithm, a missing kid, another typ.
func (ks *KeySet) checkHeader(token string) error {
	parts := strings.Split(token, ".")
	if len(parts) != 3 || parts[2] == "" {
		return errors.New("not a compact signed JWT")
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return errors.New("header is not base64url")
	}
	var h struct {
		Alg  string          `json:"alg"`
		Kid  string          `json:"kid"`
		Typ  string          `json:"typ"`
		Crit json.RawMessage `json:"crit"`
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		return errors.New("header is not JSON")
	}
	switch {
	case h.Alg != jwa.EdDSA.String():
		return fmt.Errorf("algorithm %q is not accepted", h.Alg)
	case h.Kid == "":
		return errors.New("no key id")
	case h.Typ != accessTokenType:
		return fmt.Errorf("type %q is not an access token", h.Typ)
	case len(h.Crit) > 0:
		return errors.New("critical header extensions are not supported")
	}
	if _, ok := ks.verify.LookupKeyID(h.Kid); !ok {
		return errors.New("unknown key id")
	}
	return nil
}

// JWKS returns the JSON Web Key Set of the verification keys: public keys only, each with
// kid, alg and use.
func (ks *KeySet) JWKS() ([]byte, error) {
	b, err := json.Marshal(ks.verify)
	if err != nil {
		return nil, fmt.Errorf("encode jwks: %w", err)
	}
	return b, nil
}

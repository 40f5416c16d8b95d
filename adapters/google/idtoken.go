package google

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"
)

// allowedAlg reports whether ID tokens may be signed with alg: asymmetric algorithms only,
// so "none" and HMAC-with-the-public-key forgeries never reach verification.
func allowedAlg(alg jwa.SignatureAlgorithm) bool {
	switch alg {
	case jwa.RS256, jwa.RS384, jwa.RS512,
		jwa.PS256, jwa.PS384, jwa.PS512,
		jwa.ES256, jwa.ES384, jwa.ES512,
		jwa.EdDSA:
		return true
	default:
		return false
	}
}

// googleIssuerBare is the scheme-less issuer Google may put in iss.
const googleIssuerBare = "accounts.google.com"

// maxIDTokenLen bounds the ID token we parse.
const maxIDTokenLen = 16 << 10

// verifyIDToken checks raw's signature, issuer, audience, times and nonce and returns the
// identity it asserts. Failures are EUNAUTHORIZED, except an unreachable JWKS (EUNAVAILABLE).
func (c *Client) verifyIDToken(ctx context.Context, raw, nonce string) (Identity, error) {
	if len(raw) > maxIDTokenLen {
		return Identity{}, unauthorized(msgUnverified, errors.New("id token too long"))
	}
	msg, err := jws.Parse([]byte(raw), jws.WithCompact())
	if err != nil {
		return Identity{}, unauthorized(msgUnverified, fmt.Errorf("parse id token: %w", err))
	}
	sigs := msg.Signatures()
	if len(sigs) != 1 {
		return Identity{}, unauthorized(msgUnverified, fmt.Errorf("id token has %d signatures", len(sigs)))
	}
	hdr := sigs[0].ProtectedHeaders()
	if alg := hdr.Algorithm(); !allowedAlg(alg) {
		return Identity{}, unauthorized(msgUnverified, fmt.Errorf("id token alg %.16q not allowed", alg.String()))
	}
	kid := hdr.KeyID()
	if kid == "" {
		return Identity{}, unauthorized(msgUnverified, errors.New("id token has no kid"))
	}

	set, err := c.keys.keySet(ctx, kid)
	if err != nil {
		return Identity{}, unavailable(err)
	}

	tok, err := jwt.Parse([]byte(raw),
		// The key's alg when the JWKS names one, else inferred from its type; either way
		// it must match the header, so an RSA key never verifies an HMAC.
		jwt.WithKeySet(set, jws.WithInferAlgorithmFromKey(true)),
		jwt.WithValidate(true),
		jwt.WithClock(jwt.ClockFunc(c.now)),
		jwt.WithAcceptableSkew(ClockSkew),
		jwt.WithAudience(c.cfg.ClientID),
		jwt.WithRequiredClaim(jwt.SubjectKey),
		jwt.WithRequiredClaim(jwt.ExpirationKey),
		jwt.WithRequiredClaim(jwt.IssuedAtKey),
		jwt.WithValidator(jwt.ValidatorFunc(c.validateIssuer)),
		jwt.WithValidator(jwt.ValidatorFunc(c.validateAuthorizedParty)),
	)
	if err != nil {
		return Identity{}, unauthorized(msgUnverified, fmt.Errorf("verify id token: %w", err))
	}

	got, _ := stringClaim(tok, "nonce")
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(nonce)) != 1 {
		return Identity{}, unauthorized(msgUnverified, errors.New("id token nonce does not match the sign-in"))
	}

	email, _ := stringClaim(tok, "email")
	name, _ := stringClaim(tok, "name")
	if name == "" {
		name, _ = stringClaim(tok, "preferred_username")
	}
	return Identity{
		Issuer:        c.cfg.Issuer, // validateIssuer made them equal, up to Google's bare form
		Subject:       tok.Subject(),
		Email:         strings.TrimSpace(email),
		EmailVerified: boolClaim(tok, "email_verified") && email != "",
		Name:          strings.TrimSpace(name),
	}, nil
}

// validateIssuer requires iss to be the configured issuer. For Google it also accepts the
// scheme-less form Google documents.
func (c *Client) validateIssuer(_ context.Context, tok jwt.Token) jwt.ValidationError {
	iss := tok.Issuer()
	if iss == c.cfg.Issuer || (c.cfg.Issuer == IssuerDefault && iss == googleIssuerBare) {
		return nil
	}
	return jwt.ErrInvalidIssuer()
}

// validateAuthorizedParty applies OIDC Core 3.1.3.7: with several audiences azp must be
// present, and when present it must be our client id.
func (c *Client) validateAuthorizedParty(_ context.Context, tok jwt.Token) jwt.ValidationError {
	azp, ok := stringClaim(tok, "azp")
	if !ok && len(tok.Audience()) > 1 {
		return jwt.NewValidationError(errors.New(`"azp" is required when there are several audiences`))
	}
	if ok && azp != c.cfg.ClientID {
		return jwt.NewValidationError(errors.New(`"azp" is not our client id`))
	}
	return nil
}

// stringClaim returns a private string claim and whether it is present.
func stringClaim(tok jwt.Token, name string) (string, bool) {
	v, ok := tok.Get(name)
	if !ok {
		return "", false
	}
	s, ok := v.(string)
	return s, ok
}

// boolClaim reads a boolean claim; some providers send "true" as a string.
func boolClaim(tok jwt.Token, name string) bool {
	v, ok := tok.Get(name)
	if !ok {
		return false
	}
	switch v := v.(type) {
	case bool:
		return v
	case string:
		return v == "true"
	default:
		return false
	}
}

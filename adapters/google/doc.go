// Package google signs people in with an OpenID Connect provider: Google by default, or any
// provider whose endpoints are configured (tests point them at a mock server).
//
// The flow is the authorization code flow with PKCE and a nonce, in two steps that map onto two
// HTTP handlers:
//
//  1. [Client.Start] (GET /api/auth/google/login) draws three random values — state, a PKCE
//     verifier and a nonce — and returns the provider URL to redirect the browser to, carrying
//     the state, the S256 challenge of the verifier and the nonce. The three values travel back
//     to us in a cookie ([CookieName]) that is encrypted and authenticated with AES-256-GCM under
//     a key derived from Config.StateSecret and that carries its own expiry ten minutes out.
//  2. [Client.Finish] (GET /api/auth/google/callback) opens the cookie, checks the state, trades
//     the code for tokens (sending the verifier), verifies the ID token and returns the
//     [Identity]. The caller finds or creates the account keyed by (Issuer, Subject) and links to
//     an existing password account only when Identity.EmailVerified is true.
//
// What each check defends against:
//
//   - State in an HttpOnly, SameSite=Lax cookie, compared in constant time with the state query
//     parameter: login CSRF. Without it an attacker could make a victim's browser finish a
//     sign-in the attacker started, silently signing the victim into the attacker's account.
//     Lax (not Strict) because the callback is a top-level navigation coming from the provider.
//   - The cookie is sealed (AES-GCM) rather than only signed: the PKCE verifier and the nonce
//     must not be readable by scripts or anyone who sees the cookie, and the server keeps no
//     per-sign-in state, so any API process can finish a sign-in another one started. The
//     expiry inside the sealed value is checked with the server's clock, so an old cookie
//     cannot be replayed even if a browser ignores Max-Age.
//   - PKCE (S256): a stolen authorization code (leaked through logs, Referer or a malicious app
//     registered for the same redirect) is useless without the verifier, which never leaves
//     the server and the sealed cookie.
//   - Nonce in the ID token equal to the one in the cookie: ID token replay and injection. A
//     token minted for another sign-in (another browser, or an older session) is refused.
//   - Signature checked against the provider's published JWKS, with the algorithm taken from
//     an asymmetric allow-list ("none" and HMAC are refused, so an attacker cannot forge a
//     token or use the public key as an HMAC secret). Keys are cached and re-fetched when a
//     token names an unknown key id, so provider key rotation just works, but at most once a
//     minute, so forged key ids cannot make us hammer the provider.
//   - Issuer equal to the configured one: tokens from another provider (or another tenant)
//     are refused. Google's ID tokens may say "accounts.google.com" without the scheme; that
//     form is accepted and reported as "https://accounts.google.com" so one account never
//     gets two keys.
//   - Audience containing our client id (and azp equal to it when present or when there are
//     several audiences): a token Google issued to some other application — which that
//     application could replay at us — is refused.
//   - exp, iat and nbf checked with a one-minute skew against the injected clock: old tokens
//     expire, and clocks that drift slightly do not lock people out.
//
// Errors are *domain.Error values: EUNAUTHORIZED with a short message that never contains a
// code or token ("The sign-in expired; start again.", "The sign-in could not be verified."),
// or EUNAVAILABLE when the provider cannot be reached or answers with a server error. A
// provider that rejects our own client id or secret gives an uncoded (internal) error, since
// that is an operator's mistake to log, not the user's. The wrapped cause is for logs only.
//
// The callback handler should always clear the cookie ([Client.ClearCookie]) so a sign-in
// cannot be finished twice from the same browser; the provider refuses a reused code anyway.
package google

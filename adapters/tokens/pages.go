package tokens

import (
	"crypto/hmac"
	"encoding/base64"
	"net/url"
	"strings"
	"time"
)

// Purposes of page tokens.
const (
	PurposeMonitor  = "monitor"  // view, pause and resume one monitor
	PurposeSettings = "settings" // a user's notification settings
)

// PageLinkLifetime is how long the links in an email work.
const PageLinkLifetime = 30 * 24 * time.Hour

// PageLinks builds the links emails carry to Vigil's pages, each with a token scoped to one
// purpose and one monitor or user, expiring after PageLinkLifetime. Base is
// PUBLIC_APP_URL when a separate front end serves the pages, else PUBLIC_BASE_URL.
type PageLinks struct {
	links       *Links
	unsubscribe *Unsubscribe
	base        string
	now         func() time.Time
}

// NewPageLinks returns the link builder.
func NewPageLinks(links *Links, unsubscribe *Unsubscribe, base string, now func() time.Time) *PageLinks {
	return &PageLinks{links: links, unsubscribe: unsubscribe, base: strings.TrimRight(base, "/"), now: now}
}

// Monitor returns the link to a monitor's page.
func (p *PageLinks) Monitor(userID, monitorID string) string {
	return p.base + "/m/" + url.PathEscape(monitorID) + "?t=" + url.QueryEscape(p.links.Sign(PurposeMonitor, p.expiry(), userID, monitorID))
}

// Pause returns the link that offers to pause a monitor.
func (p *PageLinks) Pause(userID, monitorID string) string {
	return p.Monitor(userID, monitorID) + "#pause"
}

// Settings returns the link to a user's notification settings.
func (p *PageLinks) Settings(userID string) string {
	return p.base + "/settings?t=" + url.QueryEscape(p.links.Sign(PurposeSettings, p.expiry(), userID))
}

// Unsubscribe returns the one-click unsubscribe link of an address.
func (p *PageLinks) Unsubscribe(userID, email string) string {
	return p.base + "/unsubscribe?token=" + url.QueryEscape(p.unsubscribe.Sign(userID, email))
}

func (p *PageLinks) expiry() time.Time { return p.now().Add(PageLinkLifetime) }

// VerifyMonitor returns the user and monitor a monitor page token is for.
func (l *Links) VerifyMonitor(token string, now time.Time) (userID, monitorID string, err error) {
	v, err := l.Verify(token, PurposeMonitor, 2, now)
	if err != nil {
		return "", "", err
	}
	return v[0], v[1], nil
}

// VerifySettings returns the user a settings page token is for.
func (l *Links) VerifySettings(token string, now time.Time) (string, error) {
	v, err := l.Verify(token, PurposeSettings, 1, now)
	if err != nil {
		return "", err
	}
	return v[0], nil
}

// CSRF returns the form token of a page reached with token: an HMAC of it for the "csrf"
// purpose, so a form can only be posted from a page Vigil rendered for the same link.
func (l *Links) CSRF(token string) string {
	return base64.RawURLEncoding.EncodeToString(l.mac("csrf\n" + token))
}

// CheckCSRF reports whether csrf is the form token of token.
func (l *Links) CheckCSRF(token, csrf string) bool {
	return hmac.Equal([]byte(csrf), []byte(l.CSRF(token)))
}

// PurposeVerifyEmail confirms an account's own address.
const PurposeVerifyEmail = "verify-email"

// VerifyEmailLifetime is how long a welcome email's confirmation link works.
const VerifyEmailLifetime = 7 * 24 * time.Hour

// SignVerifyEmail returns a token confirming email as userID's address until expires.
func (l *Links) SignVerifyEmail(userID, email string, expires time.Time) string {
	return l.Sign(PurposeVerifyEmail, expires, userID, strings.ToLower(email))
}

// VerifyEmailToken returns the user and address an email confirmation token is for.
func (l *Links) VerifyEmailToken(token string, now time.Time) (userID, email string, err error) {
	v, err := l.Verify(token, PurposeVerifyEmail, 2, now)
	if err != nil {
		return "", "", err
	}
	return v[0], v[1], nil
}

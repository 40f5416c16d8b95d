// Package action holds what a trigger does when it fires: email a list of addresses or
// call a signed webhook, and the rules that keep both safe (at most ten recipients, only
// http(s) webhook URLs, a secret generated when none is given).
package action

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/mail"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vigilhq/vigil/domain"
)

// Type is the channel of an action.
type Type string

// Types.
const (
	TypeEmail   Type = "email"
	TypeWebhook Type = "webhook"
)

// Limits.
const (
	NameMaxLen       = 200
	RecipientsMax    = 10
	URLMaxLen        = 2048
	SecretMinBytes   = 24 // of a secret the user supplies, after its whsec_ prefix is removed
	SecretMaxLen     = 200
	SecretPrefix     = "whsec_" // Standard Webhooks' prefix; the rest is base64
	secretRandomSize = 32
	// PerUserMax bounds how many actions one user may have.
	PerUserMax = 100
)

// Action is one way a user is told: an email to Recipients, or a webhook call to URL.
type Action struct {
	ID         string
	UserID     string
	Name       string
	Type       Type
	Recipients []string // email: lower-cased addresses
	URL        string   // webhook
	// Secret is the webhook's signing secret in clear. It is set only while the action is
	// being created or its secret rotated (to be shown once) and when a delivery signs.
	Secret  string
	Enabled bool
	// DisabledReason says why Vigil turned the action off (a webhook answered 410 Gone);
	// enabling it again clears it.
	DisabledReason string
	IsDefault      bool // the account's own email action, used by new monitors
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// Draft is what a user asks for when creating an action.
type Draft struct {
	UserID     string
	Name       string
	Type       Type
	Recipients []string
	URL        string
	Secret     string // webhook: "" generates one
	Enabled    *bool  // nil: enabled
}

// Changes is a partial update; nil fields stay as they are.
type Changes struct {
	Name         *string
	Recipients   *[]string
	URL          *string
	Secret       *string // a new webhook secret; "" generates one
	RotateSecret bool    // generate a new webhook secret
	Enabled      *bool
}

// New validates d and returns the action it describes, with a generated webhook secret
// when d has none.
func New(id string, d Draft, now time.Time) (*Action, error) {
	a := &Action{ID: id, UserID: d.UserID, Name: strings.TrimSpace(d.Name), Type: d.Type, Enabled: true,
		CreatedAt: now, UpdatedAt: now}
	if d.Enabled != nil {
		a.Enabled = *d.Enabled
	}
	fields := map[string]string{}
	switch d.Type {
	case TypeEmail:
		a.Recipients = normalizeRecipients(d.Recipients, fields)
		if d.URL != "" {
			fields["config.url"] = "is for webhook actions"
		}
		if d.Secret != "" {
			fields["config.secret"] = "is for webhook actions"
		}
	case TypeWebhook:
		a.URL = checkURL(d.URL, fields)
		if d.Recipients != nil {
			fields["config.to"] = "is for email actions"
		}
		a.Secret = checkSecret(d.Secret, fields)
	default:
		fields["type"] = "must be email or webhook"
	}
	if a.Name == "" {
		a.Name = defaultName(a)
	}
	checkName(a.Name, fields)
	if err := invalid(fields); err != nil {
		return nil, err
	}
	if a.Type == TypeWebhook && a.Secret == "" {
		a.Secret = NewSecret()
	}
	return a, nil
}

// Apply changes a (which must be loaded without its secret). It reports whether the
// webhook secret changed, in which case a.Secret holds the new one in clear.
func (a *Action) Apply(c Changes, now time.Time) (secretChanged bool, err error) {
	fields := map[string]string{}
	if c.Name != nil {
		a.Name = strings.TrimSpace(*c.Name)
		checkName(a.Name, fields)
	}
	if c.Enabled != nil {
		a.Enabled = *c.Enabled
		if a.Enabled {
			a.DisabledReason = ""
		}
	}
	switch a.Type {
	case TypeEmail:
		if c.Recipients != nil {
			a.Recipients = normalizeRecipients(*c.Recipients, fields)
		}
		if c.URL != nil {
			fields["config.url"] = "is for webhook actions"
		}
		if c.Secret != nil || c.RotateSecret {
			fields["config.secret"] = "is for webhook actions"
		}
	case TypeWebhook:
		if c.URL != nil {
			a.URL = checkURL(*c.URL, fields)
		}
		if c.Recipients != nil {
			fields["config.to"] = "is for email actions"
		}
		if c.Secret != nil {
			a.Secret = checkSecret(*c.Secret, fields)
			secretChanged = true
		}
		if c.RotateSecret {
			if c.Secret != nil && *c.Secret != "" {
				fields["rotate_secret"] = "cannot be combined with a secret of your own"
			}
			a.Secret, secretChanged = "", true
		}
	}
	if err := invalid(fields); err != nil {
		return false, err
	}
	if secretChanged && a.Secret == "" {
		a.Secret = NewSecret()
	}
	a.UpdatedAt = now
	return secretChanged, nil
}

// NewSecret returns a random signing secret in Standard Webhooks' form: whsec_ and the
// base64 of 32 random bytes.
func NewSecret() string {
	b := make([]byte, secretRandomSize)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("action: no randomness for a webhook secret: %v", err)) // crypto/rand never fails on Linux
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(b)
}

// SecretKey returns the HMAC key of a secret: the bytes its base64 part encodes (Standard
// Webhooks), or the secret's own bytes when it is not base64.
func SecretKey(secret string) []byte {
	raw := strings.TrimPrefix(secret, SecretPrefix)
	if b, err := base64.StdEncoding.DecodeString(raw); err == nil && len(b) > 0 {
		return b
	}
	return []byte(raw)
}

// OtherRecipients returns the recipients that are not own (the account's address).
func (a *Action) OtherRecipients(own string) []string {
	own = strings.ToLower(strings.TrimSpace(own))
	var out []string
	for _, r := range a.Recipients {
		if r != own {
			out = append(out, r)
		}
	}
	return out
}

func defaultName(a *Action) string {
	switch a.Type {
	case TypeEmail:
		if len(a.Recipients) > 0 {
			return "Email " + a.Recipients[0]
		}
		return "Email"
	case TypeWebhook:
		if u, err := url.Parse(a.URL); err == nil && u.Host != "" {
			return "Webhook to " + u.Host
		}
		return "Webhook"
	}
	return ""
}

func checkName(name string, fields map[string]string) {
	if utf8.RuneCountInString(name) > NameMaxLen {
		fields["name"] = fmt.Sprintf("must be at most %d characters", NameMaxLen)
	}
}

// normalizeRecipients lower-cases, trims and de-duplicates addresses, noting problems.
func normalizeRecipients(in []string, fields map[string]string) []string {
	if len(in) == 0 {
		fields["config.to"] = "must list at least one address"
		return nil
	}
	if len(in) > RecipientsMax {
		fields["config.to"] = fmt.Sprintf("must list at most %d addresses", RecipientsMax)
		return nil
	}
	seen := map[string]bool{}
	out := make([]string, 0, len(in))
	for i, raw := range in {
		addr := strings.ToLower(strings.TrimSpace(raw))
		parsed, err := mail.ParseAddress(addr)
		if err != nil || parsed.Address != addr || len(addr) > 320 {
			fields[fmt.Sprintf("config.to[%d]", i)] = "is not an email address such as ann@example.com"
			continue
		}
		if !seen[addr] {
			seen[addr] = true
			out = append(out, addr)
		}
	}
	return out
}

func checkURL(raw string, fields map[string]string) string {
	raw = strings.TrimSpace(raw)
	u, err := url.Parse(raw)
	switch {
	case raw == "":
		fields["config.url"] = "is required"
	case len(raw) > URLMaxLen:
		fields["config.url"] = fmt.Sprintf("must be at most %d characters", URLMaxLen)
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		fields["config.url"] = "must be an absolute http(s) URL"
	case u.User != nil:
		fields["config.url"] = "must not contain a user name or password; sign with the secret instead"
	case u.Fragment != "":
		fields["config.url"] = "must not have a #fragment"
	}
	return raw
}

func checkSecret(secret string, fields map[string]string) string {
	if secret == "" {
		return ""
	}
	if len(secret) > SecretMaxLen {
		fields["config.secret"] = fmt.Sprintf("must be at most %d characters", SecretMaxLen)
		return ""
	}
	if len(SecretKey(secret)) < SecretMinBytes {
		fields["config.secret"] = fmt.Sprintf("must hold at least %d bytes of randomness (whsec_ and base64, or leave it out to have one generated)", SecretMinBytes)
	}
	return secret
}

func invalid(fields map[string]string) error {
	if len(fields) == 0 {
		return nil
	}
	return &domain.Error{Code: domain.EINVALID, Message: "The action has invalid fields.", Fields: fields}
}

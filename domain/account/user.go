package account

import (
	"fmt"
	"net/mail"
	"strings"
	"time"
	_ "time/tzdata" // timezone validation must not depend on the host's zoneinfo

	"github.com/vigilhq/vigil/domain"
)

// Role is what a user may do beyond their own data.
type Role string

// Roles.
const (
	RoleUser  Role = "user"
	RoleAdmin Role = "admin"
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return r == RoleUser || r == RoleAdmin }

// Profile defaults and limits.
const (
	NameMaxLen        = 200
	EmailMaxLen       = 320
	TimezoneDefault   = "UTC"
	DigestHourDefault = 8
)

// User is a Vigil account.
type User struct {
	ID                   string
	Email                string // as typed at registration; compared lower-cased
	Name                 string
	Role                 Role
	PasswordHash         string // empty for accounts without a password (Google-only)
	Timezone             string // IANA name
	DigestHour           int    // local hour (0-23) the daily digest is sent
	NotificationsEnabled bool
	// UnsubscribedAt is when the user followed an unsubscribe link; notification email to
	// the account's own address stops until notifications are turned on again.
	UnsubscribedAt  *time.Time
	EmailVerifiedAt *time.Time
	DisabledAt      *time.Time
	LastLoginAt     *time.Time
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// HasPassword reports whether the user can log in with a password.
func (u *User) HasPassword() bool { return u.PasswordHash != "" }

// Disabled reports whether an operator disabled the account.
func (u *User) Disabled() bool { return u.DisabledAt != nil }

// NormalizeEmail trims an address and lower-cases it, the form emails are compared in.
func NormalizeEmail(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

// validateEmail returns a field error text for email, "" when it is acceptable.
func validateEmail(email string) string {
	switch {
	case email == "":
		return "is required"
	case len(email) > EmailMaxLen:
		return fmt.Sprintf("must be at most %d characters", EmailMaxLen)
	}
	a, err := mail.ParseAddress(email)
	if err != nil || a.Address != email || a.Name != "" {
		return "is not an email address"
	}
	at := strings.LastIndexByte(email, '@')
	host := email[at+1:]
	if at < 1 || (!strings.Contains(host, ".") && host != "localhost") {
		return "is not an email address"
	}
	return ""
}

// validateName returns a field error text for a display name, "" when it is acceptable.
func validateName(name string) string {
	if len([]rune(name)) > NameMaxLen {
		return fmt.Sprintf("must be at most %d characters", NameMaxLen)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return "must not contain control characters"
		}
	}
	return ""
}

// validateTimezone returns a field error text for an IANA zone name, "" when it is known.
func validateTimezone(tz string) string {
	if tz == "" || tz == "Local" {
		return "must be an IANA time zone such as Europe/Berlin"
	}
	if _, err := time.LoadLocation(tz); err != nil {
		return "must be an IANA time zone such as Europe/Berlin"
	}
	return ""
}

// invalid returns an EINVALID error with the field errors, nil when there are none.
func invalid(fields map[string]string) error {
	if len(fields) == 0 {
		return nil
	}
	return &domain.Error{Code: domain.EINVALID, Message: "Some fields are invalid.", Fields: fields}
}

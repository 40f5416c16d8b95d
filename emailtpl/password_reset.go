package emailtpl

import (
	"fmt"
	"time"

	"github.com/vigilhq/vigil/domain"
)

// PasswordResetSubject is the subject of the password reset email.
const PasswordResetSubject = "Reset your Vigil password"

// PasswordReset is the data for the email carrying a password reset link.
type PasswordReset struct {
	RecipientName string
	// ResetURL is the link that opens the reset form: PUBLIC_BASE_URL based, never built
	// from a request's Host header.
	ResetURL string
	// ExpiresIn is how long the link works, said in the email ("an hour").
	ExpiresIn time.Duration
}

type passwordResetView struct {
	Layout    layout
	Greeting  string
	ResetURL  string
	ExpiresIn string
}

// PasswordReset renders the password reset email. It has no unsubscribe link: it is sent
// only because someone asked for it. It returns a *domain.Error with code EINVALID if d is
// incomplete.
func (r *Renderer) PasswordReset(d PasswordReset) (Email, error) {
	fields := map[string]string{}
	if !absoluteHTTPURL(d.ResetURL) {
		fields["reset_url"] = "must be an absolute http(s) URL"
	}
	if d.ExpiresIn < time.Minute {
		fields["expires_in"] = "must be at least a minute"
	}
	if len(fields) > 0 {
		return Email{}, &domain.Error{Code: domain.EINVALID, Message: "Invalid password reset email data.", Fields: fields}
	}
	expires := humanDuration(d.ExpiresIn)
	v := passwordResetView{
		Greeting: greeting(d.RecipientName), ResetURL: d.ResetURL, ExpiresIn: expires,
		Layout: layout{
			Title:       PasswordResetSubject,
			Preheader:   "Choose a new password with this link within " + expires + ".",
			ButtonLabel: "Choose a new password",
			ButtonURL:   d.ResetURL,
			FooterNote: "You receive this email because someone asked to reset the password of the Vigil account " +
				"for this address. If it was not you, you can ignore it: your password stays as it is.",
		},
	}
	html, text, err := r.render("password_reset", v)
	if err != nil {
		return Email{}, err
	}
	return Email{Subject: PasswordResetSubject, HTML: html, Text: text}, nil
}

// humanDuration says d the way the emails do: "an hour", "2 hours", "30 minutes".
func humanDuration(d time.Duration) string {
	switch {
	case d == 24*time.Hour:
		return "a day"
	case d%(24*time.Hour) == 0:
		return fmt.Sprintf("%d days", d/(24*time.Hour))
	case d == time.Hour:
		return "an hour"
	case d%time.Hour == 0:
		return fmt.Sprintf("%d hours", d/time.Hour)
	case d == time.Minute:
		return "a minute"
	}
	return fmt.Sprintf("%d minutes", d/time.Minute)
}

package emailtpl

import (
	"time"

	"github.com/vigilhq/vigil/domain"
)

// WelcomeSubject is the subject of the welcome email.
const WelcomeSubject = "Welcome to Vigil: confirm your email"

// Welcome is the data for the email a new account gets, with a link confirming its address.
type Welcome struct {
	RecipientName string
	ConfirmURL    string
	ExpiresIn     time.Duration
}

type welcomeView struct {
	Layout     layout
	Greeting   string
	ConfirmURL string
	ExpiresIn  string
}

// Welcome renders the welcome email. It returns a *domain.Error with code EINVALID if d is
// incomplete.
func (r *Renderer) Welcome(d Welcome) (Email, error) {
	fields := map[string]string{}
	if !absoluteHTTPURL(d.ConfirmURL) {
		fields["confirm_url"] = "must be an absolute http(s) URL"
	}
	if d.ExpiresIn < time.Minute {
		fields["expires_in"] = "must be at least a minute"
	}
	if len(fields) > 0 {
		return Email{}, &domain.Error{Code: domain.EINVALID, Message: "Invalid welcome email data.", Fields: fields}
	}
	expires := humanDuration(d.ExpiresIn)
	v := welcomeView{Greeting: greeting(d.RecipientName), ConfirmURL: d.ConfirmURL, ExpiresIn: expires,
		Layout: layout{Title: WelcomeSubject, Preheader: "Confirm your address, then tell Vigil what to watch.",
			ButtonLabel: "Confirm my email", ButtonURL: d.ConfirmURL,
			FooterNote: "You receive this email because someone registered a Vigil account with this address. If it was not you, ignore it."}}
	html, text, err := r.render("welcome", v)
	if err != nil {
		return Email{}, err
	}
	return Email{Subject: WelcomeSubject, HTML: html, Text: text}, nil
}

package emailtpl

import (
	"time"

	"github.com/vigilhq/vigil/domain"
)

// RecipientConfirmSubject is the subject of the email asking an address to confirm it
// wants a Vigil user's notifications.
const RecipientConfirmSubject = "Confirm that you want Vigil notifications"

// RecipientConfirm is the data for the email asking a recipient to confirm.
type RecipientConfirm struct {
	OwnerName  string // the Vigil user who added the address
	OwnerEmail string
	ConfirmURL string // PUBLIC_BASE_URL based
	ExpiresIn  time.Duration
}

type recipientConfirmView struct {
	Layout     layout
	Owner      string
	ConfirmURL string
	ExpiresIn  string
}

// RecipientConfirm renders the recipient confirmation email. Nothing else is ever sent to
// the address until its owner follows the link, so Vigil cannot be used to mail strangers.
// It returns a *domain.Error with code EINVALID if d is incomplete.
func (r *Renderer) RecipientConfirm(d RecipientConfirm) (Email, error) {
	fields := map[string]string{}
	if !absoluteHTTPURL(d.ConfirmURL) {
		fields["confirm_url"] = "must be an absolute http(s) URL"
	}
	if d.OwnerEmail == "" {
		fields["owner_email"] = "is required"
	}
	if d.ExpiresIn < time.Minute {
		fields["expires_in"] = "must be at least a minute"
	}
	if len(fields) > 0 {
		return Email{}, &domain.Error{Code: domain.EINVALID, Message: "Invalid recipient confirmation email data.", Fields: fields}
	}
	owner := d.OwnerEmail
	if d.OwnerName != "" {
		owner = d.OwnerName + " (" + d.OwnerEmail + ")"
	}
	expires := humanDuration(d.ExpiresIn)
	v := recipientConfirmView{Owner: owner, ConfirmURL: d.ConfirmURL, ExpiresIn: expires,
		Layout: layout{
			Title:       RecipientConfirmSubject,
			Preheader:   owner + " wants to send you monitor notifications.",
			ButtonLabel: "Yes, send me these notifications",
			ButtonURL:   d.ConfirmURL,
			FooterNote: "You receive this email because a Vigil user entered this address. Vigil sends nothing " +
				"more to it unless you confirm; if you do not know them, ignore this email.",
		}}
	html, text, err := r.render("recipient_confirm", v)
	if err != nil {
		return Email{}, err
	}
	return Email{Subject: RecipientConfirmSubject, HTML: html, Text: text}, nil
}

package smtp

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/rs/zerolog"

	"github.com/vigilhq/vigil/domain/app"
	"github.com/vigilhq/vigil/emailtpl"
)

// RecipientConfirmPath is the page a recipient confirmation link opens; the token is its
// query.
const RecipientConfirmPath = "/confirm-recipient"

// RecipientMailer sends the emails asking an address to confirm it wants a user's
// notifications, in the background like ResetMailer. It satisfies app.RecipientMailer.
type RecipientMailer struct {
	*background
	renderer *emailtpl.Renderer
	sender   *Sender
	baseURL  string
}

var _ app.RecipientMailer = (*RecipientMailer)(nil)

// NewRecipientMailer returns a RecipientMailer linking to baseURL (PUBLIC_BASE_URL).
func NewRecipientMailer(renderer *emailtpl.Renderer, sender *Sender, baseURL string, log zerolog.Logger) (*RecipientMailer, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("recipient mailer: base url %q must be an absolute http(s) URL", baseURL)
	}
	if renderer == nil || sender == nil {
		return nil, errors.New("recipient mailer: renderer and sender are required")
	}
	return &RecipientMailer{background: newBackground(log, ResetTimeoutDefault, ResetMaxInFlightDefault), renderer: renderer,
		sender: sender, baseURL: strings.TrimRight(baseURL, "/")}, nil
}

// ConfirmURL returns the link a confirmation email carries for token.
func (m *RecipientMailer) ConfirmURL(token string) string {
	return m.baseURL + RecipientConfirmPath + "?token=" + url.QueryEscape(token)
}

// SendRecipientConfirmation implements app.RecipientMailer.
func (m *RecipientMailer) SendRecipientConfirmation(ctx context.Context, c app.RecipientConfirmation) {
	m.start(ctx, m.log.With().Str("user_id", c.UserID).Logger(), "recipient confirmation email", func(ctx context.Context) error {
		email, err := m.renderer.RecipientConfirm(emailtpl.RecipientConfirm{OwnerName: c.Owner.Name, OwnerEmail: c.Owner.Email,
			ConfirmURL: m.ConfirmURL(c.Token), ExpiresIn: c.ExpiresIn})
		if err != nil {
			return fmt.Errorf("render recipient confirmation: %w", err)
		}
		err = m.sender.Send(ctx, Message{To: c.To, Subject: email.Subject, HTML: email.HTML, Text: email.Text,
			Headers: map[string]string{"Auto-Submitted": "auto-generated"}})
		if err != nil {
			return fmt.Errorf("send recipient confirmation: %w", err)
		}
		return nil
	})
}

package smtp

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/vigilhq/vigil/domain/account"
	"github.com/vigilhq/vigil/emailtpl"
)

// VerifyEmailPath is the page a welcome email's confirmation link opens.
const VerifyEmailPath = "/verify-email"

// VerifyEmailLifetimeDefault is how long a confirmation link works.
const VerifyEmailLifetimeDefault = 7 * 24 * time.Hour

// VerifyEmailSigner signs the tokens of confirmation links; *tokens.Links satisfies it.
type VerifyEmailSigner interface {
	SignVerifyEmail(userID, email string, expires time.Time) string
}

// WelcomeMailer sends welcome emails with a confirmation link, in the background like
// ResetMailer. It satisfies account.WelcomeMailer.
type WelcomeMailer struct {
	*background
	renderer *emailtpl.Renderer
	sender   *Sender
	signer   VerifyEmailSigner
	baseURL  string
	now      func() time.Time
}

var _ account.WelcomeMailer = (*WelcomeMailer)(nil)

// NewWelcomeMailer returns a WelcomeMailer linking to baseURL (PUBLIC_APP_URL).
func NewWelcomeMailer(renderer *emailtpl.Renderer, sender *Sender, signer VerifyEmailSigner, baseURL string, now func() time.Time, log zerolog.Logger) (*WelcomeMailer, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("welcome mailer: base url %q must be an absolute http(s) URL", baseURL)
	}
	if renderer == nil || sender == nil || signer == nil {
		return nil, errors.New("welcome mailer: renderer, sender and signer are required")
	}
	return &WelcomeMailer{background: newBackground(log, ResetTimeoutDefault, ResetMaxInFlightDefault), renderer: renderer,
		sender: sender, signer: signer, baseURL: strings.TrimRight(baseURL, "/"), now: now}, nil
}

// SendWelcome implements account.WelcomeMailer.
func (m *WelcomeMailer) SendWelcome(ctx context.Context, w account.WelcomeMail) {
	m.start(ctx, m.log.With().Str("user_id", w.UserID).Logger(), "welcome email", func(ctx context.Context) error {
		token := m.signer.SignVerifyEmail(w.UserID, w.To, m.now().Add(VerifyEmailLifetimeDefault))
		email, err := m.renderer.Welcome(emailtpl.Welcome{RecipientName: w.Name,
			ConfirmURL: m.baseURL + VerifyEmailPath + "?token=" + url.QueryEscape(token), ExpiresIn: VerifyEmailLifetimeDefault})
		if err != nil {
			return fmt.Errorf("render welcome: %w", err)
		}
		err = m.sender.Send(ctx, Message{To: w.To, Subject: email.Subject, HTML: email.HTML, Text: email.Text,
			Headers: map[string]string{"Auto-Submitted": "auto-generated"}})
		if err != nil {
			return fmt.Errorf("send welcome: %w", err)
		}
		return nil
	})
}

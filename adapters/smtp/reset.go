package smtp

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/vigilhq/vigil/domain/account"
	"github.com/vigilhq/vigil/emailtpl"
)

// Defaults for ResetMailerConfig.
const (
	// ResetTimeoutDefault bounds the delivery of one password reset email.
	ResetTimeoutDefault = 30 * time.Second
	// ResetMaxInFlightDefault bounds how many reset emails are being delivered at once.
	ResetMaxInFlightDefault = 16
	// ResetPath is the page of the web app a reset link opens; the token is its query.
	ResetPath = "/reset-password"
)

// ResetMailerConfig configures a ResetMailer.
type ResetMailerConfig struct {
	// BaseURL is PUBLIC_BASE_URL: links are built from it, never from a request's Host
	// header, which an attacker could set to send a victim's token to their own server.
	BaseURL string
	// Logger receives delivery failures (never the token or the link).
	Logger zerolog.Logger
	// Timeout bounds one delivery; ResetTimeoutDefault when 0.
	Timeout time.Duration
	// MaxInFlight bounds concurrent deliveries; ResetMaxInFlightDefault when 0. A request
	// arriving when all are busy is dropped and logged rather than queued without limit.
	MaxInFlight int
}

// ResetMailer renders password reset emails and delivers them in the background, so the
// answer to "forgot password" never waits for (or reveals anything through) the mail
// server. It satisfies account.ResetMailer and is safe for concurrent use.
type ResetMailer struct {
	renderer *emailtpl.Renderer
	sender   *Sender
	baseURL  string
	log      zerolog.Logger
	timeout  time.Duration
	slots    chan struct{}
	wg       sync.WaitGroup
}

var _ account.ResetMailer = (*ResetMailer)(nil)

// NewResetMailer returns a ResetMailer sending through sender, or an error when
// cfg.BaseURL is not an absolute http(s) URL.
func NewResetMailer(renderer *emailtpl.Renderer, sender *Sender, cfg ResetMailerConfig) (*ResetMailer, error) {
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("reset mailer: base url %q must be an absolute http(s) URL", cfg.BaseURL)
	}
	if renderer == nil || sender == nil {
		return nil, errors.New("reset mailer: renderer and sender are required")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = ResetTimeoutDefault
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = ResetMaxInFlightDefault
	}
	return &ResetMailer{renderer: renderer, sender: sender, baseURL: strings.TrimRight(cfg.BaseURL, "/"),
		log: cfg.Logger, timeout: cfg.Timeout, slots: make(chan struct{}, cfg.MaxInFlight)}, nil
}

// ResetURL returns the link a reset email carries for token.
func (m *ResetMailer) ResetURL(token string) string {
	return m.baseURL + ResetPath + "?token=" + url.QueryEscape(token)
}

// SendPasswordReset implements account.ResetMailer: it starts the delivery in a goroutine
// with its own timeout (detached from ctx, which ends with the request, but keeping its
// values) and returns at once.
func (m *ResetMailer) SendPasswordReset(ctx context.Context, rm account.ResetMail) {
	log := m.log.With().Str("user_id", rm.UserID).Logger()
	select {
	case m.slots <- struct{}{}:
	default:
		log.Warn().Int("max_in_flight", cap(m.slots)).Msg("password reset email dropped: too many deliveries in flight")
		return
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer func() { <-m.slots }()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.timeout)
		defer cancel()
		if err := m.deliver(ctx, rm); err != nil {
			log.Error().Err(err).Msg("password reset email not sent")
			return
		}
		log.Info().Msg("password reset email sent")
	}()
}

// deliver renders and sends one reset email. Its errors never contain the token.
func (m *ResetMailer) deliver(ctx context.Context, rm account.ResetMail) error {
	email, err := m.renderer.PasswordReset(emailtpl.PasswordReset{RecipientName: rm.Name, ResetURL: m.ResetURL(rm.Token),
		ExpiresIn: rm.ExpiresIn})
	if err != nil {
		return fmt.Errorf("render password reset email: %w", err)
	}
	err = m.sender.Send(ctx, Message{To: rm.To, Subject: email.Subject, HTML: email.HTML, Text: email.Text,
		Headers: map[string]string{"Auto-Submitted": "auto-generated"}})
	if err != nil {
		return fmt.Errorf("send password reset email: %w", err)
	}
	return nil
}

// Wait blocks until every delivery started so far has ended, or ctx ends. Call it after the
// HTTP server stopped taking requests, so a shutdown does not cut reset emails off.
func (m *ResetMailer) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		m.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for password reset emails: %w", ctx.Err())
	}
}

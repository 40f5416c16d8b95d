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
	*background
	renderer *emailtpl.Renderer
	sender   *Sender
	baseURL  string
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
	return &ResetMailer{background: newBackground(cfg.Logger, cfg.Timeout, cfg.MaxInFlight), renderer: renderer, sender: sender,
		baseURL: strings.TrimRight(cfg.BaseURL, "/")}, nil
}

// ResetURL returns the link a reset email carries for token.
func (m *ResetMailer) ResetURL(token string) string {
	return m.baseURL + ResetPath + "?token=" + url.QueryEscape(token)
}

// SendPasswordReset implements account.ResetMailer: it starts the delivery in a goroutine
// with its own timeout (detached from ctx, which ends with the request, but keeping its
// values) and returns at once.
func (m *ResetMailer) SendPasswordReset(ctx context.Context, rm account.ResetMail) {
	m.start(ctx, m.log.With().Str("user_id", rm.UserID).Logger(), "password reset email", func(ctx context.Context) error {
		return m.deliver(ctx, rm)
	})
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

// background delivers emails in goroutines, each with its own timeout and at most
// maxInFlight at once; Wait lets them finish at shutdown.
type background struct {
	log     zerolog.Logger
	timeout time.Duration
	slots   chan struct{}
	wg      sync.WaitGroup
}

func newBackground(log zerolog.Logger, timeout time.Duration, maxInFlight int) *background {
	return &background{log: log, timeout: timeout, slots: make(chan struct{}, maxInFlight)}
}

// start runs deliver in a goroutine, detached from ctx's cancellation (ctx ends with the
// request) but keeping its values, and returns at once. When every slot is busy the email
// is dropped and logged rather than queued without limit.
func (b *background) start(ctx context.Context, log zerolog.Logger, what string, deliver func(context.Context) error) {
	select {
	case b.slots <- struct{}{}:
	default:
		log.Warn().Int("max_in_flight", cap(b.slots)).Msg(what + " dropped: too many deliveries in flight")
		return
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		defer func() { <-b.slots }()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.timeout)
		defer cancel()
		if err := deliver(ctx); err != nil {
			log.Error().Err(err).Msg(what + " not sent")
			return
		}
		log.Info().Msg(what + " sent")
	}()
}

// Wait blocks until every delivery started so far has ended, or ctx ends. Call it after the
// HTTP server stopped taking requests, so a shutdown does not cut emails off.
func (b *background) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		b.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for emails in flight: %w", ctx.Err())
	}
}

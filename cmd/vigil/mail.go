package main

import (
	"context"
	"fmt"

	"github.com/vigilhq/vigil/adapters/smtp"
	"github.com/vigilhq/vigil/emailtpl"
)

// resetMailer returns the API role's sender of password reset emails, built once: it delivers in the background, links to PUBLIC_BASE_URL and is
// drained by waitResetMail when the API shuts down.
func (m *Main) resetMailer() (*smtp.ResetMailer, error) {
	if m.resetMail != nil {
		return m.resetMail, nil
	}
	renderer, sender, err := m.mailParts()
	if err != nil {
		return nil, err
	}
	rm, err := smtp.NewResetMailer(renderer, sender, smtp.ResetMailerConfig{BaseURL: m.cfg.PublicAppURL,
		Logger: m.log.With().Str("component", "password_reset_mail").Logger()})
	if err != nil {
		return nil, fmt.Errorf("PUBLIC_BASE_URL: %w", err)
	}
	m.resetMail = rm
	return rm, nil
}

// waitResetMail lets reset emails still being delivered finish, until ctx ends. It runs
// after the HTTP server stopped, so no new ones start.
func (m *Main) waitResetMail(ctx context.Context) {
	if m.resetMail != nil {
		if err := m.resetMail.Wait(ctx); err != nil {
			m.log.Warn().Err(err).Msg("password reset emails still in flight at shutdown")
		}
	}
	if m.welcomeMail != nil {
		if err := m.welcomeMail.Wait(ctx); err != nil {
			m.log.Warn().Err(err).Msg("welcome emails still in flight at shutdown")
		}
	}
	if m.recipientMail != nil {
		if err := m.recipientMail.Wait(ctx); err != nil {
			m.log.Warn().Err(err).Msg("recipient confirmation emails still in flight at shutdown")
		}
	}
}

// welcomeMailer returns the API role's sender of welcome emails, built once and drained
// by waitResetMail.
func (m *Main) welcomeMailer() (*smtp.WelcomeMailer, error) {
	if m.welcomeMail != nil {
		return m.welcomeMail, nil
	}
	renderer, sender, err := m.mailParts()
	if err != nil {
		return nil, err
	}
	links, err := m.linkTokens()
	if err != nil {
		return nil, err
	}
	wm, err := smtp.NewWelcomeMailer(renderer, sender, links, m.cfg.PublicAppURL, m.now, m.log.With().Str("component", "welcome_mail").Logger())
	if err != nil {
		return nil, fmt.Errorf("PUBLIC_APP_URL: %w", err)
	}
	m.welcomeMail = wm
	return wm, nil
}

// mailParts returns the email renderer and the SMTP sender, built once per process and
// shared by everything that sends mail.
func (m *Main) mailParts() (*emailtpl.Renderer, *smtp.Sender, error) {
	if m.renderer != nil {
		return m.renderer, m.smtpSender, nil
	}
	renderer, err := emailtpl.New()
	if err != nil {
		return nil, nil, err
	}
	sender, err := smtp.NewSender(smtp.Config{URL: m.cfg.SMTPURL, From: m.cfg.MailFrom, MaxConns: m.cfg.SMTPMaxConns})
	if err != nil {
		return nil, nil, err
	}
	m.renderer, m.smtpSender = renderer, sender
	return renderer, sender, nil
}

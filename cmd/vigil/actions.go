package main

import (
	"fmt"
	"path/filepath"

	"github.com/vigilhq/vigil/adapters/httpapi"
	"github.com/vigilhq/vigil/adapters/keyring"
	"github.com/vigilhq/vigil/adapters/postgres"
	"github.com/vigilhq/vigil/adapters/sendgrid"
	"github.com/vigilhq/vigil/adapters/smtp"
	"github.com/vigilhq/vigil/adapters/source"
	"github.com/vigilhq/vigil/adapters/tokens"
	"github.com/vigilhq/vigil/domain/app"
)

// dataKeyFile is where dev mode keeps its generated data key, inside VIGIL_DATA_DIR.
const dataKeyFile = "data-key"

// dataKeys returns the keyring sealing secrets at rest: VIGIL_DATA_KEYS when set; in dev
// mode otherwise one key generated once and kept in the data dir. Prod without keys never
// gets here (config).
func (m *Main) dataKeys() (*keyring.Keyring, error) {
	var keys []keyring.Key
	if m.cfg.DataKeys != "" {
		parsed, err := keyring.Parse(m.cfg.DataKeys)
		if err != nil {
			return nil, fmt.Errorf("VIGIL_DATA_KEYS: %w", err)
		}
		keys = parsed
	} else {
		secret, err := devSecret(filepath.Join(m.cfg.DataDir, dataKeyFile))
		if err != nil {
			return nil, err
		}
		keys = []keyring.Key{{ID: "dev", Secret: secret[:keyring.KeySize]}}
	}
	k, err := keyring.New(keys)
	if err != nil {
		return nil, fmt.Errorf("VIGIL_DATA_KEYS: %w", err)
	}
	return k, nil
}

// linkTokens returns the signer of the links in emails, keyed by VIGIL_SECRET_KEY (or the
// dev key).
func (m *Main) linkTokens() (*tokens.Links, error) {
	secret, err := m.secretKey()
	if err != nil {
		return nil, err
	}
	return tokens.NewLinks(deriveKey(secret, "vigil/links"))
}

// actionService wires the actions API: Postgres with sealed secrets, the SSRF guard of
// sources, confirmation emails sent in the background.
func (m *Main) actionService() (*app.ActionService, error) {
	keys, err := m.dataKeys()
	if err != nil {
		return nil, err
	}
	links, err := m.linkTokens()
	if err != nil {
		return nil, err
	}
	renderer, sender, err := m.mailParts()
	if err != nil {
		return nil, err
	}
	mailer, err := smtp.NewRecipientMailer(renderer, sender, m.cfg.PublicAppURL, m.log.With().Str("component", "recipient_mail").Logger())
	if err != nil {
		return nil, fmt.Errorf("PUBLIC_BASE_URL: %w", err)
	}
	m.recipientMail = mailer
	senders, err := m.notificationSenders()
	if err != nil {
		return nil, err
	}
	store := postgres.NewActionStore(m.pool, keys)
	return app.NewActionService(app.ActionDeps{Store: store, Recipients: store, Mailer: mailer, Tokens: links,
		Guard: source.NewGuard(source.Config{AllowPrivate: m.cfg.AllowPrivateSources}), Audit: postgres.NewAuditStore(m.pool), Now: m.now,
		Secrets: store, Senders: senders})
}

// emailEventSource returns the reader of SendGrid's signed event requests, or nil (the
// route is off) without SENDGRID_WEBHOOK_PUBLIC_KEY.
func (m *Main) emailEventSource() (httpapi.EmailEventSource, error) {
	if m.cfg.SendGridWebhookKey == "" {
		return nil, nil
	}
	v, err := sendgrid.NewVerifier(m.cfg.SendGridWebhookKey)
	if err != nil {
		return nil, fmt.Errorf("SENDGRID_WEBHOOK_PUBLIC_KEY: %w", err)
	}
	return sendgrid.Source{Verifier: v}, nil
}

// pageLinks builds the signed links of emails, to PUBLIC_APP_URL (by default
// PUBLIC_BASE_URL, where the API serves the pages).
func (m *Main) pageLinks() (*tokens.PageLinks, error) {
	links, err := m.linkTokens()
	if err != nil {
		return nil, err
	}
	unsubscribe, err := m.unsubscribeTokens()
	if err != nil {
		return nil, err
	}
	return tokens.NewPageLinks(links, unsubscribe, m.cfg.PublicAppURL, m.now), nil
}

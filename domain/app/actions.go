package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/action"
	"github.com/vigilhq/vigil/domain/monitor"
)

// ActionStore persists actions. Every method is scoped to the user: another user's action
// is ENOTFOUND. Webhook secrets are stored encrypted and never read back by these methods.
type ActionStore interface {
	// CountActions returns how many actions the user has.
	CountActions(ctx context.Context, userID string) (int, error)
	// CreateAction inserts a, encrypting its webhook secret.
	CreateAction(ctx context.Context, a *action.Action) error
	// GetAction returns the user's action, without its secret, or ENOTFOUND.
	GetAction(ctx context.Context, userID, id string) (*action.Action, error)
	// ListActions returns the user's actions, oldest first, without secrets.
	ListActions(ctx context.Context, userID string) ([]*action.Action, error)
	// UpdateAction writes a's name, recipients, URL and switch, and its secret (encrypted)
	// when secretChanged. ENOTFOUND when it is gone.
	UpdateAction(ctx context.Context, a *action.Action, secretChanged bool) error
	// DeleteAction deletes the user's action and its triggers. ENOTFOUND when it is not
	// the user's.
	DeleteAction(ctx context.Context, userID, id string) error
}

// RecipientStore tracks the addresses, other than their own, that users asked to mail.
type RecipientStore interface {
	// RequestRecipients notes that userID wants to mail emails and returns those to send a
	// confirmation to now: not the account's own address, not yet confirmed, not asked
	// within the last day, and at most max in any day for the user. It also returns the
	// account's name and address, for the confirmation email.
	RequestRecipients(ctx context.Context, userID string, emails []string, now time.Time, max int) (toAsk []string, owner Owner, err error)
	// ConfirmRecipient marks email as confirmed for userID. ENOTFOUND when the user never
	// asked for it (or was deleted).
	ConfirmRecipient(ctx context.Context, userID, email string, now time.Time) error
	// AllowedRecipients returns those of emails that userID may mail: the account's own
	// address and the ones their owners confirmed.
	AllowedRecipients(ctx context.Context, userID string, emails []string) ([]string, error)
}

// WebhookSecrets reads a webhook action's secret for a test delivery.
type WebhookSecrets interface {
	// WebhookSecret returns the user's webhook action's secret in clear, or ENOTFOUND.
	WebhookSecret(ctx context.Context, userID, id string) (string, error)
}

// Owner is the account asking a recipient to confirm.
type Owner struct {
	Name, Email string
}

// RecipientConfirmation is one confirmation email to send.
type RecipientConfirmation struct {
	UserID    string
	To        string
	Owner     Owner
	Token     string
	ExpiresIn time.Duration
}

// RecipientMailer sends recipient confirmation emails, in the background.
type RecipientMailer interface {
	SendRecipientConfirmation(ctx context.Context, c RecipientConfirmation)
}

// RecipientTokens signs and checks the links of confirmation emails.
type RecipientTokens interface {
	// SignRecipient returns a token confirming email for userID until expires.
	SignRecipient(userID, email string, expires time.Time) string
	// VerifyRecipient returns what a token confirms, or an error for one that is forged or
	// expired at now.
	VerifyRecipient(token string, now time.Time) (userID, email string, err error)
}

// URLGuard refuses URLs that resolve to addresses Vigil may not call (SSRF).
type URLGuard interface {
	// CheckURL returns EINVALID when rawURL's host resolves to a forbidden address or does
	// not resolve at all.
	CheckURL(ctx context.Context, rawURL string) error
}

// SourceGuard refuses monitor sources on addresses Vigil may not call (SSRF).
type SourceGuard interface {
	// CheckSource returns EINVALID when rawURL's host is or resolves to a forbidden
	// address; a host that does not resolve now passes (each fetch checks again).
	CheckSource(ctx context.Context, rawURL string) error
}

// Recipient confirmation limits.
const (
	RecipientTokenLifetime = 7 * 24 * time.Hour
	RecipientAsksPerDay    = 20
)

// ActionService is the actions API's use cases.
type ActionService struct {
	store      ActionStore
	recipients RecipientStore
	mailer     RecipientMailer
	tokens     RecipientTokens
	guard      URLGuard
	audit      AuditRecorder
	now        func() time.Time
	secrets    WebhookSecrets
	senders    map[string]NotificationSender
}

// ActionDeps are the ActionService's ports; all are required.
type ActionDeps struct {
	Store      ActionStore
	Recipients RecipientStore
	Mailer     RecipientMailer
	Tokens     RecipientTokens
	Guard      URLGuard
	Audit      AuditRecorder
	Now        func() time.Time
	// Secrets and Senders serve Test; without senders Test reports every channel as
	// unavailable.
	Secrets WebhookSecrets
	Senders map[string]NotificationSender
}

// NewActionService returns the actions use cases.
func NewActionService(d ActionDeps) (*ActionService, error) {
	if d.Store == nil || d.Recipients == nil || d.Mailer == nil || d.Tokens == nil || d.Guard == nil || d.Audit == nil || d.Now == nil {
		return nil, errors.New("action service: every dependency is required")
	}
	return &ActionService{store: d.Store, recipients: d.Recipients, mailer: d.Mailer, tokens: d.Tokens, guard: d.Guard,
		audit: d.Audit, now: d.Now, secrets: d.Secrets, senders: d.Senders}, nil
}

// Create validates and stores a new action. A webhook's URL must pass the SSRF guard; its
// secret, generated when absent, is in the returned action's Secret, to be shown once.
// Recipients other than the account's own address are mailed a confirmation link.
func (s *ActionService) Create(ctx context.Context, d action.Draft) (*action.Action, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return nil, fmt.Errorf("new action id: %w", err)
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	a, err := action.New(id.String(), d, now)
	if err != nil {
		return nil, err
	}
	if err := s.checkURL(ctx, a); err != nil {
		return nil, err
	}
	n, err := s.store.CountActions(ctx, d.UserID)
	if err != nil {
		return nil, fmt.Errorf("count actions: %w", err)
	}
	if n >= action.PerUserMax {
		return nil, domain.Errorf(domain.ECONFLICT, "You have reached the limit of %d actions; delete one first.", action.PerUserMax)
	}
	if err := s.store.CreateAction(ctx, a); err != nil {
		return nil, fmt.Errorf("store action: %w", err)
	}
	if err := recordAudit(ctx, s.audit, now, a.UserID, AuditActionCreated, TargetAction, a.ID, map[string]any{"type": string(a.Type)}); err != nil {
		return nil, err
	}
	if err := s.askRecipients(ctx, a, now); err != nil {
		return nil, err
	}
	return a, nil
}

// Get returns the user's action, without its secret.
func (s *ActionService) Get(ctx context.Context, userID, id string) (*action.Action, error) {
	return s.store.GetAction(ctx, userID, id)
}

// List returns every action of the user.
func (s *ActionService) List(ctx context.Context, userID string) ([]*action.Action, error) {
	return s.store.ListActions(ctx, userID)
}

// Update changes the user's action. A new or rotated webhook secret is in the returned
// action's Secret, to be shown once.
func (s *ActionService) Update(ctx context.Context, userID, id string, c action.Changes) (*action.Action, error) {
	a, err := s.store.GetAction(ctx, userID, id)
	if err != nil {
		return nil, err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	secretChanged, err := a.Apply(c, now)
	if err != nil {
		return nil, err
	}
	if c.URL != nil {
		if err := s.checkURL(ctx, a); err != nil {
			return nil, err
		}
	}
	if err := s.store.UpdateAction(ctx, a, secretChanged); err != nil {
		return nil, fmt.Errorf("store action: %w", err)
	}
	meta := map[string]any{"secret_rotated": secretChanged}
	if err := recordAudit(ctx, s.audit, now, userID, AuditActionUpdated, TargetAction, a.ID, meta); err != nil {
		return nil, err
	}
	if c.Recipients != nil {
		if err := s.askRecipients(ctx, a, now); err != nil {
			return nil, err
		}
	}
	if !secretChanged {
		a.Secret = ""
	}
	return a, nil
}

// Delete deletes the user's action and the triggers that use it.
func (s *ActionService) Delete(ctx context.Context, userID, id string) error {
	if err := s.store.DeleteAction(ctx, userID, id); err != nil {
		return err
	}
	return recordAudit(ctx, s.audit, s.now(), userID, AuditActionDeleted, TargetAction, id, nil)
}

// ConfirmRecipient confirms the address a confirmation link was sent to. EINVALID for a
// link that is forged or expired.
func (s *ActionService) ConfirmRecipient(ctx context.Context, token string) (email string, err error) {
	now := s.now().UTC()
	userID, email, err := s.tokens.VerifyRecipient(token, now)
	if err != nil {
		return "", &domain.Error{Code: domain.EINVALID, Message: "This confirmation link is not valid or has expired.", Err: err}
	}
	if err := s.recipients.ConfirmRecipient(ctx, userID, email, now); err != nil {
		return "", err
	}
	if err := recordAudit(ctx, s.audit, now, userID, AuditRecipientAdded, "email", email, nil); err != nil {
		return "", err
	}
	return email, nil
}

// VerifyRecipientToken returns the address a confirmation link is for, without confirming.
func (s *ActionService) VerifyRecipientToken(token string) (string, error) {
	_, email, err := s.tokens.VerifyRecipient(token, s.now().UTC())
	if err != nil {
		return "", &domain.Error{Code: domain.EINVALID, Message: "This confirmation link is not valid or has expired.", Err: err}
	}
	return email, nil
}

func (s *ActionService) checkURL(ctx context.Context, a *action.Action) error {
	if a.Type != action.TypeWebhook {
		return nil
	}
	if err := s.guard.CheckURL(ctx, a.URL); err != nil {
		return &domain.Error{Code: domain.EINVALID, Message: "The action has invalid fields.",
			Fields: map[string]string{"config.url": domain.ErrorMessage(err)}, Err: err}
	}
	return nil
}

// askRecipients mails a confirmation link to each new recipient of an email action.
func (s *ActionService) askRecipients(ctx context.Context, a *action.Action, now time.Time) error {
	if a.Type != action.TypeEmail || len(a.Recipients) == 0 {
		return nil
	}
	toAsk, owner, err := s.recipients.RequestRecipients(ctx, a.UserID, a.Recipients, now, RecipientAsksPerDay)
	if err != nil {
		return fmt.Errorf("request recipients: %w", err)
	}
	for _, email := range toAsk {
		s.mailer.SendRecipientConfirmation(ctx, RecipientConfirmation{UserID: a.UserID, To: email, Owner: owner,
			Token: s.tokens.SignRecipient(a.UserID, email, now.Add(RecipientTokenLifetime)), ExpiresIn: RecipientTokenLifetime})
	}
	return nil
}

// TestResult is what a test delivery to one recipient did.
type TestResult struct {
	Recipient string
	Attempt   Attempt
	Skipped   string // why nothing was sent to the recipient, "" when it was
}

// Test sends a sample notification through the user's action, synchronously, and reports
// each recipient's outcome. Addresses that have not confirmed are skipped, not mailed.
func (s *ActionService) Test(ctx context.Context, userID, id string) ([]TestResult, error) {
	a, err := s.store.GetAction(ctx, userID, id)
	if err != nil {
		return nil, err
	}
	sender := s.senders[string(a.Type)]
	if sender == nil {
		return nil, domain.Errorf(domain.EUNAVAILABLE, "Test deliveries are not available on this server.")
	}
	now := s.now().UTC()
	sampleID, err := uuid.NewV7()
	if err != nil {
		return nil, fmt.Errorf("new sample id: %w", err)
	}
	price := 79.99
	sample := Delivery{NotificationID: sampleID.String(), Kind: KindTest, Channel: string(a.Type), UserID: userID,
		Timezone: "UTC", MonitorID: sampleID.String(), MonitorName: "Test of " + a.Name,
		Prompt: "Tell me when the price drops below $80", From: "inactive", To: "active",
		Explanation: "This is a test notification: nothing changed. It shows what a state change sent through this action looks like.",
		Facts:       []monitor.Fact{monitor.NumberFact("price", price, "USD", now)}, ChangedAt: now, Attempt: 1, ActionID: a.ID}
	var results []TestResult
	switch a.Type {
	case action.TypeWebhook:
		if sample.Secret, err = s.secrets.WebhookSecret(ctx, userID, id); err != nil {
			return nil, fmt.Errorf("webhook secret: %w", err)
		}
		if err := s.guard.CheckURL(ctx, a.URL); err != nil {
			return []TestResult{{Recipient: a.URL, Attempt: Attempt{Result: ResultFailed, Detail: "The URL " + domain.ErrorMessage(err) + "."}}}, nil
		}
		sample.Recipient = a.URL
		results = append(results, TestResult{Recipient: a.URL, Attempt: sender.Send(ctx, sample)})
	case action.TypeEmail:
		allowed, err := s.recipients.AllowedRecipients(ctx, userID, a.Recipients)
		if err != nil {
			return nil, fmt.Errorf("allowed recipients: %w", err)
		}
		ok := map[string]bool{}
		for _, e := range allowed {
			ok[e] = true
		}
		for _, to := range a.Recipients {
			if !ok[to] {
				results = append(results, TestResult{Recipient: to, Skipped: "The address has not confirmed that it wants these emails yet."})
				continue
			}
			d := sample
			d.Recipient = to
			results = append(results, TestResult{Recipient: to, Attempt: sender.Send(ctx, d)})
		}
	}
	return results, nil
}

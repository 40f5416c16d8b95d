package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/action"
	"github.com/vigilhq/vigil/domain/app"
)

// Sealer encrypts secrets at rest; *keyring.Keyring satisfies it. context binds a sealed
// value to the row holding it.
type Sealer interface {
	Seal(plaintext, context []byte) (string, error)
	Open(sealed string, context []byte) ([]byte, error)
}

// ActionStore stores users' actions, their webhook secrets sealed by a Sealer.
type ActionStore struct {
	pool *pgxpool.Pool
	box  Sealer
}

var (
	_ app.ActionStore    = (*ActionStore)(nil)
	_ app.RecipientStore = (*ActionStore)(nil)
	_ app.WebhookSecrets = (*ActionStore)(nil)
)

// NewActionStore returns an ActionStore sealing secrets with box.
func NewActionStore(pool *pgxpool.Pool, box Sealer) *ActionStore {
	return &ActionStore{pool: pool, box: box}
}

// actionConfig is the config column: recipients for email, URL and sealed secret for
// webhooks.
type actionConfig struct {
	To     []string `json:"to,omitempty"`
	URL    string   `json:"url,omitempty"`
	Secret string   `json:"secret,omitempty"` // sealed
}

func actionNotFound() error { return domain.Errorf(domain.ENOTFOUND, "Action not found.") }

const actionColumns = `id, user_id, name, type, config, enabled, coalesce(disabled_reason, ''), is_default, created_at, updated_at`

func scanAction(row pgx.Row) (*action.Action, error) {
	var a action.Action
	var raw []byte
	if err := row.Scan(&a.ID, &a.UserID, &a.Name, &a.Type, &raw, &a.Enabled, &a.DisabledReason, &a.IsDefault, &a.CreatedAt, &a.UpdatedAt); err != nil {
		return nil, err
	}
	var cfg actionConfig
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, fmt.Errorf("decode config of action %s: %w", a.ID, err)
	}
	a.Recipients, a.URL = cfg.To, cfg.URL
	return &a, nil
}

// config returns a's config column, sealing its secret when it has one in clear.
func (s *ActionStore) config(a *action.Action) ([]byte, error) {
	cfg := actionConfig{To: a.Recipients, URL: a.URL} // #nosec G117 -- its Secret is sealed below before it is marshalled
	if a.Secret != "" {
		sealed, err := s.box.Seal([]byte(a.Secret), []byte(a.ID))
		if err != nil {
			return nil, fmt.Errorf("seal secret of action %s: %w", a.ID, err)
		}
		cfg.Secret = sealed
	}
	return json.Marshal(cfg) // #nosec G117 -- the secret in it is sealed
}

// CountActions implements app.ActionStore.
func (s *ActionStore) CountActions(ctx context.Context, userID string) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM actions WHERE user_id = $1`, userID).Scan(&n); err != nil {
		return 0, fmt.Errorf("count actions: %w", translate(err))
	}
	return n, nil
}

// CreateAction implements app.ActionStore.
func (s *ActionStore) CreateAction(ctx context.Context, a *action.Action) error {
	cfg, err := s.config(a)
	if err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, `
		INSERT INTO actions (id, user_id, name, type, config, enabled, is_default, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, false, $7, $7)`, a.ID, a.UserID, a.Name, a.Type, cfg, a.Enabled, a.CreatedAt)
	if err != nil {
		return fmt.Errorf("insert action: %w", translate(err))
	}
	return nil
}

// GetAction implements app.ActionStore.
func (s *ActionStore) GetAction(ctx context.Context, userID, id string) (*action.Action, error) {
	if !validID(id) {
		return nil, actionNotFound()
	}
	a, err := scanAction(s.pool.QueryRow(ctx, `SELECT `+actionColumns+` FROM actions WHERE id = $1 AND user_id = $2`, id, userID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, actionNotFound()
	}
	if err != nil {
		return nil, fmt.Errorf("get action %s: %w", id, translate(err))
	}
	return a, nil
}

// ListActions implements app.ActionStore.
func (s *ActionStore) ListActions(ctx context.Context, userID string) ([]*action.Action, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+actionColumns+` FROM actions WHERE user_id = $1 ORDER BY created_at, id`, userID)
	if err != nil {
		return nil, fmt.Errorf("list actions: %w", translate(err))
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*action.Action, error) { return scanAction(r) })
	if err != nil {
		return nil, fmt.Errorf("list actions: %w", translate(err))
	}
	return list, nil
}

// UpdateAction implements app.ActionStore. Without a new secret the sealed one is kept.
func (s *ActionStore) UpdateAction(ctx context.Context, a *action.Action, secretChanged bool) error {
	if !secretChanged {
		a = &action.Action{ID: a.ID, UserID: a.UserID, Name: a.Name, Type: a.Type, Recipients: a.Recipients, URL: a.URL,
			Enabled: a.Enabled, DisabledReason: a.DisabledReason, UpdatedAt: a.UpdatedAt}
	}
	cfg, err := s.config(a)
	if err != nil {
		return err
	}
	tag, err := s.pool.Exec(ctx, `
		UPDATE actions SET name = $3, enabled = $4, updated_at = $5, disabled_reason = NULLIF($8, ''),
		       config = CASE WHEN $6 OR NOT config ? 'secret' THEN $7::jsonb
		                     ELSE $7::jsonb || jsonb_build_object('secret', config->'secret') END
		WHERE id = $1 AND user_id = $2`, a.ID, a.UserID, a.Name, a.Enabled, a.UpdatedAt, secretChanged, cfg, a.DisabledReason)
	if err != nil {
		return fmt.Errorf("update action: %w", translate(err))
	}
	if tag.RowsAffected() == 0 {
		return actionNotFound()
	}
	return nil
}

// DeleteAction implements app.ActionStore. Its triggers go with it (foreign key cascade);
// its past notifications stay, with the action set null.
func (s *ActionStore) DeleteAction(ctx context.Context, userID, id string) error {
	if !validID(id) {
		return actionNotFound()
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM actions WHERE id = $1 AND user_id = $2`, id, userID)
	if err != nil {
		return fmt.Errorf("delete action: %w", translate(err))
	}
	if tag.RowsAffected() == 0 {
		return actionNotFound()
	}
	return nil
}

// RequestRecipients implements app.RecipientStore. The user's row is locked so two
// requests at once cannot both pass the daily limit.
func (s *ActionStore) RequestRecipients(ctx context.Context, userID string, emails []string, now time.Time, max int) ([]string, app.Owner, error) {
	var toAsk []string
	var owner app.Owner
	err := InTx(ctx, s.pool, func(tx pgx.Tx) error {
		toAsk = toAsk[:0]
		if err := tx.QueryRow(ctx, `SELECT name, email FROM users WHERE id = $1 FOR UPDATE`, userID).Scan(&owner.Name, &owner.Email); err != nil {
			return fmt.Errorf("lock user: %w", translate(err))
		}
		var asked int
		if err := tx.QueryRow(ctx, `
			SELECT count(*) FROM email_recipients WHERE user_id = $1 AND requested_at > $2`,
			userID, now.Add(-24*time.Hour)).Scan(&asked); err != nil {
			return fmt.Errorf("count recipient requests: %w", translate(err))
		}
		for _, email := range emails {
			if email == strings.ToLower(owner.Email) || asked >= max {
				continue
			}
			// Inserted, or re-asked when the last request is over a day old and unanswered.
			tag, err := tx.Exec(ctx, `
				INSERT INTO email_recipients (user_id, email, requested_at, created_at) VALUES ($1, $2, $3, $3)
				ON CONFLICT (user_id, email) DO UPDATE SET requested_at = EXCLUDED.requested_at
				WHERE email_recipients.confirmed_at IS NULL AND email_recipients.requested_at <= $4`,
				userID, email, now, now.Add(-24*time.Hour))
			if err != nil {
				return fmt.Errorf("request recipient: %w", translate(err))
			}
			if tag.RowsAffected() > 0 {
				toAsk = append(toAsk, email)
				asked++
			}
		}
		return nil
	})
	return toAsk, owner, err
}

// ConfirmRecipient implements app.RecipientStore.
func (s *ActionStore) ConfirmRecipient(ctx context.Context, userID, email string, now time.Time) error {
	if !validID(userID) {
		return domain.Errorf(domain.ENOTFOUND, "This confirmation link is no longer valid.")
	}
	tag, err := s.pool.Exec(ctx, `
		UPDATE email_recipients SET confirmed_at = coalesce(confirmed_at, $3) WHERE user_id = $1 AND email = lower($2)`,
		userID, email, now)
	if err != nil {
		return fmt.Errorf("confirm recipient: %w", translate(err))
	}
	if tag.RowsAffected() == 0 {
		return domain.Errorf(domain.ENOTFOUND, "This confirmation link is no longer valid.")
	}
	return nil
}

// AllowedRecipients implements app.RecipientStore.
func (s *ActionStore) AllowedRecipients(ctx context.Context, userID string, emails []string) ([]string, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT e FROM unnest($2::text[]) AS e
		WHERE e = (SELECT lower(email) FROM users WHERE id = $1)
		   OR EXISTS (SELECT 1 FROM email_recipients r WHERE r.user_id = $1 AND r.email = e AND r.confirmed_at IS NOT NULL)`,
		userID, emails)
	if err != nil {
		return nil, fmt.Errorf("allowed recipients: %w", translate(err))
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("allowed recipients: %w", translate(err))
	}
	return out, nil
}

// WebhookSecret implements app.WebhookSecrets.
func (s *ActionStore) WebhookSecret(ctx context.Context, userID, id string) (string, error) {
	if !validID(id) {
		return "", actionNotFound()
	}
	var sealed string
	err := s.pool.QueryRow(ctx, `SELECT coalesce(config->>'secret', '') FROM actions WHERE id = $1 AND user_id = $2 AND type = 'webhook'`,
		id, userID).Scan(&sealed)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", actionNotFound()
	}
	if err != nil {
		return "", fmt.Errorf("webhook secret: %w", translate(err))
	}
	secret, err := s.box.Open(sealed, []byte(id))
	if err != nil {
		return "", fmt.Errorf("open the secret of action %s: %w", id, err)
	}
	return string(secret), nil
}

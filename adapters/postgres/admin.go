package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/account"
)

var (
	_ account.AllowlistAdmin = (*AllowlistStore)(nil)
	_ account.AuditSearcher  = (*AuditStore)(nil)
)

const allowlistColumns = `id, pattern, kind, coalesce(added_by::text, ''), created_at`

func scanAllowlistEntry(row pgx.Row) (*account.AllowlistEntry, error) {
	var e account.AllowlistEntry
	if err := row.Scan(&e.ID, &e.Pattern, &e.Kind, &e.AddedBy, &e.CreatedAt); err != nil {
		return nil, err
	}
	return &e, nil
}

// ListAllowlist implements account.AllowlistAdmin.
func (s *AllowlistStore) ListAllowlist(ctx context.Context) ([]account.AllowlistEntry, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+allowlistColumns+` FROM beta_allowlist ORDER BY pattern`)
	if err != nil {
		return nil, fmt.Errorf("list allowlist: %w", translate(err))
	}
	entries, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (account.AllowlistEntry, error) {
		e, err := scanAllowlistEntry(r)
		if err != nil {
			return account.AllowlistEntry{}, err
		}
		return *e, nil
	})
	if err != nil {
		return nil, fmt.Errorf("list allowlist: %w", translate(err))
	}
	return entries, nil
}

// AddAllowlistEntry implements account.AllowlistAdmin; the unique index on pattern turns a
// duplicate into ECONFLICT.
func (s *AllowlistStore) AddAllowlistEntry(ctx context.Context, e *account.AllowlistEntry) error {
	_, err := s.pool.Exec(ctx, `
		INSERT INTO beta_allowlist (id, pattern, kind, added_by, created_at)
		VALUES ($1, $2, $3, NULLIF($4, '')::uuid, $5)`, e.ID, e.Pattern, e.Kind, e.AddedBy, e.CreatedAt)
	if err != nil {
		return fmt.Errorf("insert allowlist entry %s: %w", e.Pattern, translate(err))
	}
	return nil
}

// RemoveAllowlistEntry implements account.AllowlistAdmin.
func (s *AllowlistStore) RemoveAllowlistEntry(ctx context.Context, id string) (*account.AllowlistEntry, error) {
	e, err := scanAllowlistEntry(s.pool.QueryRow(ctx, `DELETE FROM beta_allowlist WHERE id = $1 RETURNING `+allowlistColumns, id))
	if err != nil {
		return nil, fmt.Errorf("delete allowlist entry %s: %w", id, translate(err))
	}
	return e, nil
}

// ListAudit implements account.AuditSearcher with keyset pagination on (created_at, id),
// newest first, over every actor; it uses the index on created_at.
func (s *AuditStore) ListAudit(ctx context.Context, f account.AuditFilter) (account.AuditPage, error) {
	var (
		afterAt *time.Time
		afterID *string
	)
	if f.Cursor != "" {
		at, id, err := decodeCursor(f.Cursor)
		if err != nil {
			return account.AuditPage{}, &domain.Error{Code: domain.EINVALID, Message: "The cursor is not valid.",
				Fields: map[string]string{"cursor": "is not a cursor this API returned"}, Err: err}
		}
		afterAt, afterID = &at, &id
	}
	rows, err := s.pool.Query(ctx, `
		SELECT id, coalesce(actor_user_id::text, ''), action, coalesce(target_type, ''), coalesce(target_id, ''),
		       coalesce(host(ip), ''), coalesce(user_agent, ''), outcome, metadata, created_at
		FROM audit_log
		WHERE ($1 = '' OR action = $1) AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3::uuid))
		ORDER BY created_at DESC, id DESC
		LIMIT $4`, f.Action, afterAt, afterID, f.Limit+1)
	if err != nil {
		return account.AuditPage{}, fmt.Errorf("list audit events: %w", translate(err))
	}
	events, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (account.AuditEvent, error) {
		var e account.AuditEvent
		var meta []byte
		if err := r.Scan(&e.ID, &e.ActorID, &e.Action, &e.TargetType, &e.TargetID, &e.IP, &e.UserAgent, &e.Outcome,
			&meta, &e.CreatedAt); err != nil {
			return e, err
		}
		if err := json.Unmarshal(meta, &e.Metadata); err != nil {
			return e, fmt.Errorf("decode audit metadata: %w", err)
		}
		return e, nil
	})
	if err != nil {
		return account.AuditPage{}, fmt.Errorf("list audit events: %w", translate(err))
	}
	page := account.AuditPage{Events: events}
	if len(events) > f.Limit {
		page.Events = events[:f.Limit]
		last := page.Events[f.Limit-1]
		page.NextCursor = encodeCursor(last.CreatedAt, last.ID)
	}
	return page, nil
}

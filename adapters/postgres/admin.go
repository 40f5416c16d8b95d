package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

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
	return s.page(ctx, "($1 = '' OR action = $1)", f.Action, f.Limit, f.Cursor)
}

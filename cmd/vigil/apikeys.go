package main

import (
	"fmt"

	"github.com/vigilhq/vigil/adapters/postgres"
	"github.com/vigilhq/vigil/domain/account"
)

// apiKeys wires the API key use cases for the API role: the management routes
// under /api/me/api-keys and the resolver of "Bearer vgl_…" credentials.
func (m *Main) apiKeys() (*account.APIKeyService, error) {
	svc, err := account.NewAPIKeyService(account.APIKeyDeps{
		Keys:  postgres.NewAPIKeyStore(m.pool),
		Users: postgres.NewAccountStore(m.pool, "vigil/"+m.name),
		Audit: postgres.NewAuditStore(m.pool),
		Clock: account.ClockFunc(m.now),
	})
	if err != nil {
		return nil, fmt.Errorf("api keys: %w", err)
	}
	return svc, nil
}

// admin wires the administrators' use cases: the beta allowlist and every
// user's audit log under /api/admin.
func (m *Main) admin() (*account.AdminService, error) {
	audit := postgres.NewAuditStore(m.pool)
	svc, err := account.NewAdminService(account.AdminDeps{
		Users:     postgres.NewAccountStore(m.pool, "vigil/"+m.name),
		Allowlist: postgres.NewAllowlistStore(m.pool),
		Audit:     audit,
		Search:    audit,
		Clock:     account.ClockFunc(m.now),
	})
	if err != nil {
		return nil, fmt.Errorf("admin: %w", err)
	}
	return svc, nil
}

package postgres

import (
	"context"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/tern/v2/migrate"

	"github.com/vigilhq/vigil/migrations"
)

// VersionTable is where tern records the schema version.
const VersionTable = "schema_version"

// Migrator applies Vigil's embedded migrations.
type Migrator struct {
	m *migrate.Migrator
}

// NewMigrator loads the embedded migrations for conn.
func NewMigrator(ctx context.Context, conn *pgx.Conn) (*Migrator, error) {
	m, err := migrate.NewMigrator(ctx, conn, VersionTable)
	if err != nil {
		return nil, fmt.Errorf("create migrator: %w", err)
	}
	if err := m.LoadMigrations(migrations.FS); err != nil {
		return nil, fmt.Errorf("load migrations: %w", err)
	}
	return &Migrator{m: m}, nil
}

// Latest is the version of the newest embedded migration.
func (m *Migrator) Latest() int32 { return int32(len(m.m.Migrations)) } // #nosec G115 -- a few dozen embedded files

// Current returns the version the database is at.
func (m *Migrator) Current(ctx context.Context) (int32, error) {
	v, err := m.m.GetCurrentVersion(ctx)
	if err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

// Up migrates to the newest version.
func (m *Migrator) Up(ctx context.Context) error { return m.To(ctx, m.Latest()) }

// Down rolls back n migrations (never below zero).
func (m *Migrator) Down(ctx context.Context, n int) error {
	cur, err := m.Current(ctx)
	if err != nil {
		return err
	}
	if n >= int(cur) {
		return m.To(ctx, 0)
	}
	return m.To(ctx, cur-int32(n)) // #nosec G115 -- n is below cur, an int32
}

// To migrates up or down to version.
func (m *Migrator) To(ctx context.Context, version int32) error {
	if version < 0 || version > m.Latest() {
		return fmt.Errorf("version %d does not exist: versions run from 0 to %d", version, m.Latest())
	}
	if err := m.m.MigrateTo(ctx, version); err != nil {
		return fmt.Errorf("migrate to %d: %w", version, err)
	}
	return nil
}

// Status describes every migration and whether it is applied.
func (m *Migrator) Status(ctx context.Context) ([]MigrationStatus, error) {
	cur, err := m.Current(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]MigrationStatus, 0, len(m.m.Migrations))
	for _, mig := range m.m.Migrations {
		out = append(out, MigrationStatus{Version: mig.Sequence, Name: mig.Name, Applied: mig.Sequence <= cur})
	}
	return out, nil
}

// MigrationStatus is one row of `vigil migrate status`.
type MigrationStatus struct {
	Version int32
	Name    string
	Applied bool
}

// String renders the status row.
func (s MigrationStatus) String() string {
	mark := "pending"
	if s.Applied {
		mark = "applied"
	}
	return strconv.Itoa(int(s.Version)) + "  " + mark + "  " + s.Name
}

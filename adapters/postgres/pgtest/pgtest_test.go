package pgtest_test

import (
	"context"
	"testing"

	"github.com/vigilhq/vigil/adapters/postgres/pgtest"
)

func TestNewGivesMigratedIsolatedDatabases(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b := pgtest.New(t), pgtest.New(t)
	if _, err := a.Exec(ctx, "INSERT INTO users (email) VALUES ('ann@example.com')"); err != nil {
		t.Fatalf("insert into a: %v", err)
	}
	var n int
	if err := b.QueryRow(ctx, "SELECT count(*) FROM users").Scan(&n); err != nil {
		t.Fatalf("count in b: %v", err)
	}
	if n != 0 {
		t.Fatalf("database b sees %d users written to a", n)
	}
}

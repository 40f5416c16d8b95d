package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/vigilhq/vigil/adapters/postgres"
	"github.com/vigilhq/vigil/config"
)

const migrateUsage = "usage: vigil migrate up | down [N] | to VERSION | status"

// runMigrate implements `vigil migrate`.
func runMigrate(ctx context.Context, cfg config.Config, args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New(migrateUsage)
	}
	conn, err := pgx.Connect(ctx, cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("connect to postgres: %w", err)
	}
	defer conn.Close(context.Background())
	m, err := postgres.NewMigrator(ctx, conn)
	if err != nil {
		return err
	}
	number := func(i int, def int) (int, error) {
		if len(args) <= i {
			return def, nil
		}
		n, err := strconv.Atoi(args[i])
		if err != nil || n < 0 || n > math.MaxInt32 {
			return 0, fmt.Errorf("%q is not a migration count or version; %s", args[i], migrateUsage)
		}
		return n, nil
	}
	switch args[0] {
	case "up":
		err = m.Up(ctx)
	case "down":
		var n int
		if n, err = number(1, 1); err == nil {
			err = m.Down(ctx, n)
		}
	case "to":
		if len(args) < 2 {
			return fmt.Errorf("missing VERSION; %s", migrateUsage)
		}
		var v int
		if v, err = number(1, 0); err == nil {
			err = m.To(ctx, int32(v)) // #nosec G115 -- number keeps it within 0..MaxInt32
		}
	case "status":
		rows, err := m.Status(ctx)
		if err != nil {
			return err
		}
		for _, r := range rows {
			fmt.Fprintln(out, r)
		}
		return nil
	default:
		return fmt.Errorf("unknown migrate command %q; %s", args[0], migrateUsage)
	}
	if err != nil {
		return err
	}
	cur, err := m.Current(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "schema at version %d of %d\n", cur, m.Latest())
	return nil
}

package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/vigilhq/vigil/adapters/postgres"
	"github.com/vigilhq/vigil/config"
)

// runKeys implements `vigil keys rotate [-dry-run]`: every webhook secret not sealed by the
// first key of VIGIL_DATA_KEYS is sealed again by it, so an old key can then be removed.
// It prints a line per batch, then the report as JSON; it fails when a secret could not be
// opened by any configured key, since removing a key would then lose it.
func runKeys(ctx context.Context, cfg config.Config, args []string, out, errOut io.Writer) error {
	if len(args) == 0 || args[0] != "rotate" {
		return fmt.Errorf("usage: vigil keys rotate [-dry-run]")
	}
	fs := flag.NewFlagSet("keys rotate", flag.ContinueOnError)
	fs.SetOutput(out)
	dry := fs.Bool("dry-run", false, "count what would be sealed again; change nothing")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	box, err := NewMain(cfg, "keys", nil, errOut).dataKeys()
	if err != nil {
		return err
	}
	pool, err := postgres.Open(ctx, postgres.PoolConfig{URL: cfg.DatabaseURL, AppName: "vigil-keys", MaxConns: 2, StatementTimeout: time.Minute})
	if err != nil {
		return err
	}
	defer pool.Close()
	verb := "sealed again"
	if *dry {
		verb = "to seal again"
	}
	fmt.Fprintf(out, "keys: sealing webhook secrets with key %q\n", box.SealKeyID())
	rep, err := postgres.ResealWebhookSecrets(ctx, pool, box, postgres.ResealBatchDefault, *dry, func(r postgres.ResealReport) {
		fmt.Fprintf(out, "keys: %d checked, %d %s, %d already current, %d unreadable\n", r.Checked, r.Resealed, verb, r.Current, len(r.Unreadable))
	})
	if err != nil {
		return err
	}
	b, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, string(b))
	if len(rep.Unreadable) > 0 {
		return fmt.Errorf("%d webhook secrets are sealed by keys not in VIGIL_DATA_KEYS (actions %v); keep those keys", len(rep.Unreadable), rep.Unreadable)
	}
	return nil
}

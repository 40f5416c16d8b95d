package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/vigilhq/vigil/adapters/ai/fallback"
	"github.com/vigilhq/vigil/adapters/password"
	"github.com/vigilhq/vigil/adapters/postgres"
	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/domain/app"
	"github.com/vigilhq/vigil/domain/monitor"
)

// Seed data.
const (
	seedAdminEmail = "admin@vigil.localhost"
	seedActionName = "Email me"
)

type demoMonitor struct {
	name, prompt, path, condition string
}

var demoMonitors = []demoMonitor{
	{"Demo: price drops below $80", "Tell me when the price drops below $80", "/demo/price.json", "state_change"},
	{"Demo: price rises above $95", "Alert me when the price rises above $95", "/demo/price.json", "becomes_active"},
	{"Demo: page price under $75", "Tell me when the gadget price is under $75", "/demo/page.html", "state_change"},
}

// runSeed implements `vigil seed`: the admin user, an email action, three demo monitors on
// the demo source and their triggers. Running it again creates nothing new.
func runSeed(ctx context.Context, cfg config.Config, out, _ io.Writer) error {
	pool, err := postgres.Open(ctx, postgres.PoolConfig{URL: cfg.DatabaseURL, AppName: "vigil-seed", MaxConns: 2})
	if err != nil {
		return err
	}
	defer pool.Close()
	store := postgres.NewSeedStore(pool)

	// The API's own hasher and cost, so the admin's hash has the same form as everyone's
	// (pre-hashed, never truncated at bcrypt's 72 bytes).
	hasher, err := password.New(cfg.BcryptCost)
	if err != nil {
		return fmt.Errorf("BCRYPT_COST: %w", err)
	}
	adminPassword := randomPassword()
	hash, err := hasher.Hash(adminPassword)
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	adminID, created, err := store.EnsureUser(ctx, seedAdminEmail, "Vigil Admin", "admin", hash)
	if err != nil {
		return err
	}
	if created {
		fmt.Fprintf(out, "created admin user %s with password %s (shown once; it is stored hashed)\n", seedAdminEmail, adminPassword)
	} else {
		fmt.Fprintf(out, "admin user %s exists\n", seedAdminEmail)
	}
	if err := store.EnsureAllowlisted(ctx, seedAdminEmail, adminID); err != nil {
		return err
	}
	actionID, err := store.EnsureEmailAction(ctx, adminID, seedActionName)
	if err != nil {
		return err
	}
	monitors := app.NewMonitors(postgres.NewMonitorStore(pool, "vigil/seed"), fallback.New(time.Now), time.Now, time.Minute)
	base := strings.TrimRight(cfg.PublicBaseURL, "/")
	for _, d := range demoMonitors {
		id, err := store.FindMonitorIDByName(ctx, adminID, d.name)
		if err != nil {
			return err
		}
		if id == "" {
			m, err := monitors.Create(ctx, monitor.Draft{UserID: adminID, Name: d.name, Prompt: d.prompt,
				SourceURL: base + d.path, Interval: time.Minute})
			if err != nil {
				return fmt.Errorf("create demo monitor %q: %w", d.name, err)
			}
			id = m.ID
			fmt.Fprintf(out, "created monitor %q (%s): condition %s on %s\n", d.name, id, m.Spec.Condition, m.SourceURL)
		} else {
			fmt.Fprintf(out, "monitor %q exists (%s)\n", d.name, id)
		}
		if err := store.EnsureTrigger(ctx, id, actionID, d.condition, "every_time"); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "demo monitors email %s on each state change; watch them in Mailpit\n", seedAdminEmail)
	return nil
}

func randomPassword() string {
	b := make([]byte, 15)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/rs/zerolog"

	"github.com/vigilhq/vigil/adapters/archive"
	"github.com/vigilhq/vigil/adapters/postgres"
	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/domain/app"
)

// retentionJob names the daily run in maintenance_runs.
const retentionJob = "retention"

// newRetention wires retention from the configuration.
func newRetention(cfg config.Config, store app.RetentionStore, now func() time.Time) (*app.Retention, error) {
	var arch app.Archiver
	if cfg.ArchiveDir != "" {
		dir, err := archive.New(cfg.ArchiveDir, now)
		if err != nil {
			return nil, fmt.Errorf("VIGIL_ARCHIVE_DIR: %w", err)
		}
		arch = dir
	}
	return app.NewRetention(store, arch, app.RetentionConfig{Facts: cfg.FactsRetention, Evaluations: cfg.EvaluationsRetention,
		Notifications: cfg.NotificationsRetention}, now), nil
}

// runRetention implements `vigil retention run [-dry-run]`: it prints each step, then the
// report as JSON.
func runRetention(ctx context.Context, cfg config.Config, args []string, out io.Writer) error {
	if len(args) == 0 || args[0] != "run" {
		return fmt.Errorf("usage: vigil retention run [-dry-run]")
	}
	fs := flag.NewFlagSet("retention run", flag.ContinueOnError)
	fs.SetOutput(out)
	dry := fs.Bool("dry-run", false, "print the plan; change nothing")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	pool, err := postgres.Open(ctx, postgres.PoolConfig{URL: cfg.DatabaseURL, AppName: "vigil-retention", MaxConns: 2, StatementTimeout: 10 * time.Minute})
	if err != nil {
		return err
	}
	defer pool.Close()
	r, err := newRetention(cfg, postgres.NewRetentionStore(pool), time.Now)
	if err != nil {
		return err
	}
	rep, err := r.Run(ctx, *dry, func(line string) { fmt.Fprintln(out, "retention:", line) })
	if err != nil {
		return err
	}
	return printReport(out, rep)
}

func printReport(out io.Writer, rep app.RetentionReport) error {
	if rep.DryRun {
		fmt.Fprintf(out, "retention (dry run): would drop %d facts partitions (facts before %s), delete %d evaluations (before %s) and %d notifications (before %s)\n",
			len(rep.Drop), rep.FactsBefore.Format(time.DateOnly), rep.EvaluationsDue, rep.EvaluationsBefore.Format(time.DateOnly),
			rep.NotesDue, rep.NotificationsBefore.Format(time.DateOnly))
		for _, p := range rep.Drop {
			fmt.Fprintf(out, "  drop %s (%s to %s)\n", p.Name, p.From.Format(time.DateOnly), p.To.Format(time.DateOnly))
		}
		return nil
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(out, string(b))
	return err
}

// dailyRetention runs retention once a day across scheduler replicas: the replica that
// claims the day's row in maintenance_runs runs it.
func dailyRetention(ctx context.Context, r *app.Retention, store *postgres.RetentionStore, now func() time.Time, log zerolog.Logger) {
	day := now().UTC()
	claimed, err := store.ClaimDailyRun(ctx, retentionJob, day)
	if err != nil || !claimed {
		if err != nil && ctx.Err() == nil {
			log.Warn().Err(err).Msg("retention: could not claim today's run; trying again later")
		}
		return
	}
	rep, err := r.Run(ctx, false, func(line string) { log.Info().Str("job", retentionJob).Msg(line) })
	if err != nil {
		log.Error().Err(err).Msg("retention run failed; it runs again tomorrow, or with vigil retention run")
	}
	if err := store.FinishDailyRun(context.WithoutCancel(ctx), retentionJob, day, rep); err != nil {
		log.Warn().Err(err).Msg("retention: report not stored")
	}
}

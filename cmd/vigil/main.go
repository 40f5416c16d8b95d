// Command vigil is Vigil's one binary. Each process role is a subcommand; `vigil all` runs
// every role in one process with an embedded NATS server. This package is the composition
// root: the only place that wires adapters into use cases.
package main

import (
	_ "time/tzdata" // zone data for images without it (distroless)

	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/vigilhq/vigil/config"
)

const usage = `Usage: vigil <command> [arguments]

Roles (run until interrupted):
  all         every role in one process, with an embedded NATS server unless NATS_URL is set
  api         the HTTP API (health, readiness, demo source) and an outbox relay
  scheduler   claims due monitors and publishes EvaluationDue
  evaluator   fetches sources and evaluates monitors
  recorder    stores evaluations and facts, moves monitor state
  matcher     fires triggers into notifications
  mailer      sends notification emails over SMTP
  nats        only the embedded NATS server (for roles run as separate processes)

Tasks:
  migrate up | down [N] | to VERSION | status
  seed        create the admin user and demo monitors (idempotent)
  retention run [-dry-run]
              drop facts partitions past FACTS_RETENTION (archived first to VIGIL_ARCHIVE_DIR
              when set), delete old evaluations and notifications in batches, create the
              coming partitions; the scheduler also runs it daily
  keys rotate [-dry-run]
              seal every webhook secret again with the first key of VIGIL_DATA_KEYS, so an
              older key can be removed from it
  ops export DIR
              write the Prometheus alert rules and the Grafana dashboard for these metrics
  dlq list | show SEQ | replay | purge [--stream S] [--since D] [--id SEQ] [--all]
              the dead letter stream: what consumers gave up on, replayed or purged
  bench api   load 10,000 monitors and 1,000,000 evaluations into a scratch database and
              measure the monitor API's latency percentiles
  bench notify  1,000 then 5,000 simultaneous state changes, each with an email and a
              webhook trigger: state change to SMTP accept and to webhook 2xx, p50/p95/p99

Settings come from environment variables; see .env.example and README.md.
`

func main() {
	zerolog.TimeFieldFormat = time.RFC3339Nano // the library's one process-wide setting
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// run executes one command and returns the process exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stdout, usage)
		return 0
	}
	if args[0] == "ops" { // needs no settings: it writes files this binary holds
		if err := runOps(args[1:], stdout); err != nil {
			fmt.Fprintf(stderr, "vigil ops: %v\n", err)
			return 1
		}
		return 0
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "migrate":
		err = runMigrate(ctx, cfg, rest, stdout)
	case "seed":
		err = runSeed(ctx, cfg, stdout, stderr)
	case "bench":
		err = runBench(ctx, cfg, rest, stdout)
	case "dlq":
		err = runDLQ(ctx, cfg, rest, stdout)
	case "retention":
		err = runRetention(ctx, cfg, rest, stdout)
	case "keys":
		err = runKeys(ctx, cfg, rest, stdout, stderr)
	default:
		roles, ok := rolesOf[cmd]
		if !ok {
			fmt.Fprintf(stderr, "vigil: unknown command %q\n\n%s", cmd, usage)
			return 2
		}
		m := NewMain(cfg, cmd, roles, stderr)
		err = m.Run(ctx)
		if cerr := m.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintf(stderr, "vigil %s: %v\n", cmd, err)
		return 1
	}
	return 0
}

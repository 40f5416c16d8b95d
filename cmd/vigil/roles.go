package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"

	"github.com/vigilhq/vigil/adapters/ai/fallback"
	"github.com/vigilhq/vigil/adapters/httpapi"
	"github.com/vigilhq/vigil/adapters/metrics"
	"github.com/vigilhq/vigil/adapters/postgres"
	"github.com/vigilhq/vigil/adapters/render"
	"github.com/vigilhq/vigil/adapters/smtp"
	"github.com/vigilhq/vigil/adapters/source"
	"github.com/vigilhq/vigil/adapters/tokens"
	"github.com/vigilhq/vigil/adapters/tracing"
	"github.com/vigilhq/vigil/adapters/webhook"
	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/domain/ai"
	"github.com/vigilhq/vigil/domain/app"
	"github.com/vigilhq/vigil/domain/event"
	"github.com/vigilhq/vigil/emailtpl"
	"github.com/vigilhq/vigil/streams"
)

// Role names.
const (
	roleAPI       = "api"
	roleScheduler = "scheduler"
	roleEvaluator = "evaluator"
	roleRecorder  = "recorder"
	roleMatcher   = "matcher"
	roleMailer    = "mailer"
	roleNATS      = "nats"
)

var rolesOf = map[string][]string{
	"all":         {roleNATS, roleAPI, roleScheduler, roleEvaluator, roleRecorder, roleMatcher, roleMailer},
	roleAPI:       {roleAPI},
	roleScheduler: {roleScheduler},
	roleEvaluator: {roleEvaluator},
	roleRecorder:  {roleRecorder},
	roleMatcher:   {roleMatcher},
	roleMailer:    {roleMailer},
	roleNATS:      {roleNATS},
}

// Main runs a set of roles in one process. Run blocks until ctx is cancelled or a role
// fails; Close releases what Run opened.
type Main struct {
	cfg   config.Config
	name  string
	roles []string
	log   zerolog.Logger
	now   func() time.Time

	ns      *server.Server
	nc      *nats.Conn
	js      jetstream.JetStream
	pool    *pgxpool.Pool
	metrics *metrics.Registry
	tracing *tracing.Provider // built by Run; nil: spans carry the trace on, unrecorded
	ai      ai.Provider       // built on first use, shared by the roles of this process
	fetcher *source.Fetcher   // likewise: one cache of fetched sources
	// pages renders sources in one browser shared by the roles of this process; built on
	// first use, nil when no Chromium is installed (rendering is then refused).
	pages      *render.Renderer
	pagesBuilt bool

	resetMail     *smtp.ResetMailer     // built by resetMailer, drained on shutdown
	recipientMail *smtp.RecipientMailer // built by actionService, drained on shutdown
	welcomeMail   *smtp.WelcomeMailer   // built by welcomeMailer, drained on shutdown
	renderer      *emailtpl.Renderer    // built by mailParts
	smtpSender    *smtp.Sender          // built by mailParts

	// HTTPAddr is the API's listening address once Run has started it (useful with port 0).
	HTTPAddr chan string
	// natsLazySync measures the embedded server without an fsync per write (benches only).
	natsLazySync bool
}

// NewMain returns a Main for the roles, logging to w.
func NewMain(cfg config.Config, name string, roles []string, w io.Writer) *Main {
	return &Main{cfg: cfg, name: name, roles: roles, log: newLogger(cfg, w).With().Str("role", name).Logger(),
		now: time.Now, metrics: metrics.New(), HTTPAddr: make(chan string, 1)}
}

func newLogger(cfg config.Config, w io.Writer) zerolog.Logger {
	level, err := zerolog.ParseLevel(cfg.LogLevel)
	if err != nil {
		level = zerolog.InfoLevel
	}
	if cfg.LogFormat == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: "15:04:05.000"}
	}
	return zerolog.New(w).Level(level).With().Timestamp().Logger()
}

func (m *Main) has(role string) bool {
	for _, r := range m.roles {
		if r == role {
			return true
		}
	}
	return false
}

// Run starts the roles and blocks until ctx is cancelled (returns nil) or one fails.
func (m *Main) Run(ctx context.Context) error {
	if err := m.connectNATS(); err != nil {
		return err
	}
	if len(m.roles) == 1 && m.roles[0] == roleNATS {
		m.log.Info().Str("url", m.ns.ClientURL()).Msg("embedded NATS running; stop with Ctrl-C")
		<-ctx.Done()
		return nil
	}
	tp, err := tracing.New(ctx, tracing.Config{Endpoint: m.cfg.TracesEndpoint, Instance: m.name, Roles: m.roles})
	if err != nil {
		return err
	}
	m.tracing = tp
	defer func() {
		// The spans still buffered go out on the way down, within a bound.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := tp.Shutdown(sctx); err != nil {
			m.log.Warn().Err(err).Msg("spans not sent on shutdown")
		}
	}()
	topoCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = streams.EnsureTopology(topoCtx, m.js, streams.TopologyConfig{Replicas: m.cfg.StreamReplicas, MaxAge: m.cfg.StreamMaxAge})
	cancel()
	if err != nil {
		return fmt.Errorf("declare streams: %w", err)
	}
	pool, err := postgres.Open(ctx, postgres.PoolConfig{
		URL: m.cfg.DatabaseURL, AppName: "vigil-" + m.name,
		MaxConns: m.cfg.DatabaseMaxConns, MinConns: m.cfg.DatabaseMinConns, StatementTimeout: m.cfg.StatementTimeout,
	})
	if err != nil {
		return err
	}
	m.pool = pool
	m.metrics.WatchPool(pool)
	m.metrics.WatchPipeline(postgres.NewProbe(pool), backlogProbe{m.js})

	ctx, cancelAll := context.WithCancel(ctx)
	defer cancelAll()
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	start := func(name string, fn func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(ctx); err != nil && !errors.Is(err, context.Canceled) {
				errOnce.Do(func() { firstErr = fmt.Errorf("%s: %w", name, err); cancelAll() })
			}
		}()
	}
	pub := streams.NewPublisher(m.js, "vigil/"+m.name)
	if m.has(roleAPI) || m.has(roleScheduler) || m.has(roleRecorder) || m.has(roleMatcher) || m.has(roleMailer) {
		relay := streams.NewRelay(pool, pub, streams.RelayConfig{Logger: m.log, Workers: m.cfg.RelayWorkers, Tracer: m.tracer("streams")})
		start("outbox relay", relay.Run)
	}
	if m.has(roleScheduler) || m.has(roleEvaluator) || m.has(roleRecorder) || m.has(roleMatcher) || m.has(roleMailer) {
		start("dead letter watch", func(ctx context.Context) error { return streams.WatchMaxDeliveries(ctx, m.nc, m.js, m.log) })
	}
	for _, role := range m.roles {
		var fn func(context.Context) error
		switch role {
		case roleAPI:
			fn, err = m.api()
		case roleScheduler:
			fn = m.scheduler(pub)
		case roleEvaluator:
			fn, err = m.evaluator(pub)
		case roleRecorder:
			fn, err = m.recorder()
		case roleMatcher:
			fn = m.matcher()
		case roleMailer:
			fn, err = m.mailer()
		default:
			continue
		}
		if err != nil {
			cancelAll()
			wg.Wait()
			return fmt.Errorf("start %s: %w", role, err)
		}
		start(role, fn)
	}
	if m.cfg.MetricsAddr != "" {
		fn, err := m.metricsServer()
		if err != nil {
			cancelAll()
			wg.Wait()
			return err
		}
		start("metrics", fn)
	}
	m.log.Info().Strs("roles", m.roles).Msg("vigil started")
	<-ctx.Done()
	wg.Wait()
	m.log.Info().Msg("vigil stopped")
	return firstErr
}

// connectNATS starts the embedded server when the roles include it and NATS_URL is empty,
// then connects. Separate roles with NATS_URL empty expect `vigil nats` on NATS_EMBEDDED_ADDR.
func (m *Main) connectNATS() error {
	url := m.cfg.NATSURL
	if url == "" {
		if m.has(roleNATS) {
			host, port, err := splitHostPort(m.cfg.NATSEmbeddedAddr)
			if err != nil {
				return err
			}
			ns, err := streams.StartEmbedded(streams.EmbeddedConfig{Host: host, Port: port,
				StoreDir: filepath.Join(m.cfg.DataDir, "nats"), Logger: m.log, LazySync: m.natsLazySync})
			if err != nil {
				return err
			}
			m.ns = ns
			url = ns.ClientURL()
		} else {
			url = "nats://" + m.cfg.NATSEmbeddedAddr
		}
	}
	if len(m.roles) == 1 && m.roles[0] == roleNATS {
		return nil
	}
	nc, js, err := streams.Connect(url, "vigil-"+m.name)
	if err != nil {
		return fmt.Errorf("%w (with NATS_URL empty, run `vigil nats` or `vigil all` first)", err)
	}
	m.nc, m.js = nc, js
	m.log.Info().Str("nats", url).Msg("connected to NATS")
	return nil
}

func splitHostPort(addr string) (string, int, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("NATS_EMBEDDED_ADDR %q: %w", addr, err)
	}
	var port int
	if _, err := fmt.Sscan(portStr, &port); err != nil {
		return "", 0, fmt.Errorf("NATS_EMBEDDED_ADDR %q: bad port", addr)
	}
	return host, port, nil
}

// Close releases NATS, Postgres and the embedded server, in that order.
func (m *Main) Close() error {
	if m.nc != nil {
		if err := m.nc.Drain(); err != nil {
			m.nc.Close()
		}
	}
	if m.pool != nil {
		m.pool.Close()
	}
	if m.smtpSender != nil {
		m.smtpSender.Close()
	}
	if m.pages != nil {
		m.pages.Close()
	}
	if m.ns != nil {
		m.ns.Shutdown()
		m.ns.WaitForShutdown()
	}
	return nil
}

type natsChecker struct{ nc *nats.Conn }

func (c natsChecker) Check(context.Context) error {
	if c.nc == nil || !c.nc.IsConnected() {
		return errors.New("nats not connected")
	}
	return nil
}

func (m *Main) api() (func(context.Context) error, error) {
	signer, err := m.unsubscribeTokens()
	if err != nil {
		return nil, err
	}
	accounts, accessTokens, err := m.accounts() // accounts
	if err != nil {
		return nil, err
	}
	googleSignIn, err := m.googleSignIn() // google sign-in
	if err != nil {
		return nil, err
	}
	monitors, err := m.monitorService() // monitors
	if err != nil {
		return nil, err
	}
	apiKeys, err := m.apiKeys() // api keys
	if err != nil {
		return nil, err
	}
	admin, err := m.admin() // admin
	if err != nil {
		return nil, err
	}
	actions, err := m.actionService()
	if err != nil {
		return nil, err
	}
	keys, err := m.dataKeys()
	if err != nil {
		return nil, err
	}
	pageTokens, err := m.linkTokens()
	if err != nil {
		return nil, err
	}
	emailSource, err := m.emailEventSource()
	if err != nil {
		return nil, err
	}
	suppressions := postgres.NewSuppressionStore(m.pool)
	notifications := app.NewNotificationService(postgres.NewNotificationStore(m.pool, keys, "vigil/"+m.name), m.now)
	limits := m.rateLimits() // rate limits
	var actionTestLimit echo.MiddlewareFunc
	if limits != nil {
		actionTestLimit = limits.PerCaller(limits.Rules.ActionTest, m.log)
	}
	pgCheck, err := postgres.NewChecker(m.pool)
	if err != nil {
		return nil, err
	}
	srv := httpapi.New(httpapi.Config{
		Logger:            m.log,
		Checks:            map[string]httpapi.Checker{"postgres": pgCheck, "nats": natsChecker{m.nc}},
		DemoSource:        m.cfg.DemoSource,
		Metrics:           m.metrics.Handler(),
		Observer:          m.metrics,
		Tracer:            m.tracer("httpapi"),
		HSTS:              m.cfg.HTTPSOnly(),
		CORSOrigins:       m.cfg.CORSOrigins,
		TranslateError:    postgres.Translate,
		TrustedProxies:    m.cfg.TrustedProxies,
		UnsubscribeTokens: signer,
		Unsubscriber:      postgres.NewUserStore(m.pool),
		Now:               m.now,
		Accounts:          accounts,     // accounts
		AccessTokens:      accessTokens, // accounts
		Monitors:          monitors,     // monitors
		Series:            app.NewSeriesService(postgres.NewMonitorStore(m.pool, "vigil/"+m.name), postgres.NewFactStore(m.pool), m.now),
		Stats:             app.NewStatsService(postgres.NewMonitorStore(m.pool, "vigil/"+m.name), postgres.NewStatsStore(m.pool), m.now),
		Overviews:         app.NewOverviewService(postgres.NewStatsStore(m.pool), admin, m.now),
		Backtests:         m.backtests(),
		Exports:           app.NewExportService(postgres.NewMonitorStore(m.pool, "vigil/"+m.name), postgres.NewExportStore(m.pool), m.now),
		PromptExamples:    fallback.Examples, // monitors
		Actions:           actions,
		ActionTestLimit:   actionTestLimit,
		Notifications:     notifications,
		EmailEventSource:  emailSource,
		PageTokens:        pageTokens,
		EmailVerifier:     accounts,
		EmailEvents:       app.NewEmailEvents(suppressions),
		Suppressions: app.NewSuppressionService(suppressions, postgres.NewAccountStore(m.pool, "vigil/"+m.name),
			postgres.NewAuditStore(m.pool), m.now),
		Triggers: app.NewTriggerService(postgres.NewTriggerStore(m.pool, "vigil/"+m.name), postgres.NewAuditStore(m.pool), m.now),

		// password reset, google sign-in
		PasswordResets: accounts,
		Google:         googleSignIn,
		GoogleAccounts: accounts,

		// api keys, admin, rate limits
		APIKeys:       httpapi.NewAPIKeyResolver(apiKeys),
		APIKeyManager: apiKeys,
		Admin:         admin,
		Limits:        limits,
	})
	ln, err := net.Listen("tcp", m.cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", m.cfg.HTTPAddr, err)
	}
	m.HTTPAddr <- ln.Addr().String()
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	return func(ctx context.Context) error {
		if limits != nil { // rate limits
			defer m.cleanRateLimits(ctx, limits.Limiter)()
		}
		// Forgot-password requests are handled off the request's path (see
		// account.Service.ForgotPassword); the worker stops before the mail is drained.
		resetCtx, stopResets := context.WithCancel(ctx)
		resetsDone := make(chan struct{})
		go func() {
			defer close(resetsDone)
			_ = accounts.RunResetWorker(resetCtx, func(err error) { m.log.Error().Err(err).Msg("handle forgot-password requests") })
		}()
		stopResetWorker := func() { stopResets(); <-resetsDone }
		errc := make(chan error, 1)
		go func() { errc <- hs.Serve(ln) }()
		m.log.Info().Str("addr", ln.Addr().String()).Msg("HTTP API listening")
		select {
		case err := <-errc:
			stopResetWorker()
			return err
		case <-ctx.Done():
		}
		shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := hs.Shutdown(shutCtx)
		stopResetWorker()
		m.waitResetMail(shutCtx) // password reset: after the server and the worker stopped
		return err
	}, nil
}

// consume runs a consumer handling one message at a time, concurrency at once.
func (m *Main) consume(stream, consumer string, concurrency int, h streams.Handler) func(context.Context) error {
	return func(ctx context.Context) error {
		return streams.Run(ctx, m.js, h, streams.RunConfig{Stream: stream, Consumer: consumer, Concurrency: concurrency,
			Logger: m.log.With().Str("consumer", consumer).Logger(), Observer: m.metrics, Tracer: m.tracer("streams")})
	}
}

// tracer returns the tracer of a part of Vigil, nil before Run built the provider.
func (m *Main) tracer(name string) trace.Tracer {
	if m.tracing == nil {
		return nil
	}
	return m.tracing.Tracer(name)
}

func (m *Main) scheduler(pub *streams.Publisher) func(context.Context) error {
	sched := app.NewScheduler(postgres.NewMonitorStore(m.pool, "vigil/"+m.name), pub, m.now,
		app.SchedulerConfig{Batch: m.cfg.SchedulerBatch, Tick: m.cfg.SchedulerTick, Jitter: m.cfg.SchedulerJitter})
	events := m.consume(streams.StreamMonitors, streams.ConsumerScheduler, m.cfg.SchedulerConcurrency,
		streams.Handle(func(ctx context.Context, msg streams.Decoded[event.MonitorChange]) error {
			if msg.Envelope.Type == event.TypeMonitorDeleted {
				return nil // its row is gone; nothing is due any more
			}
			return sched.MonitorChanged(ctx, msg.Data.MonitorID)
		}))
	digests := app.NewDigester(postgres.NewNotificationStore(m.pool, nil, "vigil/"+m.name), m.now)
	retentionStore := postgres.NewRetentionStore(m.pool)
	retention, err := newRetention(m.cfg, retentionStore, m.now)
	if err != nil {
		return func(context.Context) error { return err }
	}
	return func(ctx context.Context) error {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		errc := make(chan error, 1)
		go func() { errc <- events(ctx) }()
		go m.every(ctx, time.Hour, func(ctx context.Context) { dailyRetention(ctx, retention, retentionStore, m.now, m.log) })
		go m.every(ctx, digestEvery, func(ctx context.Context) {
			if n, err := digests.Tick(ctx); err != nil && ctx.Err() == nil {
				m.log.Warn().Err(err).Msg("daily digests; retrying next minute")
			} else if n > 0 {
				m.log.Info().Int("digests", n).Msg("daily digests made")
			}
		})
		wake := time.NewTimer(0)
		defer wake.Stop()
		for {
			select {
			case <-ctx.Done():
				return <-errc
			case err := <-errc:
				return err
			case <-wake.C:
			}
			n, err := sched.Tick(ctx)
			if err != nil {
				// A full tick, not Wait: what is due would fail again at once.
				m.log.Warn().Err(err).Msg("scheduler tick failed; retrying next tick")
				wake.Reset(m.cfg.SchedulerTick)
				continue
			}
			if n > 0 {
				m.log.Debug().Int("scheduled", n).Msg("scheduled due monitors")
			}
			wake.Reset(sched.Wait(ctx))
		}
	}
}

func (m *Main) evaluator(pub *streams.Publisher) (func(context.Context) error, error) {
	provider, err := m.aiProvider()
	if err != nil {
		return nil, err
	}
	renderer, err := m.pageRenderer()
	if err != nil {
		return nil, err
	}
	ev := app.NewEvaluator(postgres.NewMonitorStore(m.pool, "vigil/"+m.name), postgres.NewEvaluationStore(m.pool, "vigil/"+m.name),
		m.sourceFetcher(), provider, pub, m.now, app.EvaluatorConfig{Renderer: renderer,
			Exact: fallback.New(m.now)}) // the rules read a selector exactly: they check a suggested repair
	return m.consume(streams.StreamEvaluations, streams.ConsumerEvaluator, m.cfg.EvaluatorConcurrency,
		streams.Handle(func(ctx context.Context, msg streams.Decoded[event.EvaluationDue]) error {
			return ev.Evaluate(ctx, msg.Data, int(min(msg.NumDelivered, math.MaxInt32))) // #nosec G115 -- bounded just before
		})), nil
}

func (m *Main) recorder() (func(context.Context) error, error) {
	if _, err := postgres.EnsureFactPartitions(context.Background(), m.pool, 3); err != nil {
		return nil, err
	}
	rec := app.NewRecorder(postgres.NewEvaluationStore(m.pool, "vigil/"+m.name), postgres.NewMonitorStore(m.pool, "vigil/"+m.name), postgres.NewFactStore(m.pool),
		app.RecordLimits{MaxFailures: m.cfg.MaxFailures, MaxMisses: m.cfg.ExtractionMisses})
	h := streams.HandleBatch(func(ctx context.Context, ms []streams.Decoded[event.EvaluationCompleted]) error {
		evs := make([]event.EvaluationCompleted, len(ms))
		for i, msg := range ms {
			evs[i] = msg.Data
		}
		recs, err := rec.RecordBatch(ctx, evs)
		if err != nil {
			return err
		}
		for i, r := range recs {
			ev := evs[i]
			switch {
			case r.Missing:
				zerolog.Ctx(ctx).Debug().Str("monitor_id", ev.MonitorID).Msg("evaluation of a deleted monitor dropped")
			case !r.Duplicate:
				m.metrics.ObserveEvaluation(string(ev.Status), ev.FinishedAt.Sub(ev.StartedAt), time.Duration(ev.Usage.FetchMS)*time.Millisecond)
				if r.Outcome.Changed {
					m.metrics.ObserveStateChange(string(r.Outcome.From), string(r.Outcome.To))
				}
				zerolog.Ctx(ctx).Info().Str("monitor_id", ev.MonitorID).Str("evaluation_id", r.EvaluationID).
					Str("status", string(ev.Status)).Str("state", string(r.Outcome.To)).Bool("changed", r.Outcome.Changed).
					Msg("evaluation recorded")
			}
		}
		return nil
	})
	consume := m.consumeBatch(streams.StreamEvaluations, streams.ConsumerRecorder, m.cfg.RecorderConcurrency, m.cfg.RecorderBatch, false, h)
	return func(ctx context.Context) error {
		go func() { // keep monthly partitions ahead of time
			t := time.NewTicker(24 * time.Hour)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					if _, err := postgres.EnsureFactPartitions(ctx, m.pool, 3); err != nil {
						m.log.Warn().Err(err).Msg("create facts partitions")
					}
				}
			}
		}()
		return consume(ctx)
	}, nil
}

func (m *Main) matcher() func(context.Context) error {
	match := app.NewMatcher(postgres.NewTriggerStore(m.pool, "vigil/"+m.name), m.now)
	h := streams.HandleBatch(func(ctx context.Context, ms []streams.Decoded[event.StateChanged]) error {
		changes := make([]event.StateChanged, len(ms))
		for i, msg := range ms {
			changes[i] = msg.Data
		}
		matched, err := match.Match(ctx, changes)
		if err != nil {
			return err
		}
		for _, r := range matched {
			m.metrics.ObserveSuppressed(app.ChannelEmail, app.SuppressedUnconfirmed.Code, r.Suppressed)
			zerolog.Ctx(ctx).Info().Str("monitor_id", r.Change.MonitorID).Str("evaluation_id", r.Change.EvaluationID).
				Str("from", string(r.Change.From)).Str("to", string(r.Change.To)).Int("notifications", r.Notifications).Msg("state change matched")
		}
		return nil
	})
	return m.consumeBatch(streams.StreamStates, streams.ConsumerMatcher, m.cfg.MatcherConcurrency, m.cfg.MatcherBatch, false, h)
}

// consumeBatch runs a batch consumer with the given concurrency (batches at once) and batch size.
func (m *Main) consumeBatch(stream, consumer string, concurrency, size int, doubleAck bool, h streams.BatchHandler) func(context.Context) error {
	return func(ctx context.Context) error {
		return streams.RunBatch(ctx, m.js, h, streams.BatchConfig{Size: size, RunConfig: streams.RunConfig{
			Stream: stream, Consumer: consumer, Concurrency: concurrency, DoubleAck: doubleAck,
			Logger: m.log.With().Str("consumer", consumer).Logger(), Observer: m.metrics, Tracer: m.tracer("streams"),
		}})
	}
}

// mailerSweepEvery is how often the mailer role requests the notifications whose next
// attempt is due; mailerSweepBatch bounds one sweep. digestEvery is how often the
// scheduler looks for daily digests that are due.
const (
	mailerSweepEvery = 15 * time.Second
	mailerSweepBatch = 500
	digestEvery      = time.Minute
)

// every runs fn at once and then every period until ctx ends.
func (m *Main) every(ctx context.Context, period time.Duration, fn func(context.Context)) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		fn(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// mailer runs the delivery of notifications: one consumer per channel queue, each with its
// own senders, so a burst of emails to a slow relay does not hold webhooks back, and the
// sweep that requests the notifications due for another attempt.
func (m *Main) mailer() (func(context.Context) error, error) {
	senders, err := m.notificationSenders()
	if err != nil {
		return nil, err
	}
	mail, err := m.mailerService(senders, m.cfg.MailerConcurrency)
	if err != nil {
		return nil, err
	}
	hooks, err := m.mailerService(senders, m.cfg.WebhookConcurrency)
	if err != nil {
		return nil, err
	}
	consumers := []func(context.Context) error{
		m.deliveries(mail, streams.ConsumerMailer, m.cfg.MailerConcurrency),
		m.deliveries(hooks, streams.ConsumerWebhooks, m.cfg.WebhookConcurrency),
	}
	return func(ctx context.Context) error {
		// A short lease (tests) is swept more often, so a dead mailer's claim is not left
		// waiting long after it ended.
		go m.every(ctx, min(mailerSweepEvery, max(m.cfg.MailerLease/4, 100*time.Millisecond)), func(ctx context.Context) {
			if n, err := mail.RequestDue(ctx, mailerSweepBatch); err != nil && ctx.Err() == nil {
				m.log.Warn().Err(err).Msg("request due notifications; retrying next sweep")
			} else if n > 0 {
				m.log.Info().Int("notifications", n).Msg("requested notifications due for an attempt")
			}
		})
		g, ctx := errgroup.WithContext(ctx)
		for _, consume := range consumers {
			g.Go(func() error { return consume(ctx) })
		}
		return g.Wait()
	}, nil
}

// deliveries consumes one channel queue of notification requests with mail, which makes
// at most senders deliveries at once.
func (m *Main) deliveries(mail *app.Mailer, consumer string, senders int) func(context.Context) error {
	h := streams.HandleBatch(func(ctx context.Context, ms []streams.Decoded[event.NotificationRequested]) error {
		ids := make([]string, len(ms))
		for i, msg := range ms {
			ids[i] = msg.Data.NotificationID
		}
		reports, err := mail.DeliverBatch(ctx, ids)
		if err != nil {
			return err
		}
		for _, r := range reports {
			if r.Suppressed != nil {
				m.metrics.ObserveSuppressed(r.Channel, r.Suppressed.Code, 1)
				zerolog.Ctx(ctx).Info().Str("notification_id", r.NotificationID).Str("channel", r.Channel).
					Str("reason", r.Suppressed.Code).Msg("notification suppressed")
				continue
			}
			m.metrics.ObserveDelivery(r.Channel, r.Decision.Status)
			if r.Decision.Status == app.StatusSent && !r.ChangedAt.IsZero() {
				m.metrics.ObserveDelivered(r.Channel, r.FinishedAt.Sub(r.ChangedAt))
			}
			zerolog.Ctx(ctx).Info().Str("notification_id", r.NotificationID).Str("channel", r.Channel).
				Str("status", r.Decision.Status).Int("code", r.Attempt.Code).Str("error", r.Decision.Error).Msg("notification attempted")
		}
		return nil
	})
	// One batch more than the senders can take keeps a claim under way while the others send.
	batches := (senders+m.cfg.MailerBatch-1)/m.cfg.MailerBatch + 1
	return m.consumeBatch(streams.StreamNotifications, consumer, batches, m.cfg.MailerBatch, true, h)
}

// mailerService builds the delivery use case on the senders of every channel, with webhook
// secrets opened with the data keys, making at most concurrency deliveries at once.
func (m *Main) mailerService(senders map[string]app.NotificationSender, concurrency int) (*app.Mailer, error) {
	keys, err := m.dataKeys()
	if err != nil {
		return nil, err
	}
	return app.NewMailer(postgres.NewNotificationStore(m.pool, keys, "vigil/"+m.name), senders, m.now,
		app.MailerConfig{Senders: concurrency, Lease: m.cfg.MailerLease}), nil
}

// notificationSenders returns the sender of each channel: email through SMTP, webhooks over
// HTTP with the SSRF guard of sources.
func (m *Main) notificationSenders() (map[string]app.NotificationSender, error) {
	renderer, sender, err := m.mailParts()
	if err != nil {
		return nil, err
	}
	links, err := m.pageLinks()
	if err != nil {
		return nil, err
	}
	base := strings.TrimRight(m.cfg.PublicBaseURL, "/")
	return map[string]app.NotificationSender{
		app.ChannelEmail:   smtp.NewNotifier(renderer, sender, links),
		app.ChannelWebhook: webhook.New(webhook.Config{BaseURL: base, Guard: source.Config{AllowPrivate: m.cfg.AllowPrivateSources}}),
	}, nil
}

// unsubscribeTokens returns the signer of unsubscribe links, keyed by VIGIL_SECRET_KEY. In
// dev mode without one, a random key is generated once and kept in the data dir so links
// stay valid across restarts; prod refuses to start without a key (config).
func (m *Main) unsubscribeTokens() (*tokens.Unsubscribe, error) {
	secret := []byte(m.cfg.SecretKey)
	if len(secret) == 0 {
		b, err := devSecret(filepath.Join(m.cfg.DataDir, "secret.key"))
		if err != nil {
			return nil, err
		}
		secret = b
	}
	return tokens.NewUnsubscribe(secret)
}

// devSecret reads the dev key at path, creating it when missing. Creation is exclusive, so
// roles started together in separate processes agree on one key.
func devSecret(path string) ([]byte, error) {
	path = filepath.Clean(path) // a file under VIGIL_DATA_DIR, which the operator sets
	for attempt := 0; attempt < 50; attempt++ {
		b, err := os.ReadFile(path) // #nosec G304 G703 -- a file under VIGIL_DATA_DIR, which the operator sets
		if err == nil && len(b) >= 32 {
			return b, nil
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("read dev secret %s: %w", path, err)
		}
		if err == nil { // another process is writing it
			time.Sleep(20 * time.Millisecond)
			continue
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil { // #nosec G703 -- VIGIL_DATA_DIR, which the operator sets
			return nil, fmt.Errorf("create data dir: %w", err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600) // #nosec G304 G703 -- under VIGIL_DATA_DIR
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("create dev secret %s: %w", path, err)
		}
		key := make([]byte, 32)
		rand.Read(key)
		_, werr := f.Write(key)
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return nil, fmt.Errorf("write dev secret %s: %w", path, werr)
		}
		return key, nil
	}
	return nil, fmt.Errorf("dev secret %s: still incomplete after waiting", path)
}

// operatorMux is what METRICS_ADDR serves: /metrics for Prometheus and the Go profiler
// under /debug/pprof/ (CPU, heap, goroutines, mutexes), neither of which the API's port
// shows anyone but administrators.
func operatorMux(metrics http.Handler) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics)
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	return mux
}

// metricsServer serves operatorMux on METRICS_ADDR, a listener of its own that scrapers
// read without credentials; keep it off the public network.
func (m *Main) metricsServer() (func(context.Context) error, error) {
	ln, err := net.Listen("tcp", m.cfg.MetricsAddr)
	if err != nil {
		return nil, fmt.Errorf("listen on METRICS_ADDR %s: %w", m.cfg.MetricsAddr, err)
	}
	hs := &http.Server{Handler: operatorMux(m.metrics.Handler()), ReadHeaderTimeout: 10 * time.Second}
	return func(ctx context.Context) error {
		go func() { // #nosec G118 -- the shutdown runs after ctx ended, so it cannot use ctx
			<-ctx.Done()
			shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			hs.Shutdown(shutCtx) //nolint:errcheck // best effort on the way out
		}()
		if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}, nil
}

// monitorService builds the monitor API's use cases on the same AI chain as the evaluator.
func (m *Main) monitorService() (*app.MonitorService, error) {
	provider, err := m.aiProvider()
	if err != nil {
		return nil, err
	}
	renderer, err := m.pageRenderer()
	if err != nil {
		return nil, err
	}
	return app.NewMonitorService(postgres.NewMonitorStore(m.pool, "vigil/"+m.name), provider, m.sourceFetcher(), provider, m.now,
		app.MonitorConfig{MinInterval: m.cfg.MinInterval, Quota: m.cfg.MonitorQuota, Audit: postgres.NewAuditStore(m.pool),
			CheckSelector: fallback.CheckSelector, Renderer: renderer, Backtests: m.backtests(),
			Guard: source.NewGuard(source.Config{AllowPrivate: m.cfg.AllowPrivateSources})}), nil
}

// backtests replays monitors' stored facts with the rules: a backtest makes no AI call.
func (m *Main) backtests() *app.BacktestService {
	return app.NewBacktestService(postgres.NewMonitorStore(m.pool, "vigil/"+m.name), postgres.NewStatsStore(m.pool),
		app.NewTriggerService(postgres.NewTriggerStore(m.pool, "vigil/"+m.name), postgres.NewAuditStore(m.pool), m.now),
		fallback.New(m.now), fallback.New(m.now), m.now)
}

// backlogProbe gives the metrics the durable consumers' backlogs.
type backlogProbe struct{ js jetstream.JetStream }

func (p backlogProbe) ConsumerStates(ctx context.Context) ([]metrics.ConsumerState, error) {
	backlogs, err := streams.Backlogs(ctx, p.js)
	out := make([]metrics.ConsumerState, 0, len(backlogs))
	for _, b := range backlogs {
		out = append(out, metrics.ConsumerState{Stream: b.Stream, Consumer: b.Consumer, Pending: b.Pending,
			AckPending: b.AckPending, Redelivered: b.Redelivered})
	}
	return out, err
}

package streams_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/postgres"
	"github.com/vigilhq/vigil/adapters/postgres/pgtest"
	"github.com/vigilhq/vigil/domain/event"
	"github.com/vigilhq/vigil/streams"
)

// appendInTx writes evs to the outbox in one transaction, committed unless rollback.
func appendInTx(t *testing.T, pool *pgxpool.Pool, rollback bool, evs ...event.Event) {
	t.Helper()
	errRollback := errors.New("rollback")
	err := postgres.InTx(context.Background(), pool, func(tx pgx.Tx) error {
		if err := streams.AppendOutbox(context.Background(), tx, "vigil/api", evs...); err != nil {
			return err
		}
		if rollback {
			return errRollback
		}
		return nil
	})
	if rollback {
		require.ErrorIs(t, err, errRollback)
		return
	}
	require.NoError(t, err)
}

func unpublished(t *testing.T, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(context.Background(),
		"SELECT count(*) FROM outbox WHERE published_at IS NULL").Scan(&n))
	return n
}

// runRelay runs a relay until the test ends and checks it returns nil.
func runRelay(t *testing.T, r *streams.Relay) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(15 * time.Second):
			t.Error("relay did not stop")
		}
	})
}

func testLogger(t *testing.T) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)
}

func TestOutboxPublishesCommittedRowsOnly(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	b := setup(t, streams.TopologyConfig{})
	pool := pgtest.New(t)

	created := monitorCreated()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	changed := event.StateChanged{MonitorID: uuid.NewString(), EvaluationID: uuid.NewString(), From: "inactive", To: "active", At: at}
	notif := event.NotificationRequested{NotificationID: uuid.NewString(), MonitorID: changed.MonitorID, At: at}
	hook := event.NotificationRequested{NotificationID: uuid.NewString(), MonitorID: changed.MonitorID, At: at, Channel: event.ChannelWebhook}
	appendInTx(t, pool, false, created, changed, notif, hook, hook) // the same event twice in one call: once
	appendInTx(t, pool, false, created)                             // the same event again: skipped
	rolledBack := monitorCreated()
	appendInTx(t, pool, true, rolledBack)
	rows, err := pool.Query(ctx, `SELECT event_id FROM outbox ORDER BY id`)
	require.NoError(t, err)
	order, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Equal(t, []string{created.EventID(), changed.EventID(), notif.EventID(), hook.EventID()}, order,
		"rows keep the order they were appended in")

	relay := streams.NewRelay(pool, streams.NewPublisher(b.js, "vigil/relay"), streams.RelayConfig{Logger: testLogger(t)})
	n, err := relay.Flush(ctx)
	require.NoError(t, err)
	require.Equal(t, 4, n)
	require.Zero(t, unpublished(t, pool))
	n, err = relay.Flush(ctx)
	require.NoError(t, err)
	require.Zero(t, n)

	for _, tc := range []struct {
		stream, subject string
		ev              event.Event
	}{
		{streams.StreamMonitors, "vigil.monitors." + created.MonitorID + ".created", created},
		{streams.StreamStates, "vigil.states.changed." + changed.MonitorID, changed},
		{streams.StreamNotifications, "vigil.notifications.email." + notif.NotificationID, notif},
		{streams.StreamNotifications, "vigil.notifications.webhook." + hook.NotificationID, hook},
	} {
		want := uint64(1)
		if tc.stream == streams.StreamNotifications {
			want = 2
		}
		require.Equal(t, want, streamMsgs(t, b.js, tc.stream), tc.stream)
		s, err := b.js.Stream(ctx, tc.stream)
		require.NoError(t, err)
		msg, err := s.GetLastMsgForSubject(ctx, tc.subject)
		require.NoError(t, err, tc.subject)
		env, err := streams.DecodeEnvelope(msg.Header, msg.Data)
		require.NoError(t, err)
		require.Equal(t, tc.ev.EventID(), env.ID)
		require.Equal(t, tc.ev.EventType(), env.Type)
		require.Equal(t, "vigil/api", env.Source, "the source is the role that wrote the row")
		require.Equal(t, tc.ev.AggregateID(), env.Subject)
		require.Equal(t, tc.ev.EventID(), msg.Header.Get("Nats-Msg-Id"))
		require.Equal(t, "1.0", msg.Header.Get("ce-specversion"))
		require.Equal(t, "application/json", msg.Header.Get("content-type"))
	}
}

func TestRelayWakesOnNotify(t *testing.T) {
	t.Parallel()
	b := setup(t, streams.TopologyConfig{})
	pool := pgtest.New(t)
	// A poll interval far beyond the test shows the NOTIFY woke the relay.
	runRelay(t, streams.NewRelay(pool, streams.NewPublisher(b.js, "vigil/relay"), streams.RelayConfig{
		PollInterval: time.Hour, Logger: testLogger(t),
	}))
	time.Sleep(200 * time.Millisecond) // let it LISTEN; rows before that are found at start anyway
	appendInTx(t, pool, false, monitorCreated(), monitorCreated())
	require.Eventually(t, func() bool {
		return streamMsgs(t, b.js, streams.StreamMonitors) == 2 && unpublished(t, pool) == 0
	}, 10*time.Second, 20*time.Millisecond)
}

func TestRelaySurvivesNATSRestart(t *testing.T) {
	t.Parallel()
	pool := pgtest.New(t)
	dir := t.TempDir()
	srv, err := streams.StartEmbedded(streams.EmbeddedConfig{Port: -1, StoreDir: dir, Logger: zerolog.Nop()})
	require.NoError(t, err)
	port := srv.Addr().(*net.TCPAddr).Port
	nc, js, err := streams.Connect(srv.ClientURL(), t.Name())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	require.NoError(t, streams.EnsureTopology(context.Background(), js, streams.TopologyConfig{}))

	runRelay(t, streams.NewRelay(pool, streams.NewPublisher(js, "vigil/relay"), streams.RelayConfig{
		PollInterval: 100 * time.Millisecond, PublishTimeout: 500 * time.Millisecond, Logger: testLogger(t),
	}))

	srv.Shutdown()
	srv.WaitForShutdown()
	const rows = 5
	for range rows {
		appendInTx(t, pool, false, monitorCreated())
	}
	// The relay tries while NATS is down and records the failed attempts.
	require.Eventually(t, func() bool {
		var attempts int
		require.NoError(t, pool.QueryRow(context.Background(), "SELECT coalesce(max(attempts), 0) FROM outbox").Scan(&attempts))
		return attempts > 0
	}, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, rows, unpublished(t, pool))

	srv, err = streams.StartEmbedded(streams.EmbeddedConfig{Port: port, StoreDir: dir, Logger: zerolog.Nop()})
	require.NoError(t, err)
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	require.Eventually(t, func() bool { return unpublished(t, pool) == 0 }, 20*time.Second, 50*time.Millisecond)
	require.Equal(t, uint64(rows), streamMsgs(t, js, streams.StreamMonitors))
}

func TestTwoRelaysPublishEachRowOnce(t *testing.T) {
	t.Parallel()
	b := setup(t, streams.TopologyConfig{})
	pool := pgtest.New(t)

	// A core subscription sees every publish, duplicates JetStream would drop included.
	var (
		mu   sync.Mutex
		seen = map[string]int{}
	)
	sub, err := b.nc.Subscribe("vigil.monitors.>", func(m *nats.Msg) {
		mu.Lock()
		seen[m.Header.Get("Nats-Msg-Id")]++
		mu.Unlock()
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Unsubscribe() })

	for i := range 2 {
		nc, js, err := streams.Connect(b.url, "relay")
		require.NoError(t, err)
		t.Cleanup(nc.Close)
		// The second publishes three batches at once.
		runRelay(t, streams.NewRelay(pool, streams.NewPublisher(js, "vigil/relay"), streams.RelayConfig{
			BatchSize: 7 + i, Workers: 1 + 2*i, PollInterval: 50 * time.Millisecond, Logger: testLogger(t),
		}))
	}

	const txs, perTx = 40, 5
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range txs / 4 {
				evs := make([]event.Event, perTx)
				for j := range evs {
					evs[j] = monitorCreated()
				}
				// require must not stop the test from another goroutine; assert only reports.
				err := postgres.InTx(context.Background(), pool, func(tx pgx.Tx) error {
					return streams.AppendOutbox(context.Background(), tx, "vigil/api", evs...)
				})
				assert.NoError(t, err)
			}
		})
	}
	wg.Wait()

	require.Eventually(t, func() bool { return unpublished(t, pool) == 0 }, 20*time.Second, 20*time.Millisecond)
	require.Equal(t, uint64(txs*perTx), streamMsgs(t, b.js, streams.StreamMonitors))
	require.NoError(t, b.nc.Flush())
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == txs*perTx
	}, 5*time.Second, 20*time.Millisecond)
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	for id, n := range seen {
		require.Equal(t, 1, n, "event %s published %d times", id, n)
	}
}

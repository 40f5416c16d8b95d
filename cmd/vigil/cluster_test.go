package main_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/postgres"
	"github.com/vigilhq/vigil/adapters/postgres/pgtest"
	"github.com/vigilhq/vigil/adapters/smtp/smtptest"
	"github.com/vigilhq/vigil/streams"
	"github.com/vigilhq/vigil/streams/natstest"
)

// TestRolesOnAThreeNodeCluster runs the pipeline's roles, one process each, against a
// three-node JetStream cluster with R3 streams while monitors flip state every few
// seconds. One node is killed in the middle of the run and brought back, then another.
// The roles reconnect on their own, nothing is lost (every state change is notified, every
// message is consumed), and nothing is done twice (no slot scheduled twice, no email sent
// twice).
func TestRolesOnAThreeNodeCluster(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bin := buildBinary(t)
	cluster := natstest.StartCluster(t, 3)
	dbURL := pgtest.NewURL(t)
	mail := smtptest.Start(t)
	src, price := priceSource(t)

	env := append(os.Environ(),
		"VIGIL_ENV=dev", "DATABASE_URL="+dbURL, "NATS_URL="+cluster.URLs(), "NATS_STREAM_REPLICAS=3", "SMTP_URL="+mail.URL(),
		"MAIL_FROM=Vigil <vigil@example.com>", "PUBLIC_BASE_URL=http://vigil.example", "LOG_FORMAT=json",
		"SCHEDULER_TICK=100ms", "MONITOR_MIN_INTERVAL=1s", "VIGIL_DATA_DIR="+t.TempDir(), "VIGIL_ALLOW_PRIVATE_SOURCES=true",
		// Every monitor polls one local host each second, faster than the polite default allows.
		"SOURCE_HOST_DELAY=0",
	)
	roles := newRoles(t, bin, env)
	var procs []*exec.Cmd
	for _, role := range []string{"scheduler", "evaluator", "recorder", "matcher", "mailer"} {
		procs = append(procs, roles.start(role))
	}
	pool, err := postgres.Open(ctx, postgres.PoolConfig{URL: dbURL, AppName: "vigil-cluster-test"})
	require.NoError(t, err)
	t.Cleanup(pool.Close)

	const monitors = 5
	userID := uuid.Must(uuid.NewV7()).String()
	for _, stmt := range []string{
		`INSERT INTO users (id, email, name, email_verified_at) VALUES ($1, 'ann@example.com', 'Ann', now())`,
		`INSERT INTO actions (user_id, name, type, config, is_default)
		 SELECT id, 'Email me', 'email', jsonb_build_object('to', jsonb_build_array(email)), true FROM users WHERE id = $1`,
		`INSERT INTO monitors (user_id, name, prompt, kind, spec, source_url, interval_seconds, status, state, next_run_at)
		 SELECT $1, 'Widget ' || i, 'Tell me when the price drops below $80', 'current_state',
		        '{"kind":"current_state","summary":"price below 80","facts":[{"name":"price","type":"number","unit":"USD"}],"condition":"price < 80","needs_source":true,"confidence":1}',
		        $2 || '/item/' || i, 1, 'active', 'unknown', now()
		 FROM generate_series(1, ` + fmt.Sprint(monitors) + `) AS i`,
		`INSERT INTO triggers (monitor_id, action_id, condition)
		 SELECT m.id, a.id, 'state_change' FROM monitors m JOIN actions a ON a.user_id = m.user_id WHERE m.user_id = $1`,
	} {
		args := []any{userID}
		if strings.Contains(stmt, "$2") {
			args = append(args, src.URL)
		}
		_, err := pool.Exec(ctx, stmt, args...)
		require.NoError(t, err)
	}

	// The price flips every 1.5 s while nodes fail and come back.
	stop := make(chan struct{})
	flipped := make(chan struct{})
	go func() {
		defer close(flipped)
		t := time.NewTicker(1500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				price.Store(150 - price.Load()) // 100 <-> 50
			}
		}
	}()
	changes := func() int {
		return countRows(t, pool, `SELECT count(*) FROM evaluations WHERE changed AND previous_state <> 'unknown'`)
	}
	waitProgress := func(what string) {
		t.Helper()
		before := changes()
		require.Eventually(t, func() bool { return changes() >= before+monitors }, 60*time.Second, 100*time.Millisecond,
			"no state changes %s", what)
	}
	waitProgress("before any node failed")
	cluster.Kill(0)
	waitProgress("with node 0 down")
	cluster.Restart(0)
	waitProgress("after node 0 came back")
	cluster.Kill(1)
	waitProgress("with node 1 down")
	cluster.Restart(1)
	back := time.Now()
	waitProgress("after node 1 came back")
	close(stop)
	<-flipped

	// Let the pipeline drain: every change notified and sent, every message consumed.
	_, js := natstest.Connect(t, cluster.URLs())
	require.Eventually(t, func() bool {
		if countRows(t, pool, `SELECT count(*) FROM outbox WHERE published_at IS NULL`) > 0 ||
			countRows(t, pool, `SELECT count(*) FROM notifications WHERE status <> 'sent'`) > 0 {
			return false
		}
		for _, c := range [][2]string{{streams.StreamEvaluations, streams.ConsumerEvaluator}, {streams.StreamEvaluations, streams.ConsumerRecorder},
			{streams.StreamStates, streams.ConsumerMatcher}, {streams.StreamNotifications, streams.ConsumerMailer},
			{streams.StreamNotifications, streams.ConsumerWebhooks}} {
			cons, err := js.Consumer(ctx, c[0], c[1])
			if err != nil {
				return false
			}
			info, err := cons.Info(ctx)
			if err != nil || info.NumPending > 0 || info.NumAckPending > 0 {
				return false
			}
		}
		return true
	}, 90*time.Second, 250*time.Millisecond, "the pipeline did not drain")
	// The streams are replicated three times.
	for _, name := range []string{streams.StreamEvaluations, streams.StreamStates, streams.StreamNotifications} {
		s, err := js.Stream(ctx, name)
		require.NoError(t, err)
		info, err := s.Info(ctx)
		require.NoError(t, err)
		require.Equal(t, 3, info.Config.Replicas, name)
	}
	time.Sleep(2 * time.Second) // a duplicate would arrive by now

	// Nothing lost: every change between active and inactive was notified once, and sent.
	notified := countRows(t, pool, `SELECT count(*) FROM notifications`)
	require.Equal(t, changes(), notified, "one notification per state change")
	require.Equal(t, notified, countRows(t, pool, `SELECT count(*) FROM notifications WHERE status = 'sent'`))
	// Nothing twice: one email per notification, no slot scheduled twice.
	ids := map[string]int{}
	for _, m := range mail.Messages() {
		ids[m.Header.Get("Message-ID")]++
	}
	require.Len(t, ids, notified, "one email per notification")
	for id, n := range ids {
		require.Equal(t, 1, n, "email %s sent %d times", id, n)
	}
	require.Zero(t, countRows(t, pool, `
		SELECT count(*) FROM (SELECT monitor_id, scheduled_for - lag(scheduled_for) OVER (PARTITION BY monitor_id ORDER BY scheduled_for) AS gap,
		                             row_number() OVER (PARTITION BY monitor_id ORDER BY scheduled_for) AS n
		                      FROM evaluations) g WHERE n > 2 AND gap < interval '900 milliseconds'`), "a slot scheduled twice")
	// The roles reconnected on their own: every monitor goes on being evaluated after the
	// second node came back, and every process is still running.
	require.Eventually(t, func() bool {
		return countRows(t, pool, `SELECT count(DISTINCT monitor_id) FROM evaluations WHERE created_at > $1`, back.Add(time.Second)) == monitors
	}, 30*time.Second, 100*time.Millisecond)
	for _, p := range procs {
		require.Nil(t, p.ProcessState, "%s exited", p.Args[1])
	}
	t.Logf("%d state changes notified across two node failures; %d evaluations", notified, countRows(t, pool, `SELECT count(*) FROM evaluations`))
}

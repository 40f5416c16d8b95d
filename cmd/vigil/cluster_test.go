package main_test

import (
	"context"
	"os/exec"
	"testing"
	"time"

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

	env := pipelineEnv(t, dbURL, cluster.URLs(), mail.URL(), "NATS_STREAM_REPLICAS=3")
	roles := newRoles(t, bin, env)
	var procs []*exec.Cmd
	for _, role := range []string{"scheduler", "evaluator", "recorder", "matcher", "mailer"} {
		procs = append(procs, roles.start(role))
	}
	pool, err := postgres.Open(ctx, postgres.PoolConfig{URL: dbURL, AppName: "vigil-cluster-test"})
	require.NoError(t, err)
	t.Cleanup(pool.Close)

	const monitors = 5
	seedFlippingMonitors(t, pool, src.URL, monitors)

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
	changes := func() int { return stateChanges(t, pool) }
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
	requireDrained(t, js, pool, 90*time.Second)
	// The streams are replicated three times.
	for _, name := range []string{streams.StreamEvaluations, streams.StreamStates, streams.StreamNotifications} {
		s, err := js.Stream(ctx, name)
		require.NoError(t, err)
		info, err := s.Info(ctx)
		require.NoError(t, err)
		require.Equal(t, 3, info.Config.Replicas, name)
	}
	// Nothing lost, nothing twice: every change between active and inactive notified once
	// and sent, one email each, no slot scheduled twice, every due slot evaluated.
	notified := requireEachChangeNotifiedOnce(t, pool, mail)
	requireEveryDueEvaluated(t, js, pool)
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

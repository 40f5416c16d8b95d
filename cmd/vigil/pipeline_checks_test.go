package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/smtp/smtptest"
	"github.com/vigilhq/vigil/domain/event"
	"github.com/vigilhq/vigil/streams"
)

// seedFlippingMonitors gives a new user n monitors of the price at src, each evaluated every
// second, with an email on every state change; it returns the user's id.
func seedFlippingMonitors(t *testing.T, pool *pgxpool.Pool, src string, n int) string {
	t.Helper()
	userID := uuid.Must(uuid.NewV7()).String()
	for _, stmt := range []string{
		`INSERT INTO users (id, email, name, email_verified_at) VALUES ($1, 'ann@example.com', 'Ann', now())`,
		`INSERT INTO actions (user_id, name, type, config, is_default)
		 SELECT id, 'Email me', 'email', jsonb_build_object('to', jsonb_build_array(email)), true FROM users WHERE id = $1`,
		`INSERT INTO monitors (user_id, name, prompt, kind, spec, source_url, interval_seconds, status, state, next_run_at)
		 SELECT $1, 'Widget ' || i, 'Tell me when the price drops below $80', 'current_state',
		        '{"kind":"current_state","summary":"price below 80","facts":[{"name":"price","type":"number","unit":"USD"}],"condition":"price < 80","needs_source":true,"confidence":1}',
		        $2 || '/item/' || i, 1, 'active', 'unknown', now()
		 FROM generate_series(1, ` + fmt.Sprint(n) + `) AS i`,
		`INSERT INTO triggers (monitor_id, action_id, condition)
		 SELECT m.id, a.id, 'state_change' FROM monitors m JOIN actions a ON a.user_id = m.user_id WHERE m.user_id = $1`,
	} {
		args := []any{userID}
		if strings.Contains(stmt, "$2") {
			args = append(args, src)
		}
		_, err := pool.Exec(context.Background(), stmt, args...)
		require.NoError(t, err)
	}
	return userID
}

// stateChanges counts the changes between active and inactive, the ones state_change
// triggers notify.
func stateChanges(t *testing.T, pool *pgxpool.Pool) int {
	return countRows(t, pool, `SELECT count(*) FROM evaluations WHERE changed AND previous_state <> 'unknown'`)
}

// requireDrained waits until the pipeline has nothing left to do: the outbox published,
// every notification sent, every consumer's messages acknowledged.
func requireDrained(t *testing.T, js jetstream.JetStream, pool *pgxpool.Pool, timeout time.Duration) {
	t.Helper()
	ctx := context.Background()
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
	}, timeout, 250*time.Millisecond, "the pipeline did not drain")
}

// requireEachChangeNotifiedOnce checks that every change between active and inactive made
// one notification, sent, and one email, and that no slot was scheduled twice. It returns
// the number of changes.
func requireEachChangeNotifiedOnce(t *testing.T, pool *pgxpool.Pool, mail *smtptest.Server) int {
	t.Helper()
	time.Sleep(2 * time.Second) // a duplicate would arrive by now
	notified := countRows(t, pool, `SELECT count(*) FROM notifications`)
	require.Equal(t, stateChanges(t, pool), notified, "one notification per state change")
	require.Equal(t, notified, countRows(t, pool, `SELECT count(*) FROM notifications WHERE status = 'sent'`))
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
	return notified
}

// requireEveryDueEvaluated reads every EvaluationDue the EVALUATIONS stream holds and
// checks each slot was evaluated and recorded, and that no claimed slot is left unpublished:
// no evaluation was lost. It returns the number of slots.
func requireEveryDueEvaluated(t *testing.T, js jetstream.JetStream, pool *pgxpool.Pool) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.Zero(t, countRows(t, pool, `SELECT count(*) FROM monitor_unpublished_slots`), "claimed slots never published")
	slots := map[string]bool{}
	readStream(t, js, streams.StreamEvaluations, []string{"vigil.evaluations.due.>"}, func(msg jetstream.Msg) {
		var due event.EvaluationDue
		require.NoError(t, json.Unmarshal(msg.Data(), &due))
		slots[due.MonitorID+" "+due.ScheduledFor.UTC().Format(time.RFC3339Nano)] = true
	})
	rows, err := pool.Query(ctx, `SELECT monitor_id::text || ' ' || to_char(scheduled_for AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') FROM evaluations`)
	require.NoError(t, err)
	recorded := map[string]bool{}
	for rows.Next() {
		var k string
		require.NoError(t, rows.Scan(&k))
		recorded[k] = true
	}
	require.NoError(t, rows.Err())
	var lost []string
	for k := range slots {
		id, at, _ := strings.Cut(k, " ")
		ts, err := time.Parse(time.RFC3339Nano, at)
		require.NoError(t, err)
		// PostgreSQL keeps microseconds, rounded.
		if !recorded[id+" "+ts.UTC().Round(time.Microsecond).Format("2006-01-02T15:04:05.000000")] {
			lost = append(lost, k)
		}
	}
	require.Empty(t, lost, "due slots never evaluated (of %d)", len(slots))
	return len(slots)
}

// readStream hands fn every message of stream on subjects (all when none), in order. On a
// cluster just after failovers a read can fail (no responders, a leader moving): it then
// goes on from the message after the last one read.
func readStream(t *testing.T, js jetstream.JetStream, stream string, subjects []string, fn func(jetstream.Msg)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	next := uint64(1)
	read := func() error {
		s, err := js.Stream(ctx, stream)
		if err != nil {
			return err
		}
		cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: subjects,
			DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: next})
		if err != nil {
			return err
		}
		info, err := cons.Info(ctx)
		if err != nil {
			return err
		}
		for left := info.NumPending; left > 0; left-- {
			msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
			if err != nil {
				return fmt.Errorf("%d messages left: %w", left, err)
			}
			md, err := msg.Metadata()
			if err != nil {
				return err
			}
			fn(msg)
			next = md.Sequence.Stream + 1
		}
		return nil
	}
	for attempt := 1; ; attempt++ {
		err := read()
		if err == nil {
			return
		}
		require.Less(t, attempt, 20, "read %s: %v", stream, err)
		t.Logf("read %s again from sequence %d: %v", stream, next, err)
		time.Sleep(500 * time.Millisecond)
	}
}

package postgres_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/postgres"
	"github.com/vigilhq/vigil/adapters/source"
	"github.com/vigilhq/vigil/adapters/webhook"
	"github.com/vigilhq/vigil/domain/action"
	"github.com/vigilhq/vigil/domain/app"
	"github.com/vigilhq/vigil/domain/monitor"
)

// receiver is a webhook endpoint that verifies every delivery with the Standard Webhooks
// reference library and answers with the statuses it is given, then 200.
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	statuses []int
	got      []delivery
}

type delivery struct {
	id, verifyErr string
	body          webhook.Body
}

func newReceiver(t *testing.T, secret string, statuses ...int) *receiver {
	t.Helper()
	verifier, err := standardwebhooks.NewWebhook(secret)
	require.NoError(t, err)
	r := &receiver{statuses: statuses}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		payload, _ := io.ReadAll(req.Body)
		d := delivery{id: req.Header.Get("webhook-id")}
		if err := verifier.Verify(payload, req.Header); err != nil {
			d.verifyErr = err.Error()
		}
		_ = json.Unmarshal(payload, &d.body)
		r.mu.Lock()
		r.got = append(r.got, d)
		status := http.StatusOK
		if len(r.statuses) > 0 {
			status, r.statuses = r.statuses[0], r.statuses[1:]
		}
		r.mu.Unlock()
		w.WriteHeader(status)
		io.WriteString(w, http.StatusText(status))
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) deliveries() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.got...)
}

// setupWebhook makes a webhook action to url with a known secret and a state_change trigger
// to it, and fires it once. It returns the action and the notification.
func setupWebhook(t *testing.T, mb *mailerBundle, url string) (*action.Action, string) {
	t.Helper()
	ctx := context.Background()
	a, err := action.New(newID(t), action.Draft{UserID: mb.userID, Type: action.TypeWebhook, URL: url}, time.Now().UTC())
	require.NoError(t, err)
	require.NoError(t, postgres.NewActionStore(mb.pool, mb.box).CreateAction(ctx, a))
	_, err = mb.pool.Exec(ctx, `DELETE FROM triggers WHERE monitor_id = $1`, mb.monitor.ID)
	require.NoError(t, err)
	require.NoError(t, mb.seed.EnsureTrigger(ctx, mb.monitor.ID, a.ID, "state_change", "every_time"))
	ids := fire(t, mb.bundle, monitor.StateActive, monitor.StateInactive, 120)
	require.Len(t, ids, 1)
	return a, ids[0]
}

func TestWebhookRetriedThenDeliveredOnce(t *testing.T) {
	t.Parallel()
	mb := newMailerBundle(t, setup(t), source.Config{AllowPrivate: true})
	ctx := context.Background()
	secret := action.NewSecret()
	rcv := newReceiver(t, secret, http.StatusInternalServerError)
	a, err := action.New(newID(t), action.Draft{UserID: mb.userID, Type: action.TypeWebhook, URL: rcv.URL + "/hook", Secret: secret}, time.Now().UTC())
	require.NoError(t, err)
	require.NoError(t, postgres.NewActionStore(mb.pool, mb.box).CreateAction(ctx, a))
	require.NoError(t, mb.seed.EnsureTrigger(ctx, mb.monitor.ID, a.ID, "state_change", "every_time"))
	ids := fire(t, mb.bundle, monitor.StateInactive, monitor.StateActive, 42.5)
	require.Len(t, ids, 1)
	id := ids[0]
	require.Equal(t, 1, mb.count(t, `SELECT count(*) FROM notifications WHERE id = $1 AND channel = 'webhook' AND recipient = $2`, id, rcv.URL+"/hook"))

	require.Equal(t, 1, mb.deliverRequested(t))
	require.Equal(t, 1, mb.count(t, `SELECT count(*) FROM notifications WHERE id = $1 AND status = 'pending' AND last_error LIKE '%500%'`, id))
	mb.clock.Add(time.Minute)
	n, err := mb.mailer.RequestDue(ctx, 100)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, 2, mb.count(t, `SELECT count(*) FROM outbox WHERE subject = $1`, "vigil.notifications.webhook."+id),
		"the request and the re-request wait in the webhooks' queue, not behind emails")
	require.Equal(t, 1, mb.deliverRequested(t))

	got := rcv.deliveries()
	require.Len(t, got, 2, "a 500, then the retry that got 200")
	for _, d := range got {
		require.Empty(t, d.verifyErr, "the reference library verifies the signature")
		require.Equal(t, id, d.id, "the same webhook-id on every attempt")
	}
	body := got[1].body
	require.Equal(t, "monitor.state_changed", body.Type)
	require.Equal(t, mb.monitor.ID, body.Data.Monitor.ID)
	require.Equal(t, "inactive", body.Data.Transition.From)
	require.Equal(t, "active", body.Data.Transition.To)
	require.Len(t, body.Data.Facts, 1)
	require.Equal(t, 42.5, body.Data.Facts[0].Value)
	require.Equal(t, "https://vigil.example/api/monitors/"+mb.monitor.ID, body.Data.Links.Monitor)
	require.Equal(t, 1, mb.count(t, `SELECT count(*) FROM notifications WHERE id = $1 AND status = 'sent'`, id))
	require.Equal(t, 1, mb.count(t, `SELECT count(*) FROM notification_attempts WHERE notification_id = $1 AND code = 500 AND outcome = 'retry'`, id))
	require.Equal(t, 1, mb.count(t, `SELECT count(*) FROM notification_attempts WHERE notification_id = $1 AND code = 200 AND outcome = 'delivered'`, id))

	// Nothing more is owed.
	mb.clock.Add(time.Hour)
	n, err = mb.mailer.RequestDue(ctx, 100)
	require.NoError(t, err)
	require.Zero(t, n)
	require.Len(t, rcv.deliveries(), 2)
}

func TestWebhookClientErrorFailsWithoutRetry(t *testing.T) {
	t.Parallel()
	mb := newMailerBundle(t, setup(t), source.Config{AllowPrivate: true})
	ctx := context.Background()
	rcv := newReceiver(t, action.NewSecret(), http.StatusBadRequest)
	_, id := setupWebhook(t, mb, rcv.URL)
	mb.deliverRequested(t)
	require.Equal(t, 1, mb.count(t, `SELECT count(*) FROM notifications WHERE id = $1 AND status = 'failed' AND last_error LIKE '%400%'`, id))
	mb.clock.Add(2 * time.Hour)
	n, err := mb.mailer.RequestDue(ctx, 100)
	require.NoError(t, err)
	require.Zero(t, n)
	require.Len(t, rcv.deliveries(), 1)
}

func TestWebhookGoneDisablesTheAction(t *testing.T) {
	t.Parallel()
	mb := newMailerBundle(t, setup(t), source.Config{AllowPrivate: true})
	rcv := newReceiver(t, action.NewSecret(), http.StatusGone)
	a, id := setupWebhook(t, mb, rcv.URL)
	mb.deliverRequested(t)
	require.Equal(t, 1, mb.count(t, `SELECT count(*) FROM notifications WHERE id = $1 AND status = 'failed'`, id))
	require.Equal(t, 1, mb.count(t, `SELECT count(*) FROM actions WHERE id = $1 AND NOT enabled AND disabled_reason LIKE '%410%'`, a.ID))
	// The owner is told, by email, once.
	require.Equal(t, 1, mb.deliverRequested(t))
	msgs := mb.smtp.Messages()
	require.Len(t, msgs, 1)
	require.Equal(t, []string{"ann@example.com"}, msgs[0].To)
	require.Contains(t, msgs[0].Subject, "webhook turned off")
	require.Contains(t, msgs[0].Text, rcv.URL)
	require.Contains(t, msgs[0].Text, "410 Gone")
	// A disabled action fires no more.
	require.Empty(t, fire(t, mb.bundle, monitor.StateInactive, monitor.StateActive, 50))
}

func TestWebhookToLoopbackRefusedAtDelivery(t *testing.T) {
	t.Parallel()
	// The URL was accepted when private targets were allowed (or its DNS changed since);
	// deliveries check again when they connect.
	mb := newMailerBundle(t, setup(t), source.Config{AllowPrivate: false})
	rcv := newReceiver(t, action.NewSecret())
	_, id := setupWebhook(t, mb, rcv.URL)
	mb.deliverRequested(t)
	require.Empty(t, rcv.deliveries(), "nothing reached the loopback endpoint")
	require.Equal(t, 1, mb.count(t, `SELECT count(*) FROM notifications WHERE id = $1 AND status = 'failed' AND last_error LIKE '%private or local%'`, id))
}

func TestWebhookTimeoutIsRetried(t *testing.T) {
	t.Parallel()
	mb := newMailerBundle(t, setup(t), source.Config{AllowPrivate: true})
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release); slow.Close() })
	_, id := setupWebhook(t, mb, slow.URL)
	mb.deliverRequested(t)
	require.Equal(t, 1, mb.count(t, `SELECT count(*) FROM notifications WHERE id = $1 AND status = 'pending' AND last_error LIKE '%did not answer in time%'`, id))
	require.Equal(t, 1, mb.count(t, `SELECT count(*) FROM notification_attempts WHERE notification_id = $1 AND outcome = $2 AND code IS NULL`, id, string(app.ResultRetry)))
}

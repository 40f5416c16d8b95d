package webhook_test

import (
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/webhook"
	"github.com/vigilhq/vigil/domain/app"
)

// TestSignMatchesTheReferenceLibrary compares Sign with the Standard Webhooks reference
// implementation, with the specification's example secret and with a generated one.
func TestSignMatchesTheReferenceLibrary(t *testing.T) {
	t.Parallel()
	ts := time.Unix(1614265330, 0)
	body := []byte(`{"test": 2432232314}`)
	for _, secret := range []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_" + "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA=="} {
		ref, err := standardwebhooks.NewWebhook(secret)
		require.NoError(t, err)
		want, err := ref.Sign("msg_p5jXN8AQM9LWM0D4loKWxJek", ts, body)
		require.NoError(t, err)
		require.Equal(t, want, webhook.Sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", ts.Unix(), body))
	}
	// The specification's own example.
	require.Equal(t, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
		webhook.Sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body))
}

func TestHTTPResult(t *testing.T) {
	t.Parallel()
	for status, want := range map[int]app.Result{
		200: app.ResultDelivered, 204: app.ResultDelivered, 299: app.ResultDelivered,
		408: app.ResultRetry, 429: app.ResultRetry, 500: app.ResultRetry, 503: app.ResultRetry,
		400: app.ResultFailed, 401: app.ResultFailed, 404: app.ResultFailed, 301: app.ResultFailed,
		410: app.ResultGone,
	} {
		require.Equal(t, want, app.HTTPResult(status), "HTTP %d", status)
	}
}

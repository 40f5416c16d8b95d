package emailtpl_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/emailtpl"
)

func TestDigest(t *testing.T) {
	t.Parallel()
	r := setup(t)
	at := time.Date(2026, 11, 30, 14, 5, 0, 0, time.UTC)
	email, err := r.Digest(emailtpl.Digest{RecipientName: "Ann", Day: "2026-12-01", Timezone: "Europe/Paris",
		SettingsURL: "https://vigil.example/settings", UnsubscribeURL: "https://vigil.example/unsubscribe?token=t",
		Monitors: []emailtpl.DigestMonitor{
			{Name: "Widget <b>price</b>", MonitorURL: "https://vigil.example/m/1", Changes: []emailtpl.DigestChange{
				{From: "inactive", To: "active", At: at, Facts: []emailtpl.FactLine{{Key: "price", Value: "79", Unit: "USD"}}},
				{From: "active", To: "inactive", At: at.Add(3 * time.Hour), Facts: []emailtpl.FactLine{{Key: "price", Value: "85", Unit: "USD"}}},
			}},
			{Name: "Status page", MonitorURL: "https://vigil.example/m/2", Changes: []emailtpl.DigestChange{{From: "unknown", To: "active", At: at}}},
		}})
	require.NoError(t, err)
	assert.Equal(t, "Your Vigil digest for Tue 1 Dec: 3 changes on 2 monitors", email.Subject)
	assert.Equal(t, `Hi Ann,

Your digest for Tuesday 1 December 2026

3 changes on 2 monitors since your last digest.

Widget <b>price</b>
- Condition not met -> Condition met, Mon 30 Nov 2026, 15:05 CET (Europe/Paris); price: 79 USD
- Condition met -> Condition not met, Mon 30 Nov 2026, 18:05 CET (Europe/Paris); price: 85 USD
  https://vigil.example/m/1

Status page
- Unknown -> Condition met, Mon 30 Nov 2026, 15:05 CET (Europe/Paris)
  https://vigil.example/m/2

--
You receive this digest because some of your triggers collect changes into a daily email.
Unsubscribe: https://vigil.example/unsubscribe?token=t
`, email.Text)
	assert.Contains(t, email.HTML, "Widget &lt;b&gt;price&lt;/b&gt;")
	assert.Contains(t, email.HTML, `href="https://vigil.example/unsubscribe?token=t"`)
	assert.NotContains(t, email.HTML, "<img")

	_, err = r.Digest(emailtpl.Digest{Day: "2026-12-01", SettingsURL: "https://vigil.example/settings", UnsubscribeURL: "https://vigil.example/u"})
	assert.ErrorIs(t, err, domain.ErrInvalid, "an empty day sends nothing")
}

func TestWebhookDisabled(t *testing.T) {
	t.Parallel()
	r := setup(t)
	email, err := r.WebhookDisabled(emailtpl.WebhookDisabled{RecipientName: "Ann", ActionName: "Ops hook", URL: "https://hooks.example.com/x",
		Answer: "The endpoint answered 410 Gone.", At: time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC), Timezone: "UTC",
		SettingsURL: "https://vigil.example/settings?t=s", UnsubscribeURL: "https://vigil.example/unsubscribe?token=t"})
	require.NoError(t, err)
	assert.Equal(t, "Ops hook: webhook turned off", email.Subject)
	assert.Equal(t, `Hi Ann,

Ops hook: webhook turned off

On Tue 1 Dec 2026, 09:30 UTC its endpoint answered 410 Gone, which says it will never take deliveries again, so Vigil turned the action off. Its triggers send nothing until you turn it on again (PATCH /api/actions/<id> with {"enabled":true}) or point it at a new URL.

Endpoint: https://hooks.example.com/x
It said: The endpoint answered 410 Gone.

Manage notifications: https://vigil.example/settings?t=s

--
You receive this email because you own the webhook action "Ops hook".
Unsubscribe: https://vigil.example/unsubscribe?token=t
`, email.Text)
	_, err = r.WebhookDisabled(emailtpl.WebhookDisabled{ActionName: "x"})
	assert.ErrorIs(t, err, domain.ErrInvalid)
}

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

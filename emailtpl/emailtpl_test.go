package emailtpl_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/emailtpl"
)

func setup(t *testing.T) *emailtpl.Renderer {
	t.Helper()
	r, err := emailtpl.New()
	require.NoError(t, err)
	return r
}

func validStateChanged() emailtpl.StateChanged {
	return emailtpl.StateChanged{
		RecipientName: "Anna",
		MonitorName:   "Price watch",
		Prompt:        "Is the Fairphone 5 below 500 EUR at shop.example?",
		From:          emailtpl.StateInactive,
		To:            emailtpl.StateActive,
		Explanation:   "The listed price dropped to 479 EUR, below your 500 EUR limit.",
		Facts: []emailtpl.FactLine{
			{Key: "price", Value: "479", Unit: "EUR"},
			{Key: "discount", Value: "12", Unit: "%"},
			{Key: "in_stock", Value: "true"},
		},
		ChangedAt:      time.Date(2026, 3, 3, 13, 5, 0, 0, time.UTC),
		Timezone:       "Europe/Berlin",
		MonitorURL:     "https://app.vigil.example/monitors/m_123",
		UnsubscribeURL: "https://app.vigil.example/unsubscribe?token=abc.def",
	}
}

func TestStateChanged_ContainsEverything(t *testing.T) {
	t.Parallel()
	r := setup(t)

	email, err := r.StateChanged(validStateChanged())
	require.NoError(t, err)

	assert.Equal(t, "Price watch: condition met", email.Subject)

	for name, part := range map[string]string{"html": email.HTML, "text": email.Text} {
		for _, want := range []string{
			"Hi Anna,",
			"Price watch",
			"Condition not met", // from
			"Condition met",     // to
			"The listed price dropped to 479 EUR, below your 500 EUR limit.",
			"price", "479 EUR", "12%", "in_stock",
			"Is the Fairphone 5 below 500 EUR at shop.example?",
			"Tue 3 Mar 2026, 14:05 CET (Europe/Berlin)",
			"https://app.vigil.example/monitors/m_123",
			"Unsubscribe",
		} {
			assert.Contains(t, part, want, "%s part", name)
		}
	}
	assert.Contains(t, email.Text, "Unsubscribe: https://app.vigil.example/unsubscribe?token=abc.def")
	assert.Contains(t, email.Text, "Change: Condition not met -> Condition met")
	// html/template escapes & in attribute URLs only where needed; the query survives.
	assert.Contains(t, email.HTML, `href="https://app.vigil.example/unsubscribe?token=abc.def"`)
	assert.Contains(t, email.HTML, `href="https://app.vigil.example/monitors/m_123"`)
}

func TestStateChanged_Responsive(t *testing.T) {
	t.Parallel()
	r := setup(t)

	email, err := r.StateChanged(validStateChanged())
	require.NoError(t, err)

	assert.Contains(t, email.HTML, `<meta name="viewport" content="width=device-width, initial-scale=1">`)
	assert.Contains(t, email.HTML, "max-width:600px")
	assert.NotContains(t, email.HTML, "<style", "essential styles must be inline")
}

func TestStateChanged_EscapesUserInput(t *testing.T) {
	t.Parallel()
	r := setup(t)

	d := validStateChanged()
	d.MonitorName = `<script>alert("name")</script>`
	d.Prompt = `<img src=x onerror=alert(1)>`
	d.Explanation = `</p><script>alert("why")</script>`
	d.Facts = []emailtpl.FactLine{{Key: "<b>k</b>", Value: `"><script>v</script>`}}
	d.RecipientName = "<i>Eve</i>"

	email, err := r.StateChanged(d)
	require.NoError(t, err)

	assert.NotContains(t, email.HTML, "<script>")
	assert.NotContains(t, email.HTML, "<img")
	assert.NotContains(t, email.HTML, "<b>k</b>")
	assert.NotContains(t, email.HTML, "<i>Eve</i>")
	assert.Contains(t, email.HTML, "&lt;script&gt;alert(&#34;name&#34;)&lt;/script&gt;")
	assert.Contains(t, email.HTML, "&lt;img src=x onerror=alert(1)&gt;")

	// The text part is plain text: values appear as written.
	assert.Contains(t, email.Text, `<script>alert("name")</script>`)
	assert.Equal(t, `<script>alert("name")</script>: condition met`, email.Subject)
}

func TestStateChanged_Wording(t *testing.T) {
	t.Parallel()
	r := setup(t)

	tests := []struct {
		from, to, subject string
	}{
		{emailtpl.StateInactive, emailtpl.StateActive, "Price watch: condition met"},
		{emailtpl.StateUnknown, emailtpl.StateActive, "Price watch: condition met"},
		{emailtpl.StateActive, emailtpl.StateInactive, "Price watch: condition no longer met"},
		{emailtpl.StateUnknown, emailtpl.StateInactive, "Price watch: condition not met"},
		{emailtpl.StateActive, emailtpl.StateUnknown, "Price watch: status unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.from+"->"+tt.to, func(t *testing.T) {
			t.Parallel()
			d := validStateChanged()
			d.From, d.To = tt.from, tt.to
			email, err := r.StateChanged(d)
			require.NoError(t, err)
			assert.Equal(t, tt.subject, email.Subject)
		})
	}
}

func TestStateChanged_OptionalParts(t *testing.T) {
	t.Parallel()
	r := setup(t)

	d := validStateChanged()
	d.RecipientName = ""
	d.Explanation = ""
	d.Facts = nil
	d.Prompt = ""
	d.Timezone = "Not/AZone"
	d.MonitorName = "Very\nlong " + strings.Repeat("x", 200)

	email, err := r.StateChanged(d)
	require.NoError(t, err)

	assert.Contains(t, email.Text, "Hello,")
	assert.NotContains(t, email.Text, "Why:")
	assert.NotContains(t, email.Text, "Facts:")
	assert.NotContains(t, email.HTML, ">Why<")
	assert.Contains(t, email.Text, "Tue 3 Mar 2026, 13:05 UTC", "unknown zone falls back to UTC")
	assert.NotContains(t, email.Subject, "\n")
	assert.LessOrEqual(t, len([]rune(email.Subject)), 80+len(": condition met"))
	assert.True(t, strings.HasPrefix(email.Subject, "Very long xxx"))
}

func TestStateChanged_Invalid(t *testing.T) {
	t.Parallel()
	r := setup(t)

	d := validStateChanged()
	d.MonitorName = " "
	d.From = "on"
	d.To = "on"
	d.ChangedAt = time.Time{}
	d.MonitorURL = "javascript:alert(1)"
	d.UnsubscribeURL = "/relative"

	_, err := r.StateChanged(d)
	require.Error(t, err)
	assert.Equal(t, domain.EINVALID, domain.ErrorCode(err))
	var derr *domain.Error
	require.True(t, errors.As(err, &derr))
	for _, f := range []string{"monitor_name", "from", "to", "changed_at", "monitor_url", "unsubscribe_url"} {
		assert.Contains(t, derr.Fields, f)
	}

	d = validStateChanged()
	d.To = d.From
	_, err = r.StateChanged(d)
	assert.ErrorIs(t, err, domain.ErrInvalid)
}

func TestMonitorFailing(t *testing.T) {
	t.Parallel()
	r := setup(t)
	email, err := r.MonitorFailing(emailtpl.MonitorFailing{
		RecipientName: "Ann", MonitorName: "Price <script>alert(1)</script>", Prompt: "price below 80",
		Failures: 5, LastError: "The source answered 502 Bad Gateway.", FailedAt: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC),
		Timezone: "Europe/Paris", MonitorURL: "https://vigil.example/api/monitors/m1", UnsubscribeURL: "https://vigil.example/unsubscribe?token=t",
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range []string{email.HTML, email.Text} {
		for _, want := range []string{"checks are failing", "The last 5 checks failed", "502 Bad Gateway", "price below 80", "https://vigil.example/api/monitors/m1", "unsubscribe?token=t"} {
			if !strings.Contains(part, want) {
				t.Errorf("email lacks %q", want)
			}
		}
	}
	if strings.Contains(email.HTML, "<script>") || !strings.Contains(email.HTML, "&lt;script&gt;") {
		t.Error("monitor name not escaped in HTML")
	}
	if !strings.Contains(email.HTML, "max-width:600px") || !strings.HasPrefix(email.Subject, "Price <script>") {
		t.Errorf("layout or subject wrong: %q", email.Subject)
	}
	if _, err := r.MonitorFailing(emailtpl.MonitorFailing{}); err == nil {
		t.Fatal("empty data accepted")
	}
}

func TestExtractionBroken(t *testing.T) {
	t.Parallel()
	r := setup(t)
	d := emailtpl.ExtractionBroken{
		RecipientName: "Ann", MonitorName: "Shoe <b>price</b>", Fact: "price", Selector: "span.price", Misses: 3,
		LastGood: "120 USD", LastEvidence: "$120.00", Snippet: "New look! Now only $120.00 <img onerror=x>",
		Suggested: "[data-testid=price]", At: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC), Timezone: "Europe/Paris",
		MonitorURL: "https://vigil.example/api/monitors/m1", UnsubscribeURL: "https://vigil.example/unsubscribe?token=t",
	}
	email, err := r.ExtractionBroken(d)
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range []string{email.HTML, email.Text} {
		for _, want := range []string{"the price is no longer found", "last 3 checks", "span.price", "120 USD", "$120.00", "New look!",
			"[data-testid=price]", "auto_repair", "https://vigil.example/api/monitors/m1", "unsubscribe?token=t"} {
			if !strings.Contains(part, want) {
				t.Errorf("email lacks %q", want)
			}
		}
	}
	if strings.Contains(email.HTML, "<img") || strings.Contains(email.HTML, "<b>price") {
		t.Error("page text or monitor name not escaped in HTML")
	}
	if email.Subject != "Shoe <b>price</b>: the price is no longer found" {
		t.Errorf("subject %q", email.Subject)
	}
	// Without a verified suggestion the email says what was rejected and how to fix it by hand.
	d.Suggested, d.Rejected = "", "The suggested selector reads 99 USD, not the last good value 120 USD."
	email, err = r.ExtractionBroken(d)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(email.Text, "reads 99 USD, not the last good value") || strings.Contains(email.Text, "auto_repair") {
		t.Errorf("rejected suggestion not explained:\n%s", email.Text)
	}
	if _, err := r.ExtractionBroken(emailtpl.ExtractionBroken{}); err == nil {
		t.Fatal("empty data accepted")
	}
}

func TestStateChanged_ChartAndLinks(t *testing.T) {
	t.Parallel()
	r := setup(t)
	d := validStateChanged()
	d.PauseURL = "https://app.vigil.example/m/m_123?t=p#pause"
	d.SettingsURL = "https://app.vigil.example/settings?t=s"
	d.HistoryLabel = "price (EUR)"
	for i, v := range []float64{520, 515, 510, 505, 479} {
		d.History = append(d.History, emailtpl.ChartPoint{At: d.ChangedAt.Add(time.Duration(i-4) * time.Hour), Value: v})
	}
	email, err := r.StateChanged(d)
	require.NoError(t, err)
	assert.Contains(t, email.HTML, "Recent values of price (EUR)")
	assert.Contains(t, email.HTML, "From 479 to 520")
	assert.Equal(t, 5, strings.Count(email.HTML, `title="`), "one bar per value")
	assert.Contains(t, email.HTML, `title="479 at Tue 3 Mar 2026, 14:05 CET (Europe/Berlin)"`)
	assert.Contains(t, email.HTML, "height:6px", "the lowest value has the shortest bar")
	assert.Contains(t, email.HTML, "height:48px;line-height:48px", "the highest the tallest")
	assert.NotContains(t, email.HTML, "<img", "drawn in HTML, never a remote image")
	assert.Contains(t, email.HTML, `href="https://app.vigil.example/m/m_123?t=p#pause"`)
	assert.Contains(t, email.HTML, "Manage notifications")
	assert.Contains(t, email.Text, "Recent values of price (EUR): from 479 to 520\n  520 at Tue 3 Mar 2026, 10:05 CET (Europe/Berlin)\n")
	assert.Contains(t, email.Text, "Pause it: https://app.vigil.example/m/m_123?t=p#pause\nManage notifications: https://app.vigil.example/settings?t=s\n")

	d.History = d.History[:1]
	email, err = r.StateChanged(d)
	require.NoError(t, err)
	assert.NotContains(t, email.HTML, "Recent values", "one value is no chart")
	d.PauseURL = "javascript:alert(1)"
	_, err = r.StateChanged(d)
	assert.ErrorIs(t, err, domain.ErrInvalid)
}

// TestStateChanged_GoldenText pins the whole text part.
func TestStateChanged_GoldenText(t *testing.T) {
	t.Parallel()
	r := setup(t)
	d := validStateChanged()
	d.PauseURL = "https://app.vigil.example/m/m_123?t=p#pause"
	d.SettingsURL = "https://app.vigil.example/settings?t=s"
	d.HistoryLabel = "price (EUR)"
	for i, v := range []float64{505, 479} {
		d.History = append(d.History, emailtpl.ChartPoint{At: d.ChangedAt.Add(time.Duration(i-1) * time.Hour), Value: v})
	}
	email, err := r.StateChanged(d)
	require.NoError(t, err)
	assert.Equal(t, `Hi Anna,

Price watch: Condition met

The condition you are watching is now met.

Change: Condition not met -> Condition met
When:   Tue 3 Mar 2026, 14:05 CET (Europe/Berlin)

Why:
The listed price dropped to 479 EUR, below your 500 EUR limit.

Facts:
- price: 479 EUR
- discount: 12%
- in_stock: true

Recent values of price (EUR): from 479 to 505
  505 at Tue 3 Mar 2026, 13:05 CET (Europe/Berlin)
  479 at Tue 3 Mar 2026, 14:05 CET (Europe/Berlin)

What you are watching:
Is the Fairphone 5 below 500 EUR at shop.example?

View monitor: https://app.vigil.example/monitors/m_123
Pause it: https://app.vigil.example/m/m_123?t=p#pause
Manage notifications: https://app.vigil.example/settings?t=s

--
You receive this email because you subscribed to changes of "Price watch".
Unsubscribe: https://app.vigil.example/unsubscribe?token=abc.def
`, email.Text)
}

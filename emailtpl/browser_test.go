package emailtpl_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/emailtpl"
)

// browser starts headless Chromium (VIGIL_CHROMIUM, which make test sets after installing
// Debian's chromium when missing, else chromium on PATH) and returns a tab's context.
func browser(t *testing.T) context.Context {
	t.Helper()
	path := os.Getenv("VIGIL_CHROMIUM")
	if path == "" {
		var err error
		if path, err = exec.LookPath("chromium"); err != nil {
			t.Fatal("no Chromium: run `make test`, which installs Debian's chromium, or set VIGIL_CHROMIUM")
		}
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true), chromedp.UserDataDir(t.TempDir()))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancel(); cancelAlloc() })
	require.NoError(t, chromedp.Do(ctx), "start Chromium at %s", path)
	return ctx
}

// artifacts is where the screenshots go: VIGIL_TEST_ARTIFACTS (make test: data/test-artifacts),
// else a temporary directory.
func artifacts(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("VIGIL_TEST_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	dir = filepath.Join(dir, "emails")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	return dir
}

// everyEmail renders each template with long, awkward content: long names, long
// unbreakable words, a chart, many facts.
func everyEmail(t *testing.T) map[string]emailtpl.Email {
	t.Helper()
	r := setup(t)
	long := "Supercalifragilisticexpialidocious-price-watch-for-the-very-long-product-name-that-never-ends"
	at := time.Date(2026, 11, 30, 14, 5, 0, 0, time.UTC)
	sc := validStateChanged()
	sc.MonitorName = long
	sc.Explanation = strings.Repeat("The price fell below your limit. ", 8) + "https://shop.example/very/long/path/" + strings.Repeat("x", 80)
	sc.Facts = append(sc.Facts, emailtpl.FactLine{Key: "product_identifier_" + strings.Repeat("z", 60), Value: strings.Repeat("9", 70)})
	sc.PauseURL, sc.SettingsURL = "https://vigil.example/m/1?t=p#pause", "https://vigil.example/settings?t=s"
	sc.HistoryLabel = "price (EUR)"
	for i := 0; i < 12; i++ {
		sc.History = append(sc.History, emailtpl.ChartPoint{At: at.Add(time.Duration(i) * time.Hour), Value: 500 - float64(i*i)})
	}
	out := map[string]emailtpl.Email{}
	var err error
	out["state_changed"], err = r.StateChanged(sc)
	require.NoError(t, err)
	out["digest"], err = r.Digest(emailtpl.Digest{RecipientName: "Ann", Day: "2026-12-01", Timezone: "Europe/Paris",
		SettingsURL: "https://vigil.example/settings?t=s", UnsubscribeURL: "https://vigil.example/unsubscribe?token=t",
		Monitors: []emailtpl.DigestMonitor{
			{Name: long, MonitorURL: "https://vigil.example/m/1?t=a", Changes: []emailtpl.DigestChange{
				{From: "inactive", To: "active", At: at, Facts: []emailtpl.FactLine{{Key: "price", Value: "79", Unit: "EUR"}, {Key: "stock", Value: strings.Repeat("w", 60)}}},
				{From: "active", To: "inactive", At: at.Add(time.Hour)}}},
			{Name: "Status page", MonitorURL: "https://vigil.example/m/2?t=b", Changes: []emailtpl.DigestChange{{From: "unknown", To: "active", At: at}}},
		}})
	require.NoError(t, err)
	out["monitor_failing"], err = r.MonitorFailing(emailtpl.MonitorFailing{RecipientName: "Ann", MonitorName: long, Prompt: "price below 80",
		Failures: 5, LastError: "The source answered 502 Bad Gateway: " + strings.Repeat("e", 120), FailedAt: at, Timezone: "Europe/Paris",
		MonitorURL: "https://vigil.example/m/1?t=a", UnsubscribeURL: "https://vigil.example/unsubscribe?token=t"})
	require.NoError(t, err)
	out["extraction_broken"], err = r.ExtractionBroken(emailtpl.ExtractionBroken{RecipientName: "Ann", MonitorName: long, Fact: "price",
		Selector: "span.price-now > b", Misses: 3, LastGood: "120 USD", LastEvidence: "$120.00", Snippet: strings.Repeat("Big sale today ", 30),
		Suggested: "[data-testid=product-price]", At: at, Timezone: "Europe/Paris",
		MonitorURL: "https://vigil.example/m/1?t=a", UnsubscribeURL: "https://vigil.example/unsubscribe?token=t"})
	require.NoError(t, err)
	out["password_reset"], err = r.PasswordReset(emailtpl.PasswordReset{RecipientName: "Ann",
		ResetURL: "https://vigil.example/reset-password?token=" + strings.Repeat("A", 64), ExpiresIn: time.Hour})
	require.NoError(t, err)
	out["recipient_confirm"], err = r.RecipientConfirm(emailtpl.RecipientConfirm{OwnerName: "Ann", OwnerEmail: "ann@example.com",
		ConfirmURL: "https://vigil.example/confirm-recipient?token=" + strings.Repeat("B", 90), ExpiresIn: 7 * 24 * time.Hour})
	require.NoError(t, err)
	out["welcome"], err = r.Welcome(emailtpl.Welcome{RecipientName: long, ConfirmURL: "https://vigil.example/verify-email?token=" + strings.Repeat("C", 120),
		ExpiresIn: 7 * 24 * time.Hour})
	require.NoError(t, err)
	out["webhook_disabled"], err = r.WebhookDisabled(emailtpl.WebhookDisabled{RecipientName: "Ann", ActionName: long,
		URL: "https://hooks.example.com/" + strings.Repeat("p", 100), Answer: "The endpoint answered 410 Gone. " + strings.Repeat("g", 90),
		At: at, Timezone: "Europe/Paris", SettingsURL: "https://vigil.example/settings?t=s", UnsubscribeURL: "https://vigil.example/unsubscribe?token=t"})
	require.NoError(t, err)
	return out
}

// TestEmailsInABrowser renders every email's HTML in headless Chromium at a phone's width
// (375 px) and a desktop's (1,200 px): nothing may overflow horizontally, and nothing may
// be fetched (no remote image, stylesheet or font). The screenshots are kept.
func TestEmailsInABrowser(t *testing.T) {
	t.Parallel()
	ctx := browser(t)
	dir := artifacts(t)
	pages := t.TempDir()
	for name, email := range everyEmail(t) {
		file := filepath.Join(pages, name+".html")
		require.NoError(t, os.WriteFile(file, []byte(email.HTML), 0o644))
		for _, width := range []int64{375, 1200} {
			type layout struct {
				ScrollWidth int `json:"scrollWidth"`
				InnerWidth  int `json:"innerWidth"`
				Remote      int `json:"remote"`
				Resources   int `json:"resources"`
			}
			require.NoError(t, chromedp.Do(ctx, chromedp.EmulateViewport(width, 900), chromedp.Navigate("file://"+file)), "%s at %d px", name, width)
			got, err := chromedp.Run(ctx, chromedp.Evaluate[layout](`({scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth,
				remote: Array.from(document.images).filter(i => /^(https?:)?\/\//.test(i.getAttribute('src') || '')).length,
				resources: performance.getEntriesByType('resource').length})`))
			require.NoError(t, err, "%s at %d px", name, width)
			shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
			require.NoError(t, err, "%s at %d px", name, width)
			require.LessOrEqual(t, got.ScrollWidth, got.InnerWidth, "%s overflows horizontally at %d px", name, width)
			require.Equal(t, int(width), got.InnerWidth, "%s: viewport", name)
			require.Zero(t, got.Remote, "%s has a remote image", name)
			require.Zero(t, got.Resources, "%s fetched something", name)
			require.NoError(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s-%d.png", name, width)), shot, 0o644))
		}
	}
	t.Logf("screenshots in %s", dir)
}

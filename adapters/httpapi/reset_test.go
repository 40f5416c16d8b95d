package httpapi_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/httpapi"
	"github.com/vigilhq/vigil/adapters/postgres"
	"github.com/vigilhq/vigil/adapters/smtp"
	"github.com/vigilhq/vigil/adapters/smtp/smtptest"
	"github.com/vigilhq/vigil/domain/account"
	"github.com/vigilhq/vigil/emailtpl"
)

// resetBaseURL stands for PUBLIC_BASE_URL: reset links must use it, whatever Host a request names.
const resetBaseURL = "https://app.vigil.example"

var resetLink = regexp.MustCompile(regexp.QuoteMeta(resetBaseURL+"/reset-password?token=") + `([A-Za-z0-9_-]+)`)

type resetBundle struct {
	*authBundle
	smtp     *smtptest.Server
	mailer   *smtp.ResetMailer
	mailLogs *syncBuffer
	srv      *httptest.Server // the same Echo handler behind a real HTTP server
}

// setupReset is setupAuth with password reset wired: reset tokens in Postgres and emails
// delivered, in the background, to an in-process SMTP server.
func setupReset(t *testing.T) *resetBundle {
	t.Helper()
	return setupResetWith(t, resetOpts{})
}

// resetOpts vary setupReset.
type resetOpts struct {
	noWorker bool // queue forgot-password requests without handling them (the test does)
}

// startResetWorker runs the worker that handles queued forgot-password requests, as the
// API role does, until the test ends.
func startResetWorker(t *testing.T, svc *account.Service) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = svc.RunResetWorker(ctx, func(err error) { t.Errorf("reset worker: %v", err) })
	}()
	t.Cleanup(func() { cancel(); <-done })
}

func setupResetWith(t *testing.T, opts resetOpts) *resetBundle {
	t.Helper()
	mailServer := smtptest.Start(t)
	renderer, err := emailtpl.New()
	require.NoError(t, err)
	sender, err := smtp.NewSender(smtp.Config{URL: mailServer.URL(), From: "Vigil <vigil@vigil.example>"})
	require.NoError(t, err)
	mailLogs := &syncBuffer{}
	mailer, err := smtp.NewResetMailer(renderer, sender, smtp.ResetMailerConfig{BaseURL: resetBaseURL,
		Logger: zerolog.New(mailLogs), Timeout: 10 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { // before the SMTP server closes (cleanups run last first)
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		require.NoError(t, mailer.Wait(ctx))
	})
	b := setupAuth(t, authOpts{
		deps: func(d *account.Deps, pool *pgxpool.Pool) {
			d.ResetTokens, d.ResetMailer, d.ResetQueue = postgres.NewResetTokenStore(pool), mailer, postgres.NewResetQueueStore(pool)
		},
		wire: func(cfg *httpapi.Config, _ *pgxpool.Pool, _ *fakeClock) {
			cfg.PasswordResets = cfg.Accounts.(httpapi.PasswordResets)
			if !opts.noWorker {
				startResetWorker(t, cfg.Accounts.(*account.Service))
			}
		},
	})
	srv := httptest.NewServer(b.h)
	t.Cleanup(srv.Close)
	return &resetBundle{authBundle: b, smtp: mailServer, mailer: mailer, mailLogs: mailLogs, srv: srv}
}

func (b *resetBundle) forgot(t *testing.T, email string) *httptest.ResponseRecorder {
	t.Helper()
	return b.do(t, http.MethodPost, "/api/auth/password/forgot", jsonBody(t, map[string]string{"email": email}), "")
}

func (b *resetBundle) reset(t *testing.T, token, pw string) *httptest.ResponseRecorder {
	t.Helper()
	return b.do(t, http.MethodPost, "/api/auth/password/reset", jsonBody(t, map[string]string{"token": token, "password": pw}), "")
}

// settle waits until every forgot-password request queued so far was handled and every
// reset email it started was delivered (or failed).
func (b *resetBundle) settle(t *testing.T) {
	t.Helper()
	require.Eventually(t, func() bool { return b.count(t, `SELECT count(*) FROM password_reset_requests`) == 0 },
		15*time.Second, 10*time.Millisecond, "forgot-password requests still queued")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	require.NoError(t, b.mailer.Wait(ctx))
}

// tokenOf returns the token of the reset link in msg, checking both parts carry the link.
func tokenOf(t *testing.T, msg smtptest.Received) string {
	t.Helper()
	m := resetLink.FindStringSubmatch(msg.Text)
	require.NotNil(t, m, "no reset link in the text part:\n%s", msg.Text)
	require.Contains(t, msg.HTML, `href="`+m[0]+`"`)
	return m[1]
}

const newPassword = "a fresh and long passphrase"

func TestPasswordResetEndToEnd(t *testing.T) {
	t.Parallel()
	b := setupReset(t)
	reg := b.register(t, "reset@example.com", goodPassword)
	rec := b.login(t, "reset@example.com", goodPassword)
	require.Equal(t, http.StatusOK, rec.Code)
	other := decode[httpapi.TokenResponse](t, rec)

	// Through a real HTTP server, naming another host: the link still uses PUBLIC_BASE_URL.
	req, err := http.NewRequest(http.MethodPost, b.srv.URL+"/api/auth/password/forgot", strings.NewReader(`{"email":"RESET@example.com"}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Host = "attacker.example"
	req.Header.Set("X-Forwarded-Host", "attacker.example")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusAccepted, resp.StatusCode, "body: %s", body)
	require.JSONEq(t, `{"message":"`+httpapi.ForgotPasswordMessage+`"}`, string(body))
	require.Equal(t, "no-store", resp.Header.Get("Cache-Control"))

	msgs := b.smtp.WaitFor(t, 1, 15*time.Second)
	require.Len(t, msgs, 1)
	msg := msgs[0]
	require.Equal(t, []string{"reset@example.com"}, msg.To)
	require.Equal(t, "Reset your Vigil password", msg.Subject)
	require.NotContains(t, string(msg.Data), "attacker.example")
	require.Contains(t, msg.Text, "expires in an hour")
	require.Contains(t, msg.Text, "ignore this email")
	token := tokenOf(t, msg)
	require.Len(t, token, 43, "256 bits, base64url")

	// Only the hash is stored, valid for an hour.
	raw, err := base64.RawURLEncoding.DecodeString(token)
	require.NoError(t, err)
	sum := sha256.Sum256(raw)
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM password_reset_tokens WHERE user_id = $1 AND token_hash = $2
		AND expires_at - created_at = interval '1 hour' AND used_at IS NULL`, reg.User.ID, sum[:]))
	require.Zero(t, b.count(t, `SELECT count(*) FROM password_reset_tokens WHERE position(convert_to($1, 'UTF8') IN token_hash) > 0`, token))

	// The policy applies, and a refused password does not spend the token.
	p := requireProblem(t, b.reset(t, token, "password1"), http.StatusUnprocessableEntity, "invalid")
	require.Contains(t, p.Errors, "password")
	require.NotContains(t, p.Errors, "token")

	rec = b.reset(t, token, newPassword)
	require.Equal(t, http.StatusNoContent, rec.Code, rec.Body.String())
	requireProblem(t, b.login(t, "reset@example.com", goodPassword), http.StatusUnauthorized, "unauthorized")
	require.Equal(t, http.StatusOK, b.login(t, "reset@example.com", newPassword).Code)
	for _, old := range []string{reg.RefreshToken, other.RefreshToken} {
		requireProblem(t, b.refresh(t, old), http.StatusUnauthorized, "unauthorized")
	}

	// The link works once.
	p = requireProblem(t, b.reset(t, token, "yet another passphrase"), http.StatusUnprocessableEntity, "invalid")
	require.Equal(t, account.MsgResetTokenInvalid, p.Detail)
	require.Contains(t, p.Errors, "token")
	require.Equal(t, http.StatusOK, b.login(t, "reset@example.com", newPassword).Code, "the failed reuse changed nothing")

	requested := b.auditRows(t, account.ActionPasswordResetRequested)
	require.Len(t, requested, 1)
	require.Equal(t, reg.User.ID, requested[0].actor)
	require.Equal(t, "success", requested[0].outcome)
	completed := b.auditRows(t, account.ActionPasswordResetCompleted)
	require.Len(t, completed, 2)
	require.Equal(t, "success", completed[0].outcome)
	require.Equal(t, reg.User.ID, completed[0].targetID)
	require.Equal(t, "failure", completed[1].outcome)
	require.Contains(t, completed[1].metadata, "used_token")
	require.Zero(t, b.count(t, `SELECT count(*) FROM audit_log WHERE metadata::text LIKE '%' || $1 || '%'`, token))

	b.settle(t)
	require.NotContains(t, b.mailLogs.String(), token, "the token is never logged")
	require.NotContains(t, b.logs.String(), token)
}

func TestForgotPasswordUnknownEmail(t *testing.T) {
	t.Parallel()
	b := setupReset(t)
	b.register(t, "known@example.com", goodPassword)

	unknown := b.forgot(t, "nobody@example.com")
	known := b.forgot(t, "known@example.com")
	require.Equal(t, http.StatusAccepted, unknown.Code, unknown.Body.String())
	require.Equal(t, http.StatusAccepted, known.Code, known.Body.String())
	require.Equal(t, known.Body.String(), unknown.Body.String(), "the answer does not tell whether the account exists")
	require.Equal(t, known.Header().Get("Content-Type"), unknown.Header().Get("Content-Type"))

	b.settle(t)
	msgs := b.smtp.Messages()
	require.Len(t, msgs, 1, "only the known account gets an email")
	require.Equal(t, []string{"known@example.com"}, msgs[0].To)
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM password_reset_tokens`))

	rows := b.auditRows(t, account.ActionPasswordResetRequested)
	require.Len(t, rows, 2)
	require.Equal(t, "", rows[0].actor)
	require.Equal(t, "failure", rows[0].outcome)
	require.Contains(t, rows[0].metadata, "unknown_email")

	// A malformed email is a 422 either way, which says nothing about accounts.
	p := requireProblem(t, b.forgot(t, "not an email"), http.StatusUnprocessableEntity, "invalid")
	require.Contains(t, p.Errors, "email")
}

func TestPasswordResetTokenExpires(t *testing.T) {
	t.Parallel()
	b := setupReset(t)
	b.register(t, "late@example.com", goodPassword)
	require.Equal(t, http.StatusAccepted, b.forgot(t, "late@example.com").Code)
	token := tokenOf(t, b.smtp.WaitFor(t, 1, 15*time.Second)[0])

	b.clock.Advance(account.ResetTokenTTL)
	p := requireProblem(t, b.reset(t, token, newPassword), http.StatusUnprocessableEntity, "invalid")
	require.Contains(t, p.Errors, "token")
	require.Equal(t, http.StatusOK, b.login(t, "late@example.com", goodPassword).Code, "the password is unchanged")
	rows := b.auditRows(t, account.ActionPasswordResetCompleted)
	require.Len(t, rows, 1)
	require.Contains(t, rows[0].metadata, "expired_token")

	for _, bad := range []string{"", "junk", strings.Repeat("A", 43)} {
		requireProblem(t, b.reset(t, bad, newPassword), http.StatusUnprocessableEntity, "invalid")
	}
}

func TestSecondForgotVoidsTheFirstLink(t *testing.T) {
	t.Parallel()
	b := setupReset(t)
	b.register(t, "twice@example.com", goodPassword)
	require.Equal(t, http.StatusAccepted, b.forgot(t, "twice@example.com").Code)
	first := tokenOf(t, b.smtp.WaitFor(t, 1, 15*time.Second)[0])
	require.Equal(t, http.StatusAccepted, b.forgot(t, "twice@example.com").Code)
	second := tokenOf(t, b.smtp.WaitFor(t, 2, 15*time.Second)[1])
	require.NotEqual(t, first, second)

	requireProblem(t, b.reset(t, first, newPassword), http.StatusUnprocessableEntity, "invalid")
	require.Equal(t, http.StatusNoContent, b.reset(t, second, newPassword).Code)
	require.Equal(t, http.StatusOK, b.login(t, "twice@example.com", newPassword).Code)
}

func TestConcurrentResetsWithOneTokenSucceedOnce(t *testing.T) {
	t.Parallel()
	b := setupReset(t)
	b.register(t, "race-reset@example.com", goodPassword)
	require.Equal(t, http.StatusAccepted, b.forgot(t, "race-reset@example.com").Code)
	token := tokenOf(t, b.smtp.WaitFor(t, 1, 15*time.Second)[0])

	const n = 4
	codes := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = b.reset(t, token, newPassword+" "+string(rune('a'+i))).Code
		}()
	}
	wg.Wait()
	ok := 0
	for _, c := range codes {
		if c == http.StatusNoContent {
			ok++
		} else {
			require.Equal(t, http.StatusUnprocessableEntity, c)
		}
	}
	require.Equal(t, 1, ok, "codes %v", codes)
}

// TestForgotPasswordTimingDoesNotTellAccounts: OWASP WSTG-IDNT-04 (account enumeration) and
// ASVS 4.0.3 V2.5.x. A forgot-password request does the same work whether or not the email
// has an account (it queues the request; the lookup, the token and the email come later),
// so the two timing distributions cannot be told apart: a Mann-Whitney U test over
// interleaved requests in random order finds no shift (|z| < 4, p > 6e-5). The old path,
// which stored a token for a known email inside the request, showed a shift of about a
// millisecond, far beyond that.
func TestForgotPasswordTimingDoesNotTellAccounts(t *testing.T) {
	t.Parallel()
	b := setupResetWith(t, resetOpts{noWorker: true})
	b.register(t, "known@example.com", goodPassword)
	timed := func(email string) time.Duration {
		body := jsonBody(t, map[string]string{"email": email})
		req := httptest.NewRequest(http.MethodPost, "/api/auth/password/forgot", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		start := time.Now()
		b.h.ServeHTTP(rec, req)
		d := time.Since(start)
		require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
		return d
	}
	for range 20 { // warm the pool, the caches and the JIT-free paths alike
		timed("known@example.com")
		timed("nobody@example.com")
	}
	const n = 150
	var known, unknown []time.Duration
	for i := range n {
		if i%2 == 0 {
			known = append(known, timed("known@example.com"))
			unknown = append(unknown, timed("nobody@example.com"))
		} else {
			unknown = append(unknown, timed("nobody@example.com"))
			known = append(known, timed("known@example.com"))
		}
	}
	z := mannWhitneyZ(known, unknown)
	t.Logf("forgot-password: known median %s, unknown median %s, Mann-Whitney z = %.2f",
		median(known), median(unknown), z)
	require.Less(t, math.Abs(z), 4.0, "the timing tells registered emails from unknown ones")

	// Nothing was looked up or sent yet; a worker (of any process) then handles the queue:
	// one email, for the known account, however many requests asked.
	require.Empty(t, b.smtp.Messages())
	require.Zero(t, b.count(t, `SELECT count(*) FROM password_reset_tokens`))
	require.Equal(t, 2*(n+20), b.count(t, `SELECT count(*) FROM password_reset_requests`))
	_, err := b.pool.Exec(context.Background(), `DELETE FROM password_reset_requests WHERE ctid NOT IN (
		SELECT ctid FROM password_reset_requests ORDER BY created_at DESC LIMIT 2)`)
	require.NoError(t, err)
	handled, err := b.accounts.HandleResetRequests(context.Background(), 10)
	require.NoError(t, err)
	require.Equal(t, 2, handled)
	b.settle(t)
	msgs := b.smtp.Messages()
	require.Len(t, msgs, 1)
	require.Equal(t, []string{"known@example.com"}, msgs[0].To)
	rows := b.auditRows(t, account.ActionPasswordResetRequested)
	require.Len(t, rows, 2, "both requests are audited when handled")
}

// mannWhitneyZ returns the z score of the Mann-Whitney U statistic of a against b (normal
// approximation, ties ranked by their average).
func mannWhitneyZ(a, b []time.Duration) float64 {
	type obs struct {
		d     time.Duration
		fromA bool
	}
	all := make([]obs, 0, len(a)+len(b))
	for _, d := range a {
		all = append(all, obs{d, true})
	}
	for _, d := range b {
		all = append(all, obs{d, false})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].d < all[j].d })
	var rankA float64
	for i := 0; i < len(all); {
		j := i
		for j < len(all) && all[j].d == all[i].d {
			j++
		}
		rank := float64(i+j+1) / 2 // ranks i+1..j, averaged
		for k := i; k < j; k++ {
			if all[k].fromA {
				rankA += rank
			}
		}
		i = j
	}
	n1, n2 := float64(len(a)), float64(len(b))
	u := rankA - n1*(n1+1)/2
	return (u - n1*n2/2) / math.Sqrt(n1*n2*(n1+n2+1)/12)
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

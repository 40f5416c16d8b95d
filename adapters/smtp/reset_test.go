package smtp_test

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/smtp"
	"github.com/vigilhq/vigil/domain/account"
	"github.com/vigilhq/vigil/emailtpl"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newResetMailer(t *testing.T, b *testBundle, logs *lockedBuffer) *smtp.ResetMailer {
	t.Helper()
	renderer, err := emailtpl.New()
	require.NoError(t, err)
	m, err := smtp.NewResetMailer(renderer, b.sender, smtp.ResetMailerConfig{BaseURL: "https://vigil.example/",
		Logger: zerolog.New(logs), Timeout: 5 * time.Second})
	require.NoError(t, err)
	return m
}

func TestResetMailer(t *testing.T) {
	t.Parallel()
	b := setup(t)
	logs := &lockedBuffer{}
	m := newResetMailer(t, b, logs)
	const token = "tok_abcdefghijklmnopqrstuvwxyz0123456789ABCDE"
	mail := account.ResetMail{UserID: "u1", To: "ann@example.com", Name: "Ann", Token: token, ExpiresIn: time.Hour}

	ctx, cancel := context.WithCancel(context.Background())
	m.SendPasswordReset(ctx, mail)
	cancel() // the request ends at once; delivery goes on
	got := b.server.WaitFor(t, 1, 10*time.Second)
	require.NoError(t, m.Wait(context.Background()))
	assert.Equal(t, []string{"ann@example.com"}, got[0].To)
	assert.Equal(t, "Reset your Vigil password", got[0].Subject)
	assert.Contains(t, got[0].Text, "https://vigil.example/reset-password?token="+token)
	assert.Equal(t, "auto-generated", got[0].Header.Get("Auto-Submitted"))
	assert.Equal(t, "https://vigil.example/reset-password?token=a%2Bb", m.ResetURL("a+b"))

	b.server.RejectNext(550, "no such mailbox")
	m.SendPasswordReset(context.Background(), mail)
	require.NoError(t, m.Wait(context.Background()))
	assert.Contains(t, logs.String(), "password reset email not sent")
	assert.Contains(t, logs.String(), `"user_id":"u1"`)
	assert.NotContains(t, logs.String(), token, "the token is never logged")
}

func TestNewResetMailerNeedsBaseURL(t *testing.T) {
	t.Parallel()
	renderer, err := emailtpl.New()
	require.NoError(t, err)
	sender, err := smtp.NewSender(smtp.Config{URL: "smtp://127.0.0.1:1", From: "vigil@vigil.example"})
	require.NoError(t, err)
	for _, base := range []string{"", "/relative", "vigil.example", "ftp://vigil.example"} {
		_, err := smtp.NewResetMailer(renderer, sender, smtp.ResetMailerConfig{BaseURL: base})
		assert.Error(t, err, base)
	}
}

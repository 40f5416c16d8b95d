package smtp_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/smtp"
	"github.com/vigilhq/vigil/adapters/smtp/smtptest"
	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/emailtpl"
)

const password = "s3cr3t-Pa55"

type testBundle struct {
	server *smtptest.Server
	sender *smtp.Sender
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	server := smtptest.Start(t)
	sender, err := smtp.NewSender(smtp.Config{URL: server.URL(), From: "Vigil <alerts@vigil.example>", HeloName: "vigil.test"})
	require.NoError(t, err)
	return &testBundle{server: server, sender: sender}
}

func message() smtp.Message {
	return smtp.Message{
		To:        "Anna <anna@example.com>",
		Subject:   "Preis über 500 € — condition met",
		Text:      "Hello Anna,\nthe condition is met.\n",
		HTML:      "<p>Hello Anna,</p><p>the condition is <b>met</b>.</p>",
		MessageID: "<ntf_0123456789@vigil>",
		Headers: map[string]string{
			"List-Unsubscribe":      "<https://app.vigil.example/unsubscribe?token=abc.def>",
			"List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
		},
	}
}

func crlfToLF(s string) string { return strings.ReplaceAll(s, "\r\n", "\n") }

func TestSend_Delivers(t *testing.T) {
	t.Parallel()
	b := setup(t)

	require.NoError(t, b.sender.Send(t.Context(), message()))

	got := b.server.WaitFor(t, 1, 5*time.Second)
	require.Len(t, got, 1)
	rec := got[0]
	assert.Equal(t, "alerts@vigil.example", rec.From)
	assert.Equal(t, []string{"anna@example.com"}, rec.To)
	assert.Equal(t, "Preis über 500 € — condition met", rec.Subject)
	assert.Equal(t, "<ntf_0123456789@vigil>", rec.Header.Get("Message-ID"))
	assert.Contains(t, rec.Header.Get("From"), "alerts@vigil.example")
	assert.Contains(t, rec.Header.Get("To"), "anna@example.com")
	assert.NotEmpty(t, rec.Header.Get("Date"))
	assert.Equal(t, "<https://app.vigil.example/unsubscribe?token=abc.def>", rec.Header.Get("List-Unsubscribe"))
	assert.Equal(t, "List-Unsubscribe=One-Click", rec.Header.Get("List-Unsubscribe-Post"))
	assert.True(t, strings.HasPrefix(rec.Header.Get("Content-Type"), "multipart/alternative"), rec.Header.Get("Content-Type"))
	assert.Equal(t, "Hello Anna,\nthe condition is met.\n", crlfToLF(rec.Text))
	assert.Equal(t, "<p>Hello Anna,</p><p>the condition is <b>met</b>.</p>", rec.HTML)
	assert.Empty(t, rec.AuthUser)
}

func TestSend_RenderedEmailSurvivesTransport(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r, err := emailtpl.New()
	require.NoError(t, err)
	email, err := r.StateChanged(emailtpl.StateChanged{
		RecipientName: "Anna", MonitorName: "Price watch <fast>", Prompt: "Below 500 EUR?",
		From: emailtpl.StateInactive, To: emailtpl.StateActive,
		Explanation: "The price is 479 EUR.", Facts: []emailtpl.FactLine{{Key: "price", Value: "479", Unit: "EUR"}},
		ChangedAt: time.Date(2026, 3, 3, 13, 5, 0, 0, time.UTC), Timezone: "Europe/Berlin",
		MonitorURL: "https://app.vigil.example/monitors/m_1", UnsubscribeURL: "https://app.vigil.example/u?t=x",
	})
	require.NoError(t, err)

	require.NoError(t, b.sender.Send(t.Context(), smtp.Message{
		To: "anna@example.com", Subject: email.Subject, HTML: email.HTML, Text: email.Text,
	}))

	rec := b.server.WaitFor(t, 1, 5*time.Second)[0]
	assert.Equal(t, email.Subject, rec.Subject)
	assert.Equal(t, email.HTML, crlfToLF(rec.HTML))
	assert.Equal(t, email.Text, crlfToLF(rec.Text))
	assert.NotEmpty(t, rec.Header.Get("Message-ID"), "a Message-ID is generated when none is given")
}

func TestSend_OnlyOnePart(t *testing.T) {
	t.Parallel()
	b := setup(t)

	m := message()
	m.HTML = ""
	require.NoError(t, b.sender.Send(t.Context(), m))
	rec := b.server.WaitFor(t, 1, 5*time.Second)[0]
	assert.True(t, strings.HasPrefix(rec.Header.Get("Content-Type"), "text/plain"), rec.Header.Get("Content-Type"))
	assert.Equal(t, "Hello Anna,\nthe condition is met.\n", crlfToLF(rec.Text))
	assert.Empty(t, rec.HTML)
}

func TestSend_Rejections(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name     string
		code     int
		wantCode string
	}{
		{"permanent", 550, domain.EINVALID},
		{"permanent policy", 554, domain.EINVALID},
		{"transient", 451, domain.EUNAVAILABLE},
		{"transient full", 452, domain.EUNAVAILABLE},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.server.RejectNext(tt.code, "No thanks")

			err := b.sender.Send(t.Context(), message())
			require.Error(t, err)
			assert.Equal(t, tt.wantCode, domain.ErrorCode(err), err.Error())
			assert.Contains(t, domain.ErrorMessage(err), "mail server")
			assert.Empty(t, b.server.Messages(), "a rejected message is not recorded")

			// Only the next DATA is rejected; the server accepts the retry.
			require.NoError(t, b.sender.Send(t.Context(), message()))
			assert.Len(t, b.server.WaitFor(t, 1, 5*time.Second), 1)
		})
	}
}

func TestSend_ConnectionRefused(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())

	sender, err := smtp.NewSender(smtp.Config{URL: "smtp://" + addr, From: "alerts@vigil.example"})
	require.NoError(t, err)

	err = sender.Send(t.Context(), message())
	require.Error(t, err)
	assert.Equal(t, domain.EUNAVAILABLE, domain.ErrorCode(err), err.Error())
	assert.ErrorIs(t, err, domain.ErrUnavailable)
}

// silentServer accepts connections and never says a word, like a stuck relay.
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				_ = c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
	})
	return ln.Addr().String()
}

func TestSend_Timeout(t *testing.T) {
	t.Parallel()
	addr := silentServer(t)

	sender, err := smtp.NewSender(smtp.Config{URL: "smtp://" + addr, From: "alerts@vigil.example", Timeout: 200 * time.Millisecond})
	require.NoError(t, err)

	err = sender.Send(t.Context(), message())
	require.Error(t, err)
	assert.Equal(t, domain.EUNAVAILABLE, domain.ErrorCode(err), err.Error())
}

func TestSend_ContextEnds(t *testing.T) {
	t.Parallel()
	addr := silentServer(t)

	sender, err := smtp.NewSender(smtp.Config{URL: "smtp://" + addr, From: "alerts@vigil.example", Timeout: time.Minute})
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = sender.Send(ctx, message())
	require.Error(t, err)
	assert.Less(t, time.Since(start), 10*time.Second, "Send must not wait for the SMTP timeout once ctx ends")
	assert.Equal(t, domain.EUNAVAILABLE, domain.ErrorCode(err), err.Error())
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestSend_Auth(t *testing.T) {
	t.Parallel()

	t.Run("ok", func(t *testing.T) {
		t.Parallel()
		server := smtptest.Start(t)
		server.RequireAuth("mailer", password)
		sender, err := smtp.NewSender(smtp.Config{URL: "smtp://mailer:" + password + "@" + server.Addr(), From: "alerts@vigil.example"})
		require.NoError(t, err)

		require.NoError(t, sender.Send(t.Context(), message()))
		assert.Equal(t, "mailer", server.WaitFor(t, 1, 5*time.Second)[0].AuthUser)
	})

	t.Run("wrong password", func(t *testing.T) {
		t.Parallel()
		server := smtptest.Start(t)
		server.RequireAuth("mailer", "other")
		sender, err := smtp.NewSender(smtp.Config{URL: "smtp://mailer:" + password + "@" + server.Addr(), From: "alerts@vigil.example"})
		require.NoError(t, err)

		err = sender.Send(t.Context(), message())
		require.Error(t, err)
		assert.Equal(t, domain.EUNAVAILABLE, domain.ErrorCode(err), err.Error())
		assert.NotContains(t, err.Error(), password)
		assert.Empty(t, server.Messages())
	})

	t.Run("no credentials", func(t *testing.T) {
		t.Parallel()
		server := smtptest.Start(t)
		server.RequireAuth("mailer", password)
		sender, err := smtp.NewSender(smtp.Config{URL: server.URL(), From: "alerts@vigil.example"})
		require.NoError(t, err)

		err = sender.Send(t.Context(), message())
		require.Error(t, err)
		assert.Equal(t, domain.EINVALID, domain.ErrorCode(err), "530/502 to MAIL FROM is a 5xx reply: %v", err)
	})
}

func TestSend_InvalidMessage(t *testing.T) {
	t.Parallel()
	b := setup(t)

	tests := []struct {
		name  string
		edit  func(*smtp.Message)
		field string
	}{
		{"bad to", func(m *smtp.Message) { m.To = "not an address" }, "to"},
		{"two recipients", func(m *smtp.Message) { m.To = "a@example.com, b@example.com" }, "to"},
		{"subject injection", func(m *smtp.Message) { m.Subject = "hi\r\nBcc: x@example.com" }, "subject"},
		{"no body", func(m *smtp.Message) { m.Text, m.HTML = "", "" }, "body"},
		{"bad message id", func(m *smtp.Message) { m.MessageID = "<no at sign>" }, "message_id"},
		{"header injection", func(m *smtp.Message) { m.Headers["X-Evil"] = "a\r\nBcc: x@example.com" }, "headers.X-Evil"},
		{"reserved header", func(m *smtp.Message) { m.Headers["message-id"] = "<x@y>" }, "headers.message-id"},
		{"bad header name", func(m *smtp.Message) { m.Headers["Bad Name:"] = "x" }, "headers.Bad Name:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := message()
			tt.edit(&m)
			err := b.sender.Send(t.Context(), m)
			require.Error(t, err)
			var derr *domain.Error
			require.True(t, errors.As(err, &derr), err.Error())
			assert.Equal(t, domain.EINVALID, derr.Code)
			assert.Contains(t, derr.Fields, tt.field)
		})
	}
}

func TestNewSender(t *testing.T) {
	t.Parallel()

	valid := []string{
		"smtp://localhost",
		"smtp://127.0.0.1:1025",
		"smtps://user:p%40ss@smtp.example.com",
		"smtp://apikey:" + password + "@smtp.sendgrid.net:587?auth=login",
		"smtp://[::1]:25/",
	}
	for _, u := range valid {
		_, err := smtp.NewSender(smtp.Config{URL: u, From: "alerts@vigil.example"})
		assert.NoError(t, err, u)
	}

	invalid := []struct {
		cfg  smtp.Config
		want string
	}{
		{smtp.Config{From: "alerts@vigil.example"}, "URL is required"},
		{smtp.Config{URL: "http://user:" + password + "@host", From: "alerts@vigil.example"}, "must start with smtp:// or smtps://"},
		{smtp.Config{URL: "smtp://", From: "alerts@vigil.example"}, "has no host"},
		{smtp.Config{URL: "smtp://u:" + password + "@host:99999", From: "alerts@vigil.example"}, "invalid port"},
		{smtp.Config{URL: "smtp://host:25/inbox", From: "alerts@vigil.example"}, "must not have a path"},
		{smtp.Config{URL: "smtp://u:" + password + "@host?auth=xoauth2", From: "alerts@vigil.example"}, "auth must be"},
		{smtp.Config{URL: "smtp://host?auth=plain", From: "alerts@vigil.example"}, "has no user"},
		{smtp.Config{URL: "smtp://host?tls=off", From: "alerts@vigil.example"}, "unknown parameter"},
		{smtp.Config{URL: "smtp://u:" + password + "%zz@host", From: "alerts@vigil.example"}, "invalid percent-escape"},
		{smtp.Config{URL: "smtp://u:" + password + "@host:port", From: "alerts@vigil.example"}, "URL is invalid"},
		{smtp.Config{URL: "smtp://host"}, "from address is required"},
		{smtp.Config{URL: "smtp://host", From: "not an address"}, "from address"},
		{smtp.Config{URL: "smtp://host", From: "a@example.com", Timeout: -time.Second}, "timeout"},
		{smtp.Config{URL: "smtp://host", From: "a@example.com", HeloName: "two words"}, "helo"},
	}
	for _, tt := range invalid {
		_, err := smtp.NewSender(tt.cfg)
		if assert.Error(t, err, tt.cfg.URL) {
			assert.Contains(t, err.Error(), tt.want)
			assert.NotContains(t, err.Error(), password, "the password must never appear in errors")
		}
	}

	// Every problem is reported at once.
	_, err := smtp.NewSender(smtp.Config{URL: "ftp://host", From: "nope", Timeout: -1})
	require.Error(t, err)
	for _, want := range []string{"smtp://", "from address", "timeout"} {
		assert.Contains(t, err.Error(), want)
	}
}

func TestSend_ReusesConnection(t *testing.T) {
	t.Parallel()
	b := setup(t)

	for i := range 5 {
		require.NoError(t, b.sender.Send(t.Context(), message()), "send %d", i)
	}
	assert.Len(t, b.server.WaitFor(t, 5, 5*time.Second), 5)
	assert.Equal(t, 1, b.server.Connections(), "five emails in a row share one connection")
}

func TestSend_RedialsDroppedConnection(t *testing.T) {
	t.Parallel()
	b := setup(t)

	require.NoError(t, b.sender.Send(t.Context(), message()))
	b.server.WaitFor(t, 1, 5*time.Second)
	b.server.DropConnections() // the relay hangs up on an idle client

	require.NoError(t, b.sender.Send(t.Context(), message()), "a dropped idle connection is replaced, not reported")
	assert.Len(t, b.server.WaitFor(t, 2, 5*time.Second), 2, "each email arrives once")
	assert.Equal(t, 2, b.server.Connections())
}

func TestSend_KeepsConnectionAfterRejection(t *testing.T) {
	t.Parallel()
	b := setup(t)

	b.server.RejectNext(451, "Try again later")
	err := b.sender.Send(t.Context(), message())
	require.Error(t, err)
	assert.Equal(t, domain.EUNAVAILABLE, domain.ErrorCode(err))
	require.NoError(t, b.sender.Send(t.Context(), message()))
	assert.Len(t, b.server.WaitFor(t, 1, 5*time.Second), 1)
	assert.Equal(t, 1, b.server.Connections(), "a relay that answered left the connection usable")
}

func TestSend_BoundsConnections(t *testing.T) {
	t.Parallel()
	server := smtptest.Start(t)
	sender, err := smtp.NewSender(smtp.Config{URL: server.URL(), From: "alerts@vigil.example", MaxConns: 2})
	require.NoError(t, err)

	const n = 20
	errs := make(chan error, n)
	for range n {
		go func() { errs <- sender.Send(t.Context(), message()) }()
	}
	for range n {
		require.NoError(t, <-errs)
	}
	assert.Len(t, server.WaitFor(t, n, 5*time.Second), n)
	assert.LessOrEqual(t, server.Connections(), 2, "never more connections than MaxConns")
	sender.Close()
}

func TestSend_NoIdleConnections(t *testing.T) {
	t.Parallel()
	server := smtptest.Start(t)
	sender, err := smtp.NewSender(smtp.Config{URL: server.URL(), From: "alerts@vigil.example", IdleTimeout: -1})
	require.NoError(t, err)

	for range 3 {
		require.NoError(t, sender.Send(t.Context(), message()))
	}
	server.WaitFor(t, 3, 5*time.Second)
	assert.Equal(t, 3, server.Connections(), "a negative idle timeout keeps no connection")
}

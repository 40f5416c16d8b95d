package smtptest_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/smtp/smtptest"
)

func send(t *testing.T, s *smtptest.Server, raw string) error {
	t.Helper()
	raw = strings.ReplaceAll(raw, "\n", "\r\n")
	c, err := gosmtp.Dial(s.Addr()) // plain SMTP: the package-level SendMail insists on STARTTLS
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SendMail("from@example.com", []string{"a@example.com", "b@example.com"}, strings.NewReader(raw)); err != nil {
		return err
	}
	return c.Quit()
}

func TestServer_DecodesNestedBase64Multipart(t *testing.T) {
	t.Parallel()
	s := smtptest.Start(t)
	assert.True(t, strings.HasPrefix(s.URL(), "smtp://127.0.0.1:"))

	raw := `From: from@example.com
To: a@example.com
Subject: =?UTF-8?q?Gr=C3=BC=C3=9Fe?=
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

--outer
Content-Type: multipart/alternative; boundary="inner"

--inner
Content-Type: text/plain; charset=UTF-8
Content-Transfer-Encoding: base64

SGVsbG8sIHdvcmxkIQ==
--inner
Content-Type: text/html; charset=UTF-8
Content-Transfer-Encoding: quoted-printable

<p style=3D"color:red">Hello</p>
--inner--
--outer--
`
	require.NoError(t, send(t, s, raw))

	rec := s.WaitFor(t, 1, 5*time.Second)[0]
	assert.Equal(t, "from@example.com", rec.From)
	assert.Equal(t, []string{"a@example.com", "b@example.com"}, rec.To)
	assert.Equal(t, "Grüße", rec.Subject)
	assert.Equal(t, "Hello, world!", rec.Text)
	assert.Equal(t, `<p style="color:red">Hello</p>`, strings.TrimSpace(rec.HTML))
	assert.Contains(t, string(rec.Data), "Content-Type: multipart/mixed")
}

func TestServer_RejectNextQueues(t *testing.T) {
	t.Parallel()
	s := smtptest.Start(t)
	s.RejectNext(550, "first")
	s.RejectNext(451, "second")

	msg := "Subject: x\n\nbody\n"
	err := send(t, s, msg)
	var smtpErr *gosmtp.SMTPError
	require.ErrorAs(t, err, &smtpErr)
	assert.Equal(t, 550, smtpErr.Code)

	err = send(t, s, msg)
	require.ErrorAs(t, err, &smtpErr)
	assert.Equal(t, 451, smtpErr.Code)

	require.NoError(t, send(t, s, msg))
	assert.Len(t, s.Messages(), 1)
}

func TestServer_WaitForConcurrentSenders(t *testing.T) {
	t.Parallel()
	s := smtptest.Start(t)

	const n = 8
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			assert.NoError(t, send(t, s, "Subject: hi\n\nbody\n"))
		})
	}
	got := s.WaitFor(t, n, 10*time.Second)
	wg.Wait()
	assert.Len(t, got, n)
	for _, r := range got {
		assert.Equal(t, "hi", r.Subject)
		assert.Equal(t, "body\r\n", r.Text)
	}
}

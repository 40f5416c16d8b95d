// Package smtp sends email through any SMTP relay (SendGrid, SES, Postmark, Mailpit locally)
// with github.com/wneessen/go-mail, and maps delivery failures to domain error codes: a
// permanent rejection is EINVALID (do not retry), anything transient is EUNAVAILABLE (retry).
package smtp

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	netmail "net/mail"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/wneessen/go-mail"

	"github.com/vigilhq/vigil/domain"
)

// Defaults for Config.
const (
	// TimeoutDefault bounds one Send: connecting, the SMTP dialogue and the upload.
	TimeoutDefault = 30 * time.Second
	// PortDefault is used for smtp:// URLs without a port (message submission, RFC 6409).
	PortDefault = 587
	// PortSSLDefault is used for smtps:// URLs without a port (implicit TLS, RFC 8314).
	PortSSLDefault = 465
	// MaxConnsDefault bounds the connections one Sender keeps open to the relay.
	MaxConnsDefault = 16
	// IdleTimeoutDefault is how long an idle connection is kept; relays commonly drop
	// idle clients after a minute or more (RFC 5321 §4.5.3.2 asks servers for 5 minutes).
	IdleTimeoutDefault = 30 * time.Second
)

// Config configures a Sender.
type Config struct {
	// URL is smtp://[user:password@]host[:port] or smtps://[user:password@]host[:port].
	// smtp:// upgrades to TLS with STARTTLS when the server offers it; smtps:// speaks TLS from
	// the start. Without user info the Sender does not authenticate. With it, the Sender uses
	// AUTH PLAIN, which go-mail refuses over an unencrypted connection except to localhost;
	// the query parameter auth=login or auth=cram-md5 picks another mechanism.
	// Special characters in user or password must be percent-encoded.
	URL string
	// From is the sender address, such as "Vigil <alerts@vigil.example>".
	From string
	// Timeout bounds one Send; zero means TimeoutDefault.
	Timeout time.Duration
	// HeloName is the name sent with EHLO; empty means the local host name.
	HeloName string
	// MaxConns bounds the connections open to the relay at once; a Send beyond it waits
	// for one to come free. Zero means MaxConnsDefault.
	MaxConns int
	// IdleTimeout is how long an unused connection is kept for the next Send; zero means
	// IdleTimeoutDefault, and a negative value keeps none (a connection per Send).
	IdleTimeout time.Duration
}

// Sender delivers email over SMTP and is safe for concurrent use. It keeps up to MaxConns
// connections open and reuses an idle one for the next Send, which saves the greeting,
// EHLO, STARTTLS and AUTH of a new connection for every email.
type Sender struct {
	pool *pool

	host     string
	port     int
	ssl      bool
	user     string
	password string
	authType mail.SMTPAuthType
	from     *netmail.Address
	timeout  time.Duration
	helo     string
}

// authType returns the go-mail mechanism the auth query parameter names.
func authType(name string) (mail.SMTPAuthType, bool) {
	switch strings.ToLower(name) {
	case "plain":
		return mail.SMTPAuthPlain, true
	case "login":
		return mail.SMTPAuthLogin, true
	case "cram-md5":
		return mail.SMTPAuthCramMD5, true
	}
	return "", false
}

// NewSender validates cfg and returns a Sender. The error lists every invalid setting and
// never contains the password.
func NewSender(cfg Config) (*Sender, error) {
	s := &Sender{timeout: cfg.Timeout, helo: cfg.HeloName}
	var problems []string
	problems = append(problems, s.parseURL(cfg.URL)...)

	if strings.TrimSpace(cfg.From) == "" {
		problems = append(problems, "from address is required")
	} else if from, err := netmail.ParseAddress(cfg.From); err != nil {
		problems = append(problems, fmt.Sprintf("from address %q is invalid: %v", cfg.From, err))
	} else {
		s.from = from
	}

	switch {
	case cfg.Timeout < 0:
		problems = append(problems, "timeout must not be negative")
	case cfg.Timeout == 0:
		s.timeout = TimeoutDefault
	}
	if strings.ContainsAny(cfg.HeloName, " \t\r\n") {
		problems = append(problems, "helo name must be a single word")
	}
	if cfg.MaxConns < 0 {
		problems = append(problems, "max connections must not be negative")
	}

	if len(problems) > 0 {
		return nil, fmt.Errorf("smtp sender config: %s", strings.Join(problems, "; "))
	}
	idle := cfg.IdleTimeout
	if idle == 0 {
		idle = IdleTimeoutDefault
	}
	s.pool = newPool(cmp.Or(cfg.MaxConns, MaxConnsDefault), idle, time.Now)
	return s, nil
}

// parseURL fills the connection settings of s from raw and returns what is wrong with it.
// Messages quote the URL only in redacted form.
func (s *Sender) parseURL(raw string) []string {
	if strings.TrimSpace(raw) == "" {
		return []string{"URL is required"}
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error quotes the whole URL, password included; report only the cause, and not
		// even that for a bad percent-escape, which may be a piece of the password.
		var escErr url.EscapeError
		if errors.As(err, &escErr) {
			return []string{"URL contains an invalid percent-escape"}
		}
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return []string{fmt.Sprintf("URL is invalid: %v", err)}
	}
	redacted := u.Redacted()

	var problems []string
	switch u.Scheme {
	case "smtp":
		s.port = PortDefault
	case "smtps":
		s.ssl, s.port = true, PortSSLDefault
	default:
		problems = append(problems, fmt.Sprintf("URL %q must start with smtp:// or smtps://", redacted))
	}
	if s.host = u.Hostname(); s.host == "" {
		problems = append(problems, fmt.Sprintf("URL %q has no host", redacted))
	}
	if p := u.Port(); p != "" {
		port, err := strconv.Atoi(p)
		if err != nil || port < 1 || port > 65535 {
			problems = append(problems, fmt.Sprintf("URL %q has an invalid port", redacted))
		}
		s.port = port
	}
	if u.Path != "" && u.Path != "/" {
		problems = append(problems, fmt.Sprintf("URL %q must not have a path", redacted))
	}

	q := u.Query()
	for k := range q {
		if k != "auth" {
			problems = append(problems, fmt.Sprintf("URL %q has unknown parameter %q", redacted, k))
		}
	}
	if u.User != nil && u.User.Username() != "" {
		s.user = u.User.Username()
		s.password, _ = u.User.Password()
		s.authType = mail.SMTPAuthPlain
		if a := q.Get("auth"); a != "" {
			t, ok := authType(a)
			if !ok {
				problems = append(problems, fmt.Sprintf("URL %q: auth must be plain, login or cram-md5", redacted))
			}
			s.authType = t
		}
	} else if q.Has("auth") {
		problems = append(problems, fmt.Sprintf("URL %q sets auth but has no user", redacted))
	}
	return problems
}

// Message is one email to one recipient.
type Message struct {
	To      string
	Subject string
	HTML    string
	Text    string
	// MessageID becomes the Message-ID header, such as "<notification-id@vigil>", so that a
	// re-sent notification is recognisable. Empty means a random one.
	MessageID string
	// Headers are extra headers such as List-Unsubscribe and List-Unsubscribe-Post. They may
	// not replace the headers Send sets itself (From, To, Subject, Message-ID, Date, MIME).
	Headers map[string]string
}

// reservedHeader reports whether Send or go-mail sets the header, so that it may not come
// from Message.Headers.
func reservedHeader(name string) bool {
	switch textproto.CanonicalMIMEHeaderKey(name) {
	case "From", "To", "Cc", "Bcc", "Subject", "Message-Id", "Date", "Mime-Version",
		"Content-Type", "Content-Transfer-Encoding":
		return true
	}
	return false
}

// Send delivers m as multipart/alternative with a text and an HTML part (or just the one
// given). It returns a *domain.Error with code
//   - EINVALID if m is malformed or the server rejects it permanently (5xx reply),
//   - EUNAVAILABLE if the server cannot be reached, fails the connection set-up (greeting,
//     TLS, login), replies 4xx, times out, or ctx ends; errors.Is reports ctx's error then.
//
// Error messages are safe to show to users and never contain credentials.
func (s *Sender) Send(ctx context.Context, m Message) error {
	msg, err := s.buildMsg(m)
	if err != nil {
		return err
	}
	if err := s.pool.acquire(ctx); err != nil {
		return unavailable(ctx, fmt.Errorf("wait for a connection to %s: %w", s.addr(), err))
	}
	defer s.pool.release()

	// An idle connection may have been dropped by the relay meanwhile. That shows at MAIL
	// FROM, the first command of a message, as a broken connection or a 421 (closing): the
	// message is then retried once on a new connection. Nothing of it has been sent, so the
	// retry cannot duplicate it; and no NOOP round trip is spent checking every reuse.
	for reused := true; ; {
		c := s.pool.take()
		if c == nil {
			reused = false
			if c, err = s.connect(ctx); err != nil {
				return err
			}
		}
		err := c.send(ctx, msg)
		var se *mail.SendError
		isSendErr := errors.As(err, &se)
		switch {
		case err == nil:
			s.pool.put(c)
			return nil
		case msg.IsDelivered():
			// The relay accepted the message; only the RSET after it failed. Sending it
			// again would duplicate it.
			c.close()
			return nil
		case reused && isSendErr && staleConn(se) && ctx.Err() == nil:
			c.close()
			continue
		}
		if isSendErr && se.ErrorCode() >= 400 && se.ErrorCode() != 421 && ctx.Err() == nil {
			// The relay answered: the connection is sound (go-mail sent RSET) and worth keeping.
			s.pool.put(c)
		} else {
			c.close()
		}
		return sendError(ctx, fmt.Errorf("send mail to %s via %s: %w", m.To, s.addr(), err))
	}
}

// staleConn reports whether a send failed because the connection it reused was gone: a
// failed connection check, or MAIL FROM answered by a broken connection or 421.
func staleConn(se *mail.SendError) bool {
	switch se.Reason {
	case mail.ErrConnCheck:
		return true
	case mail.ErrSMTPMailFrom:
		return se.ErrorCode() == 0 || se.ErrorCode() == 421
	}
	return false
}

// connect opens a new connection to the relay: greeting, EHLO, STARTTLS and AUTH.
func (s *Sender) connect(ctx context.Context) (*conn, error) {
	c := &conn{}
	// go-mail honours ctx only while dialling. Closing the connection when ctx ends makes
	// its blocking reads and writes return, so a cancelled Send does not wait for the timeout.
	stop := func() bool { return false }
	dial := func(dctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := s.dial(dctx, network, addr)
		if err != nil {
			return nil, err
		}
		c.raw = nc
		stop = context.AfterFunc(ctx, func() { _ = nc.Close() })
		return nc, nil
	}
	client, err := mail.NewClient(s.host, s.clientOptions(dial)...)
	if err != nil {
		return nil, &domain.Error{Code: domain.EINTERNAL, Message: "Could not set up the mail client.", Err: fmt.Errorf("new smtp client: %w", err)}
	}
	smtpConn, err := client.DialToSMTPClientWithContext(ctx)
	stop()
	if err != nil {
		if c.raw != nil {
			_ = c.raw.Close()
		}
		return nil, unavailable(ctx, fmt.Errorf("connect to smtp server %s: %w", s.addr(), err))
	}
	c.client, c.smtp = client, smtpConn
	return c, nil
}

func (s *Sender) addr() string { return net.JoinHostPort(s.host, strconv.Itoa(s.port)) }

// dial connects to the server, with implicit TLS for smtps:// URLs.
func (s *Sender) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{}
	if !s.ssl {
		return d.DialContext(ctx, network, addr)
	}
	td := &tls.Dialer{NetDialer: d, Config: &tls.Config{ServerName: s.host, MinVersion: tls.VersionTLS12}}
	return td.DialContext(ctx, network, addr)
}

func (s *Sender) clientOptions(dial mail.DialContextFunc) []mail.Option {
	opts := []mail.Option{
		mail.WithoutNoop(),
		mail.WithPort(s.port),
		mail.WithTimeout(s.timeout),
		mail.WithDialContextFunc(dial),
	}
	if s.ssl {
		// dial already speaks TLS; WithSSL stops go-mail from trying STARTTLS on top.
		opts = append(opts, mail.WithSSL())
	} else {
		opts = append(opts, mail.WithTLSPolicy(mail.TLSOpportunistic))
	}
	if s.helo != "" {
		opts = append(opts, mail.WithHELO(s.helo))
	}
	if s.user != "" {
		opts = append(opts, mail.WithSMTPAuth(s.authType), mail.WithUsername(s.user), mail.WithPassword(s.password))
	}
	return opts
}

// buildMsg validates m and turns it into a go-mail message.
func (s *Sender) buildMsg(m Message) (*mail.Msg, error) {
	fields := map[string]string{}
	to, err := netmail.ParseAddress(m.To)
	if err != nil {
		fields["to"] = "must be one valid email address"
	}
	if strings.ContainsAny(m.Subject, "\r\n") {
		fields["subject"] = "must be a single line"
	}
	if m.Text == "" && m.HTML == "" {
		fields["body"] = "needs a text or an HTML part"
	}
	msgID := strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(m.MessageID), "<"), ">")
	if m.MessageID != "" && !validMessageID(msgID) {
		fields["message_id"] = "must look like <id@domain>"
	}
	for k, v := range m.Headers {
		switch {
		case !validHeaderName(k):
			fields["headers."+k] = "is not a valid header name"
		case reservedHeader(k):
			fields["headers."+k] = "is set by the sender and may not be overridden"
		case strings.ContainsAny(v, "\r\n"):
			fields["headers."+k] = "must be a single line"
		}
	}
	if len(fields) > 0 {
		return nil, &domain.Error{Code: domain.EINVALID, Message: "Invalid email message.", Fields: fields}
	}

	msg := mail.NewMsg(mail.WithNoDefaultUserAgent())
	msg.FromMailAddress(s.from)
	msg.ToMailAddress(to)
	msg.Subject(m.Subject)
	msg.SetDate()
	if msgID != "" {
		msg.SetMessageIDWithValue(msgID)
	} else {
		msg.SetMessageID()
	}
	for k, v := range m.Headers {
		msg.SetGenHeader(mail.Header(k), v)
	}
	switch {
	case m.Text != "" && m.HTML != "":
		msg.SetBodyString(mail.TypeTextPlain, m.Text)
		msg.AddAlternativeString(mail.TypeTextHTML, m.HTML)
	case m.Text != "":
		msg.SetBodyString(mail.TypeTextPlain, m.Text)
	default:
		msg.SetBodyString(mail.TypeTextHTML, m.HTML)
	}
	return msg, nil
}

// validMessageID accepts id-left@id-right (RFC 5322 msg-id) without the angle brackets,
// leniently: printable ASCII without spaces or brackets.
func validMessageID(id string) bool {
	left, right, ok := strings.Cut(id, "@")
	if !ok || left == "" || right == "" {
		return false
	}
	for _, r := range id {
		if r <= ' ' || r > '~' || r == '<' || r == '>' {
			return false
		}
	}
	return true
}

// validHeaderName accepts letters, digits and hyphens, which covers every header Vigil sets.
func validHeaderName(name string) bool {
	if name == "" || len(name) > 76 {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

// sendError classifies a failure in the SMTP transaction (MAIL, RCPT, DATA): a 5xx reply is
// permanent, anything else is worth retrying.
func sendError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return unavailable(ctx, err)
	}
	var se *mail.SendError
	if errors.As(err, &se) {
		code := se.ErrorCode()
		switch {
		case code >= 500 && code < 600:
			return &domain.Error{Code: domain.EINVALID, Message: fmt.Sprintf("The mail server rejected the message (SMTP %d).", code), Err: err}
		case code >= 400 && code < 500:
			return &domain.Error{Code: domain.EUNAVAILABLE, Message: fmt.Sprintf("The mail server deferred the message (SMTP %d); try again later.", code), Err: err}
		}
	}
	return unavailable(ctx, err)
}

// Reply returns the SMTP reply code and text a failed Send got from the server; 0 and ""
// when none came (the server could not be reached, the connection broke, the message was
// invalid).
func Reply(err error) (int, string) {
	var se *mail.SendError
	if errors.As(err, &se) && se.ErrorCode() != 0 {
		text := strings.TrimSpace(se.Error())
		if len(text) > 300 {
			text = text[:300]
		}
		return se.ErrorCode(), text
	}
	return 0, ""
}

// unavailable wraps err as EUNAVAILABLE, keeping ctx's error visible to errors.Is.
func unavailable(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return &domain.Error{Code: domain.EUNAVAILABLE, Message: "Sending the email was cancelled.", Err: fmt.Errorf("%w: %w", ctxErr, err)}
	}
	return &domain.Error{Code: domain.EUNAVAILABLE, Message: "The mail server is unavailable; try again later.", Err: err}
}

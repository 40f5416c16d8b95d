// Package smtptest runs an in-process SMTP server that records the messages it receives,
// for tests in any package that sends email.
package smtptest

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Received is one message the server accepted.
type Received struct {
	// From and To are the envelope sender and recipients (MAIL FROM, RCPT TO).
	From string
	To   []string
	// Data is the raw message as sent after DATA.
	Data []byte
	// AuthUser is the user name the client logged in with, "" without AUTH.
	AuthUser string
	// Subject is the decoded Subject header.
	Subject string
	// Header holds the parsed message header; Header.Get is case-insensitive.
	Header mail.Header
	// Text and HTML are the decoded text/plain and text/html parts, found best effort in
	// single-part and (nested) multipart messages.
	Text string
	HTML string
	// At is when the server accepted the message.
	At time.Time
}

// Server is an SMTP server on 127.0.0.1 without TLS. It is safe for concurrent use.
type Server struct {
	srv  *smtp.Server
	addr string

	mu        sync.Mutex
	msgs      []Received
	parsed    int           // msgs[:parsed] have their header and parts decoded
	arrived   chan struct{} // closed and replaced whenever a message arrives
	rejects   []*smtp.SMTPError
	rejectAll *smtp.SMTPError // an outage: every DATA is answered with it
	authUser  string
	authPass  string
	stalls    int // DATA commands still to stall
	stallFor  time.Duration
	stalled   chan struct{}           // receives when a DATA stalls
	opened    int                     // connections accepted so far
	live      map[*smtp.Conn]struct{} // connections open now
}

// Start starts a server listening on 127.0.0.1:0. It is closed in t.Cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	s, stop, err := Listen()
	if err != nil {
		t.Fatalf("smtptest: %v", err)
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("smtptest: serve: %v", err)
		}
	})
	return s
}

// Listen starts a server listening on 127.0.0.1:0 outside a test (vigil bench); stop
// closes it and returns the error serving ended with, if any.
func Listen() (s *Server, stop func() error, err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, fmt.Errorf("listen: %w", err)
	}
	s = &Server{addr: ln.Addr().String(), arrived: make(chan struct{}), live: map[*smtp.Conn]struct{}{}}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		s.mu.Lock()
		s.opened++
		s.live[c] = struct{}{}
		s.mu.Unlock()
		return &session{s: s, conn: c}, nil
	}))
	s.srv.Domain = "smtptest.localhost"
	s.srv.AllowInsecureAuth = true
	s.srv.ReadTimeout = 30 * time.Second
	s.srv.WriteTimeout = 30 * time.Second
	s.srv.MaxMessageBytes = 10 << 20

	done := make(chan error, 1)
	go func() {
		err := s.srv.Serve(ln)
		if errors.Is(err, smtp.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
			err = nil
		}
		done <- err
	}()
	stop = func() error {
		_ = s.srv.Close()
		// Close the listener too: a server closed before Serve registered it would otherwise
		// wait for connections forever.
		_ = ln.Close()
		return <-done
	}
	return s, stop, nil
}

// Addr returns the server's host:port.
func (s *Server) Addr() string { return s.addr }

// URL returns the server's address as "smtp://127.0.0.1:<port>".
func (s *Server) URL() string { return "smtp://" + s.addr }

// RequireAuth makes the server advertise AUTH PLAIN and refuse mail from clients that did
// not log in with user and password.
func (s *Server) RequireAuth(user, password string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.authUser, s.authPass = user, password
}

// RejectNext makes the server answer the next DATA with code and msg, such as 550 (permanent)
// or 451 (transient), instead of accepting the message. Calls queue up: each rejects one DATA.
func (s *Server) RejectNext(code int, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rejects = append(s.rejects, &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCodeNotSet, Message: msg})
}

// RejectAll makes the server answer every DATA with code and msg until RejectAll(0, "")
// turns it off: an outage of the relay.
func (s *Server) RejectAll(code int, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rejectAll = nil
	if code != 0 {
		s.rejectAll = &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCodeNotSet, Message: msg}
	}
}

// StallNext makes the server take the next n messages and then answer nothing for d, as a
// relay that hangs, before it refuses them (451). A client killed meanwhile has sent
// nothing the server accepted. Stalled tells when each stall begins.
func (s *Server) StallNext(n int, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stalls, s.stallFor = n, d
	if s.stalled == nil {
		s.stalled = make(chan struct{}, 16)
	}
}

// Stalled receives once for each message StallNext holds.
func (s *Server) Stalled() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stalled == nil {
		s.stalled = make(chan struct{}, 16)
	}
	return s.stalled
}

// takeStall returns how long to stall the next DATA, 0 for not at all.
func (s *Server) takeStall() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stalls == 0 {
		return 0
	}
	s.stalls--
	select {
	case s.stalled <- struct{}{}:
	default:
	}
	return s.stallFor
}

// Connections returns how many connections the server has accepted so far.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opened
}

// DropConnections closes every open connection without a word, as a relay does with
// clients idle for too long.
func (s *Server) DropConnections() {
	s.mu.Lock()
	conns := make([]*smtp.Conn, 0, len(s.live))
	for c := range s.live {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		_ = c.Conn().Close()
	}
}

// Messages returns a snapshot of the messages accepted so far, oldest first. Messages are
// decoded here, when they are first asked for, not while the sender waits for its answer:
// a benchmark that only counts arrivals spends nothing on decoding.
func (s *Server) Messages() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ; s.parsed < len(s.msgs); s.parsed++ {
		r := &s.msgs[s.parsed]
		p := parse(r.Data)
		r.Header, r.Subject, r.Text, r.HTML = p.Header, p.Subject, p.Text, p.HTML
	}
	out := make([]Received, len(s.msgs))
	copy(out, s.msgs)
	return out
}

// Count returns how many messages were accepted so far.
func (s *Server) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.msgs)
}

// Arrivals returns when each message from the i-th on was accepted, oldest first.
func (s *Server) Arrivals(i int) []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]time.Time, 0, max(0, len(s.msgs)-i))
	for _, m := range s.msgs[min(i, len(s.msgs)):] {
		out = append(out, m.At)
	}
	return out
}

// WaitFor waits until at least n messages have arrived and returns them. It fails the test
// if they do not arrive within timeout.
func (s *Server) WaitFor(t testing.TB, n int, timeout time.Duration) []Received {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		got, arrived := len(s.msgs), s.arrived
		s.mu.Unlock()
		if got >= n {
			return s.Messages()
		}
		select {
		case <-arrived:
		case <-deadline.C:
			t.Fatalf("smtptest: got %d messages within %s, want %d", got, timeout, n)
			return nil
		}
	}
}

// takeReject returns the queued rejection for the next DATA, or nil.
func (s *Server) takeReject() *smtp.SMTPError {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.rejects) == 0 {
		return s.rejectAll
	}
	r := s.rejects[0]
	s.rejects = s.rejects[1:]
	return r
}

func (s *Server) record(r Received) {
	r.At = time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = append(s.msgs, r)
	close(s.arrived)
	s.arrived = make(chan struct{})
}

func (s *Server) credentials() (user, password string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.authUser, s.authPass
}

// session is one SMTP connection; go-smtp calls its methods from the connection's goroutine.
type session struct {
	s        *Server
	conn     *smtp.Conn
	authUser string
	from     string
	to       []string
}

var _ smtp.AuthSession = (*session)(nil)

func (ss *session) AuthMechanisms() []string {
	if user, _ := ss.s.credentials(); user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, username, password string) error {
		user, pass := ss.s.credentials()
		if user == "" || username != user || password != pass {
			return smtp.ErrAuthFailed
		}
		ss.authUser = username
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if user, _ := ss.s.credentials(); user != "" && ss.authUser == "" {
		return smtp.ErrAuthRequired
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("read data: %w", err)
	}
	if d := ss.s.takeStall(); d > 0 {
		time.Sleep(d)
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCodeNotSet, Message: "Stalled, then gave up"}
	}
	if reject := ss.s.takeReject(); reject != nil {
		return reject
	}
	ss.s.record(Received{From: ss.from, To: append([]string(nil), ss.to...), Data: data, AuthUser: ss.authUser})
	return nil
}

func (ss *session) Reset() {
	ss.from, ss.to = "", nil
}

func (ss *session) Logout() error {
	ss.s.mu.Lock()
	delete(ss.s.live, ss.conn)
	ss.s.mu.Unlock()
	return nil
}

// parse decodes the header, subject and text parts of a raw message, best effort: a message
// it cannot parse is still recorded with its raw Data.
func parse(data []byte) Received {
	var rec Received
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		return rec
	}
	rec.Header = msg.Header
	dec := new(mime.WordDecoder)
	rec.Subject = msg.Header.Get("Subject")
	if s, err := dec.DecodeHeader(rec.Subject); err == nil {
		rec.Subject = s
	}
	walkPart(&rec, msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Body)
	return rec
}

// walkPart fills rec.Text and rec.HTML from a part, descending into multipart bodies.
func walkPart(rec *Received, contentType, encoding string, body io.Reader) {
	mediaType, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		mediaType = "text/plain"
	}
	if strings.HasPrefix(mediaType, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			// NextPart decodes quoted-printable itself and removes the encoding header.
			p, err := mr.NextPart()
			if err != nil {
				return
			}
			walkPart(rec, p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p)
		}
	}
	b, err := io.ReadAll(decodeBody(encoding, body))
	if err != nil {
		return
	}
	switch mediaType {
	case "text/plain":
		if rec.Text == "" {
			rec.Text = string(b)
		}
	case "text/html":
		if rec.HTML == "" {
			rec.HTML = string(b)
		}
	}
}

func decodeBody(encoding string, body io.Reader) io.Reader {
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "quoted-printable":
		return quotedprintable.NewReader(body)
	case "base64":
		// The decoder skips the CR LF line breaks itself.
		return base64.NewDecoder(base64.StdEncoding, body)
	default:
		return body
	}
}

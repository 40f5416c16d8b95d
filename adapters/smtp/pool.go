package smtp

import (
	"context"
	"net"
	"sync"
	"time"

	"github.com/wneessen/go-mail"
	gosmtp "github.com/wneessen/go-mail/smtp"
)

// conn is one open connection to the relay.
type conn struct {
	client   *mail.Client
	smtp     *gosmtp.Client
	raw      net.Conn
	lastUsed time.Time
}

// send delivers msg on the connection. A ctx that ends closes the connection, so a
// blocked read or write returns at once.
func (c *conn) send(ctx context.Context, msg *mail.Msg) error {
	stop := context.AfterFunc(ctx, func() { _ = c.raw.Close() })
	defer stop()
	return c.client.SendWithSMTPClient(c.smtp, msg)
}

// close says QUIT and closes the connection. The message (if any) was settled before, so
// a failed QUIT changes nothing.
func (c *conn) close() {
	_ = c.client.CloseWithSMTPClient(c.smtp)
	_ = c.raw.Close()
}

// pool keeps idle connections for reuse and bounds how many are open at once.
type pool struct {
	slots chan struct{} // one token per connection in use
	idle  time.Duration // < 0: keep none
	now   func() time.Time

	mu    sync.Mutex
	conns []*conn // idle, most recently used last
}

func newPool(maxConns int, idle time.Duration, now func() time.Time) *pool {
	return &pool{slots: make(chan struct{}, maxConns), idle: idle, now: now}
}

// acquire waits for a free connection slot.
func (p *pool) acquire(ctx context.Context) error {
	select {
	case p.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *pool) release() { <-p.slots }

// take returns the most recently used idle connection, or nil. Connections idle for longer
// than the idle timeout are closed on the way.
func (p *pool) take() *conn {
	p.mu.Lock()
	var stale []*conn
	var c *conn
	for len(p.conns) > 0 {
		last := p.conns[len(p.conns)-1]
		p.conns = p.conns[:len(p.conns)-1]
		if p.now().Sub(last.lastUsed) < p.idle {
			c = last
			break
		}
		stale = append(stale, last)
	}
	p.mu.Unlock()
	for _, s := range stale {
		s.close()
	}
	return c
}

// put returns a sound connection for reuse. At most one idle connection per slot is kept,
// so the pool never holds more connections than MaxConns.
func (p *pool) put(c *conn) {
	if p.idle < 0 {
		c.close()
		return
	}
	c.lastUsed = p.now()
	p.mu.Lock()
	if len(p.conns) >= cap(p.slots) {
		p.mu.Unlock()
		c.close()
		return
	}
	p.conns = append(p.conns, c)
	p.mu.Unlock()
}

// Close closes the idle connections. Sends may go on; they open new ones.
func (s *Sender) Close() {
	s.pool.mu.Lock()
	conns := s.pool.conns
	s.pool.conns = nil
	s.pool.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
}

package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/temoto/robotstxt"

	"github.com/vigilhq/vigil/domain"
)

// Politeness towards the sites Vigil reads.
const (
	// HostConcurrencyDefault and HostDelayDefault are the operator's defaults (config):
	// at most this many requests to one host at once, starting at least this far apart.
	HostConcurrencyDefault = 4
	HostDelayDefault       = 250 * time.Millisecond
	// RobotsAgent is the token Vigil looks for in robots.txt.
	RobotsAgent = "VigilBot"
	// robotsTTL is how long a host's robots.txt is used before it is read again, and
	// robotsRetry how long an unreachable one counts as a refusal.
	robotsTTL   = time.Hour
	robotsRetry = time.Minute
	// robotsMaxBytes bounds a robots.txt (RFC 9309 asks parsers to read at least 500 KiB).
	robotsMaxBytes = 512 << 10
	// politeHostsMax bounds the hosts remembered; idle ones are forgotten first.
	politeHostsMax = 10000
)

// PoliteConfig tunes a Polite.
type PoliteConfig struct {
	// HostConcurrency bounds the requests to one host at once; 0 is no bound.
	HostConcurrency int
	// HostDelay is the least time between the starts of two requests to one host; 0 is none.
	HostDelay time.Duration
	// Robots makes a host's robots.txt decide which paths may be read.
	Robots bool
}

// Polite keeps Vigil a good citizen of the sites it reads: a thousand monitors on one shop
// take turns, and a path that the site's robots.txt forbids to VigilBot is not read.
type Polite struct {
	cfg    PoliteConfig
	client *http.Client // reads robots.txt, with the SSRF guard
	agent  string
	now    func() time.Time

	mu    sync.Mutex
	hosts map[string]*politeHost
}

type politeHost struct {
	slots    chan struct{} // nil when the concurrency is not bounded
	next     time.Time     // the earliest start of the next request
	lastUsed time.Time
	users    int // requests holding or waiting for the host

	robotsMu  sync.Mutex
	robots    *robotstxt.Group
	robotsErr error
	robotsAt  time.Time
}

// NewPolite returns a Polite reading robots.txt with client, sending agent.
func NewPolite(cfg PoliteConfig, client *http.Client, agent string, now func() time.Time) *Polite {
	return &Polite{cfg: cfg, client: client, agent: agent, now: now, hosts: map[string]*politeHost{}}
}

// Acquire waits until a request to u may start: robots.txt allows it, the host has a free
// slot, and the last request to the host started long enough ago. It returns the func
// that frees the slot when the request is done. A path robots.txt forbids is EINVALID, an
// unreachable robots.txt EUNAVAILABLE, and so is a turn that ctx ended before.
func (p *Polite) Acquire(ctx context.Context, u *url.URL) (func(), error) {
	release, err := p.acquire(ctx, u)
	var de *domain.Error
	if err != nil && !errors.As(err, &de) {
		return nil, &domain.Error{Code: domain.EUNAVAILABLE, Message: fmt.Sprintf("%s is busy with other monitors' requests; trying again later.", u.Host), Err: err}
	}
	return release, err
}

func (p *Polite) acquire(ctx context.Context, u *url.URL) (func(), error) {
	if p == nil {
		return func() {}, nil
	}
	key := strings.ToLower(u.Scheme + "://" + u.Host)
	h := p.host(key)
	done := func() {
		p.mu.Lock()
		h.users--
		h.lastUsed = p.now()
		p.mu.Unlock()
	}
	if p.cfg.Robots && u.Path != "/robots.txt" {
		if err := p.robotsAllow(ctx, h, u); err != nil {
			done()
			return nil, err
		}
	}
	if h.slots != nil {
		select {
		case h.slots <- struct{}{}:
		case <-ctx.Done():
			done()
			return nil, ctx.Err()
		}
	}
	release := func() {
		if h.slots != nil {
			<-h.slots
		}
		done()
	}
	// The next start is set when a request really goes, not when it is queued, so a waiter
	// that wakes late cannot bring the one after it closer than the delay. At most
	// HostConcurrency requests wait here at once: they hold the host's slots.
	for p.cfg.HostDelay > 0 {
		p.mu.Lock()
		now := p.now()
		wait := h.next.Sub(now)
		if wait <= 0 {
			h.next = now.Add(p.cfg.HostDelay)
			p.mu.Unlock()
			break
		}
		p.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			release()
			return nil, ctx.Err()
		}
	}
	return release, nil
}

// host returns the state of one host, forgetting idle hosts when there are too many.
func (p *Polite) host(key string) *politeHost {
	p.mu.Lock()
	defer p.mu.Unlock()
	h, ok := p.hosts[key]
	if !ok {
		if len(p.hosts) >= politeHostsMax {
			p.forgetIdle()
		}
		h = &politeHost{}
		if p.cfg.HostConcurrency > 0 {
			h.slots = make(chan struct{}, p.cfg.HostConcurrency)
		}
		p.hosts[key] = h
	}
	h.users++
	return h
}

// forgetIdle drops the hosts no request holds whose turn has passed: the oldest half.
func (p *Polite) forgetIdle() {
	now := p.now()
	cutoff := now.Add(-robotsTTL)
	for k, h := range p.hosts {
		if h.users == 0 && h.next.Before(now) && (h.lastUsed.Before(cutoff) || len(p.hosts) >= politeHostsMax) {
			delete(p.hosts, k)
		}
	}
}

// robotsAllow reads the host's robots.txt when it has none fresh and tests u's path.
func (p *Polite) robotsAllow(ctx context.Context, h *politeHost, u *url.URL) error {
	h.robotsMu.Lock()
	defer h.robotsMu.Unlock()
	now := p.now()
	ttl := robotsTTL
	if h.robotsErr != nil {
		ttl = robotsRetry
	}
	if h.robotsAt.IsZero() || now.Sub(h.robotsAt) >= ttl {
		h.robots, h.robotsErr = p.readRobots(ctx, u)
		h.robotsAt = now
	}
	if h.robotsErr != nil {
		return h.robotsErr
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	if u.RawQuery != "" {
		path += "?" + u.RawQuery
	}
	if !h.robots.Test(path) {
		return &domain.Error{Code: domain.EINVALID,
			Message: fmt.Sprintf("The robots.txt of %s does not allow %s to read %s; its operator can turn robots.txt off (SOURCE_ROBOTS=false).", u.Host, RobotsAgent, path),
			Fields:  map[string]string{"source_url": "is disallowed by the site's robots.txt"}}
	}
	return nil
}

// readRobots fetches and parses robots.txt: a 4xx answer allows everything, a 5xx or no
// answer at all allows nothing for now (RFC 9309 §2.3.1).
func (p *Polite) readRobots(ctx context.Context, u *url.URL) (*robotstxt.Group, error) {
	robotsURL := (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: "/robots.txt"}).String()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, robotsURL, nil)
	if err != nil {
		return nil, domain.Errorf(domain.EINVALID, "The source %q is not a valid URL.", u.String())
	}
	req.Header.Set("User-Agent", p.agent)
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, &domain.Error{Code: domain.EUNAVAILABLE, Message: fmt.Sprintf("Could not read the robots.txt of %s.", u.Host), Err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, robotsMaxBytes))
	if err != nil {
		return nil, &domain.Error{Code: domain.EUNAVAILABLE, Message: fmt.Sprintf("Could not read the robots.txt of %s.", u.Host), Err: err}
	}
	if resp.StatusCode >= 500 {
		return nil, domain.Errorf(domain.EUNAVAILABLE, "The robots.txt of %s answered %s, so nothing may be read there for now.", u.Host, resp.Status)
	}
	data, err := robotstxt.FromStatusAndBytes(resp.StatusCode, body)
	if err != nil {
		data, _ = robotstxt.FromStatusAndBytes(http.StatusNotFound, nil) // an unreadable file restricts nothing
	}
	return data.FindGroup(RobotsAgent), nil
}

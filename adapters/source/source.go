// Package source fetches monitor sources over HTTP safely: size and time limits, a bounded
// number of redirects, and protection against server-side request forgery (no loopback,
// private, link-local or metadata addresses, checked on the resolved address of every
// connection, redirects included) unless the operator allows private sources.
//
// It is also frugal: monitors sharing a URL within a few seconds (one scheduling tick) share
// one fetch, concurrent fetches of a URL are coalesced, and a refetch is a conditional GET
// (ETag / Last-Modified), so an unchanged source costs a 304.
package source

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"syscall"
	"time"

	"code.dny.dev/ssrf"

	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/ai"
)

// Defaults for Config fields left zero.
const (
	TimeoutDefault      = 15 * time.Second
	MaxBytesDefault     = 5 << 20
	MaxRedirectsDefault = 5
	UserAgentDefault    = "VigilBot/1.0 (+https://github.com/vigilhq/vigil)"
	FreshDefault        = 5 * time.Second
	CacheBytesDefault   = 64 << 20
)

// Config tunes a Fetcher.
type Config struct {
	Timeout      time.Duration
	MaxBytes     int64
	MaxRedirects int
	AllowPrivate bool // allow loopback and private addresses (dev and tests)
	UserAgent    string
	// Fresh is how long a fetched document is served again without asking the origin, so
	// monitors sharing a source in one scheduling tick fetch it once; negative disables.
	Fresh time.Duration
	// CacheBytes bounds the documents kept for sharing and conditional requests.
	CacheBytes int64
	// Allow decides which resolved addresses may be dialled when AllowPrivate is off;
	// default Public. Tests use it to stand in for the public internet.
	Allow func(netip.Addr) bool
	// Polite bounds the requests to each host and makes robots.txt decide what may be
	// read; its zero value does neither.
	Polite PoliteConfig
}

// Fetcher fetches sources; it satisfies app.Fetcher.
type Fetcher struct {
	client   *http.Client
	maxBytes int64
	agent    string
	fresh    time.Duration
	cache    *cache
	flight   flight
	polite   *Polite
	timeout  time.Duration
	now      func() time.Time
}

// ErrForbiddenAddress is wrapped by errors for sources resolving to a forbidden address.
var ErrForbiddenAddress = errors.New("address not allowed")

// errBadRedirect is wrapped by errors for redirects Vigil does not follow.
var errBadRedirect = errors.New("redirect not followed")

// New returns a Fetcher.
func New(cfg Config, now func() time.Time) *Fetcher {
	if cfg.Timeout <= 0 {
		cfg.Timeout = TimeoutDefault
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = MaxBytesDefault
	}
	if cfg.MaxRedirects <= 0 {
		cfg.MaxRedirects = MaxRedirectsDefault
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = UserAgentDefault
	}
	if cfg.Fresh == 0 {
		cfg.Fresh = FreshDefault
	}
	if cfg.CacheBytes <= 0 {
		cfg.CacheBytes = CacheBytesDefault
	}
	if cfg.Allow == nil {
		cfg.Allow = NewPublicFilter()
	}
	dialer := Dialer(cfg)
	transport := &http.Transport{
		Proxy:                 nil, // a proxy would hide the real destination from the address check
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: cfg.Timeout,
		// Many monitors watch pages of the same few shops; the evaluator runs dozens of
		// fetches at once, so connections to one host are kept for reuse, not redialled.
		MaxIdleConns:        512,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
	}
	client := &http.Client{
		Transport: transport,
		Timeout:   cfg.Timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= cfg.MaxRedirects {
				return fmt.Errorf("%w: more than %d redirects", errBadRedirect, cfg.MaxRedirects)
			}
			if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
				return fmt.Errorf("%w: redirect to a %s URL", errBadRedirect, req.URL.Scheme)
			}
			return nil
		},
	}
	return &Fetcher{client: client, maxBytes: cfg.MaxBytes, agent: cfg.UserAgent, fresh: cfg.Fresh, cache: newCache(cfg.CacheBytes), now: now,
		polite: NewPolite(cfg.Polite, client, cfg.UserAgent, now), timeout: cfg.Timeout}
}

// Polite returns the host limits and robots.txt rules of the fetcher, for another way of
// reading sources (the renderer) to share them.
func (f *Fetcher) Polite() *Polite { return f.polite }

// UserAgent returns the fetcher's User-Agent.
func (f *Fetcher) UserAgent() string { return f.agent }

// Dialer returns a dialer that checks, when it connects, the resolved address against
// cfg (Allow, default Public) unless cfg.AllowPrivate: the check every outgoing request of
// Vigil's to a user's URL goes through, redirects and DNS changes included.
func Dialer(cfg Config) *net.Dialer {
	if cfg.Allow == nil {
		cfg.Allow = NewPublicFilter()
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	if !cfg.AllowPrivate {
		dialer.Control = func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("%w: %s", ErrForbiddenAddress, address)
			}
			if !cfg.Allow(ap.Addr()) {
				return fmt.Errorf("%w: %s", ErrForbiddenAddress, ap.Addr())
			}
			return nil
		}
	}
	return dialer
}

// Public reports whether addr is a public unicast address a source may live on: not in
// any special-purpose range of IANA's IPv4 and IPv6 registries, as code.dny.dev/ssrf keeps
// them (private, loopback, link-local, shared, documentation, benchmarking, multicast,
// reserved), and for IPv6 inside global unicast (2000::/3) but outside the ranges that
// embed or reach IPv4 (6to4 2002::/16, Teredo 2001::/32, NAT64 64:ff9b::/96 and
// 64:ff9b:1::/48) or are otherwise special. So ::127.0.0.1 (IPv4-compatible),
// ::ffff:0:7f00:1 (IPv4-translated) and fec0::/10 (the old site-local) are refused. An
// IPv4-mapped address (::ffff:a.b.c.d, which is how the resolver returns A records) is
// its IPv4 address, so it is judged as that.
func Public(addr netip.Addr) bool {
	if !addr.IsValid() {
		return false
	}
	if addr.Is4In6() {
		addr = addr.Unmap()
	}
	return specialPurpose.SafeAddr(addr) == nil
}

// specialPurpose judges addresses against the IANA special-purpose registries; it holds
// only those fixed tables.
var specialPurpose = ssrf.New(ssrf.WithAnyPort(), ssrf.WithAnyNetwork())

// ownAddressesTTL is how long the host's own addresses are trusted before they are read
// again: interfaces change rarely (a container that got another address, a VPN coming up).
const ownAddressesTTL = time.Minute

// NewPublicFilter returns the default address filter of fetchers, guards and browsers: an
// address must be Public and must not be one of this host's own interface addresses, which
// may be public yet lead to services bound to every interface (metrics, NATS, PostgreSQL).
// Each filter reads the addresses on first use and again after ownAddressesTTL; when they
// cannot be read, every address it last knew stays refused.
func NewPublicFilter() func(netip.Addr) bool {
	return newPublicFilter(interfaceAddrs, time.Now)
}

func newPublicFilter(read func() (map[netip.Addr]bool, error), now func() time.Time) func(netip.Addr) bool {
	var (
		mu     sync.Mutex
		own    map[netip.Addr]bool
		readAt time.Time
	)
	return func(addr netip.Addr) bool {
		if !Public(addr) {
			return false
		}
		addr = addr.Unmap()
		mu.Lock()
		defer mu.Unlock()
		if own == nil || now().Sub(readAt) > ownAddressesTTL {
			if fresh, err := read(); err == nil {
				own, readAt = fresh, now()
			} else if own == nil {
				own = map[netip.Addr]bool{}
			}
		}
		return !own[addr]
	}
}

func interfaceAddrs() (map[netip.Addr]bool, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	own := make(map[netip.Addr]bool, len(addrs))
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			own[p.Addr().Unmap()] = true
		}
	}
	return own, nil
}

// Fetch implements app.Fetcher: EUNAVAILABLE for failures worth retrying (network,
// timeouts, 429, 5xx), EINVALID for ones that are not (bad URL, forbidden address, 4xx,
// too large).
func (f *Fetcher) Fetch(ctx context.Context, rawURL string) (ai.Document, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return ai.Document{}, domain.Errorf(domain.EINVALID, "The source %q is not an http(s) URL.", rawURL)
	}
	key := u.String()
	if e, ok := f.cache.get(key); ok && f.fresh > 0 && f.now().Sub(e.checkedAt) < f.fresh && !e.checkedAt.Before(ai.FetchedAfter(ctx)) {
		return e.doc, nil
	}
	// Callers share one fetch; it runs to the client's timeout even if the first caller
	// gives up, since others wait for it.
	return f.flight.do(key, func() (ai.Document, error) {
		return f.fetch(context.WithoutCancel(ctx), u)
	})
}

func (f *Fetcher) fetch(ctx context.Context, u *url.URL) (ai.Document, error) {
	key := u.String()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, key, nil)
	if err != nil {
		return ai.Document{}, domain.Errorf(domain.EINVALID, "The source %q is not a valid URL.", key)
	}
	req.Header.Set("User-Agent", f.agent)
	req.Header.Set("Accept", "application/json, text/html;q=0.9, application/rss+xml;q=0.9, application/atom+xml;q=0.9, text/plain;q=0.8, */*;q=0.5")
	// A host busy with other monitors' requests for longer than a fetch may take is
	// tried again later, rather than holding the evaluation.
	actx, cancel := context.WithTimeout(ctx, f.timeout)
	release, err := f.polite.Acquire(actx, u)
	cancel()
	if err != nil {
		return ai.Document{}, err
	}
	defer release()
	prev, havePrev := f.cache.get(key)
	if havePrev {
		if prev.etag != "" {
			req.Header.Set("If-None-Match", prev.etag)
		}
		if prev.lastModified != "" {
			req.Header.Set("If-Modified-Since", prev.lastModified)
		}
	}
	resp, err := f.client.Do(req)
	if err != nil {
		if errors.Is(err, ErrForbiddenAddress) {
			return ai.Document{}, &domain.Error{Code: domain.EINVALID, Message: "The source resolves to a private or local address, which is not allowed.", Err: err}
		}
		if errors.Is(err, errBadRedirect) {
			return ai.Document{}, &domain.Error{Code: domain.EINVALID, Message: "The source redirects too often, or to something other than a web page.", Err: err}
		}
		return ai.Document{}, &domain.Error{Code: domain.EUNAVAILABLE, Message: fmt.Sprintf("Could not reach %s.", u.Host), Err: err}
	}
	defer resp.Body.Close()
	now := f.now().UTC()
	switch {
	case resp.StatusCode == http.StatusNotModified && havePrev:
		prev.doc.FetchedAt, prev.checkedAt = now, now
		f.cache.put(prev)
		return prev.doc, nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return ai.Document{}, domain.Errorf(domain.EUNAVAILABLE, "The source answered %s.", resp.Status)
	case resp.StatusCode >= 400:
		return ai.Document{}, domain.Errorf(domain.EINVALID, "The source answered %s.", resp.Status)
	case resp.StatusCode != http.StatusOK:
		return ai.Document{}, domain.Errorf(domain.EINVALID, "The source answered %s, not a document.", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, f.maxBytes+1))
	if err != nil {
		return ai.Document{}, &domain.Error{Code: domain.EUNAVAILABLE, Message: "The source stopped answering mid-way.", Err: err}
	}
	if int64(len(body)) > f.maxBytes {
		return ai.Document{}, domain.Errorf(domain.EINVALID, "The source is larger than %d bytes.", f.maxBytes)
	}
	mediaType, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	sum := sha256.Sum256(body)
	doc := ai.Document{URL: resp.Request.URL.String(), ContentType: mediaType, Body: body, FetchedAt: now, Hash: hex.EncodeToString(sum[:])}
	if kind := kindOf(mediaType, body); kind == kindHTML || kind == kindFeed {
		doc.Text = visibleText(body, kind)
	}
	f.cache.put(entry{url: key, doc: doc, etag: resp.Header.Get("ETag"), lastModified: resp.Header.Get("Last-Modified"), checkedAt: now})
	return doc, nil
}

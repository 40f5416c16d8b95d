// Package source fetches monitor sources over HTTP safely: size and time limits, a bounded
// number of redirects, and protection against server-side request forgery (no loopback,
// private, link-local or metadata addresses, checked on the resolved address of every
// connection, redirects included) unless the operator allows private sources.
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
	"syscall"
	"time"

	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/ai"
)

// Defaults for Config fields left zero.
const (
	TimeoutDefault      = 15 * time.Second
	MaxBytesDefault     = 5 << 20
	MaxRedirectsDefault = 5
	UserAgentDefault    = "VigilBot/1.0 (+https://github.com/vigilhq/vigil)"
)

// Config tunes a Fetcher.
type Config struct {
	Timeout      time.Duration
	MaxBytes     int64
	MaxRedirects int
	AllowPrivate bool // allow loopback and private addresses (dev and tests)
	UserAgent    string
}

// Fetcher fetches sources; it satisfies app.Fetcher.
type Fetcher struct {
	client   *http.Client
	maxBytes int64
	agent    string
	now      func() time.Time
}

// ErrForbiddenAddress is wrapped by errors for sources resolving to a forbidden address.
var ErrForbiddenAddress = errors.New("address not allowed")

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
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	if !cfg.AllowPrivate {
		dialer.Control = func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("%w: %s", ErrForbiddenAddress, address)
			}
			if !Public(ap.Addr()) {
				return fmt.Errorf("%w: %s", ErrForbiddenAddress, ap.Addr())
			}
			return nil
		}
	}
	transport := &http.Transport{
		Proxy:                 nil, // a proxy would hide the real destination from the address check
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: cfg.Timeout,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
	}
	client := &http.Client{
		Transport: transport,
		Timeout:   cfg.Timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= cfg.MaxRedirects {
				return fmt.Errorf("more than %d redirects", cfg.MaxRedirects)
			}
			if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
				return fmt.Errorf("redirect to a %s URL", req.URL.Scheme)
			}
			return nil
		},
	}
	return &Fetcher{client: client, maxBytes: cfg.MaxBytes, agent: cfg.UserAgent, now: now}
}

// Public reports whether addr is a public unicast address a source may live on.
func Public(addr netip.Addr) bool {
	addr = addr.Unmap()
	if !addr.IsValid() || addr.IsLoopback() || addr.IsPrivate() || addr.IsLinkLocalUnicast() ||
		addr.IsLinkLocalMulticast() || addr.IsMulticast() || addr.IsUnspecified() || addr.IsInterfaceLocalMulticast() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(addr) {
			return false
		}
	}
	return true
}

// nonPublic lists ranges the netip predicates do not cover.
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"), // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"), // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"), // NAT64 can reach private IPv4
}

// Fetch implements app.Fetcher: EUNAVAILABLE for failures worth retrying (network,
// timeouts, 429, 5xx), EINVALID for ones that are not (bad URL, forbidden address, 4xx,
// too large).
func (f *Fetcher) Fetch(ctx context.Context, rawURL string) (ai.Document, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return ai.Document{}, domain.Errorf(domain.EINVALID, "The source %q is not an http(s) URL.", rawURL)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return ai.Document{}, domain.Errorf(domain.EINVALID, "The source %q is not a valid URL.", rawURL)
	}
	req.Header.Set("User-Agent", f.agent)
	req.Header.Set("Accept", "application/json, text/html;q=0.9, text/plain;q=0.8, */*;q=0.5")
	resp, err := f.client.Do(req)
	if err != nil {
		if errors.Is(err, ErrForbiddenAddress) {
			return ai.Document{}, &domain.Error{Code: domain.EINVALID, Message: "The source resolves to a private or local address, which is not allowed.", Err: err}
		}
		return ai.Document{}, &domain.Error{Code: domain.EUNAVAILABLE, Message: fmt.Sprintf("Could not reach %s.", u.Host), Err: err}
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return ai.Document{}, domain.Errorf(domain.EUNAVAILABLE, "The source answered %s.", resp.Status)
	case resp.StatusCode >= 400:
		return ai.Document{}, domain.Errorf(domain.EINVALID, "The source answered %s.", resp.Status)
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
	return ai.Document{URL: resp.Request.URL.String(), ContentType: mediaType, Body: body, FetchedAt: f.now().UTC(), Hash: hex.EncodeToString(sum[:])}, nil
}

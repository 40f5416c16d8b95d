package source

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"time"

	"github.com/vigilhq/vigil/domain"
)

// Guard checks a URL before Vigil stores it (webhook actions): its host must resolve, and
// only to addresses a Fetcher with the same Config may dial. Deliveries check again at
// dial time, since DNS can change after the check.
type Guard struct {
	allowPrivate bool
	allow        func(netip.Addr) bool
	resolver     *net.Resolver
}

// NewGuard returns a Guard with cfg's AllowPrivate and Allow.
func NewGuard(cfg Config) *Guard {
	if cfg.Allow == nil {
		cfg.Allow = NewPublicFilter()
	}
	return &Guard{allowPrivate: cfg.AllowPrivate, allow: cfg.Allow, resolver: net.DefaultResolver}
}

// CheckURL implements app.URLGuard.
func (g *Guard) CheckURL(ctx context.Context, rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return domain.Errorf(domain.EINVALID, "must be an absolute http(s) URL")
	}
	if g.allowPrivate {
		return nil
	}
	host := u.Hostname()
	addrs, err := g.resolve(ctx, host)
	if err != nil {
		return domain.Errorf(domain.EINVALID, "the host %s does not resolve", host)
	}
	return g.refuseForbidden(addrs)
}

// resolve returns a literal address as itself, else what the host's name resolves to.
func (g *Guard) resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ips, err := g.resolver.LookupNetIP(ctx, "ip", host)
	if err == nil && len(ips) == 0 {
		err = fmt.Errorf("%s has no addresses", host)
	}
	return ips, err
}

func (g *Guard) refuseForbidden(addrs []netip.Addr) error {
	for _, a := range addrs {
		if !g.allow(a) {
			return domain.Errorf(domain.EINVALID, "points to a private or local address, which Vigil may not call")
		}
	}
	return nil
}

// CheckSource implements app.SourceGuard: EINVALID when rawURL's host is, or resolves to,
// an address a Fetcher with the same Config may not dial. A host that does not resolve now
// passes: a source may be down when its monitor is made, and every fetch checks again.
func (g *Guard) CheckSource(ctx context.Context, rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return domain.Errorf(domain.EINVALID, "must be an absolute http(s) URL")
	}
	if g.allowPrivate {
		return nil
	}
	addrs, err := g.resolve(ctx, u.Hostname())
	if err != nil {
		return nil //nolint:nilerr // see above: an unresolvable host is checked at each fetch
	}
	return g.refuseForbidden(addrs)
}

package source

import (
	"context"
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
		cfg.Allow = Public
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
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		ips, err := g.resolver.LookupNetIP(ctx, "ip", host)
		if err != nil || len(ips) == 0 {
			return domain.Errorf(domain.EINVALID, "the host %s does not resolve", host)
		}
		addrs = ips
	}
	for _, a := range addrs {
		if !g.allow(a) {
			return domain.Errorf(domain.EINVALID, "points to a private or local address, which Vigil may not call")
		}
	}
	return nil
}

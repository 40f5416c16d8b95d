package google

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
)

const (
	// jwksMaxAge is how long a fetched key set is used before it is fetched again. Providers
	// publish new keys well before signing with them, and an unknown kid triggers a refresh
	// anyway, so this only bounds how long a withdrawn key stays trusted.
	jwksMaxAge = time.Hour
	// jwksMinRefresh is the least time between two fetches triggered by an unknown kid, so a
	// stream of tokens with made-up key ids cannot make us hammer the provider.
	jwksMinRefresh = time.Minute
	// maxJWKSBytes bounds the key set we read.
	maxJWKSBytes = 1 << 20
)

// keyCache holds the provider's JWKS. It fetches with the configured HTTP client and parses
// with jwk.Parse rather than using jwk.Fetch or jwk.Cache, whose background goroutines live
// in a package global or need a lifecycle context the Client does not have. Fetches are
// serialized, so a burst of sign-ins after a rotation fetches once.
type keyCache struct {
	url    string
	client *http.Client
	now    func() time.Time

	// lock is a one-slot semaphore rather than a mutex so waiting for a slow fetch honours
	// the caller's context. It guards set and fetched.
	lock    chan struct{}
	set     jwk.Set
	fetched time.Time
}

func newKeyCache(url string, client *http.Client, now func() time.Time) *keyCache {
	return &keyCache{url: url, client: client, now: now, lock: make(chan struct{}, 1)}
}

// keySet returns a key set that should contain kid: the cached one when it is fresh and
// has kid, otherwise a newly fetched one (at most once per jwksMinRefresh for unknown
// kids). When a fetch fails but the cached set has kid, the cached set is returned.
func (k *keyCache) keySet(ctx context.Context, kid string) (jwk.Set, error) {
	select {
	case k.lock <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for jwks: %w", ctx.Err())
	}
	defer func() { <-k.lock }()

	now := k.now()
	age := now.Sub(k.fetched)
	var hasKid bool
	if k.set != nil {
		_, hasKid = k.set.LookupKeyID(kid)
		switch {
		case hasKid && age < jwksMaxAge:
			return k.set, nil
		case !hasKid && age < jwksMinRefresh:
			// Verification will fail with an unknown kid; that is the answer.
			return k.set, nil
		}
	}

	set, err := k.fetch(ctx)
	if err != nil {
		if hasKid {
			return k.set, nil
		}
		return nil, err
	}
	k.set, k.fetched = set, now
	return set, nil
}

func (k *keyCache) fetch(ctx context.Context) (jwk.Set, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return nil, fmt.Errorf("fetch jwks: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch jwks: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch jwks %s: status %d", k.url, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read jwks %s: %w", k.url, err)
	}
	if len(body) > maxJWKSBytes {
		return nil, fmt.Errorf("jwks %s: larger than %d bytes", k.url, maxJWKSBytes)
	}
	set, err := jwk.Parse(body)
	if err != nil {
		return nil, fmt.Errorf("parse jwks %s: %w", k.url, err)
	}
	if set.Len() == 0 {
		return nil, fmt.Errorf("jwks %s: no keys", k.url)
	}
	return set, nil
}

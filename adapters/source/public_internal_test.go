package source

import (
	"errors"
	"net/netip"
	"testing"
	"time"
)

// TestPublicFilterRefusesTheHostsOwnAddresses: ASVS 4.0.3 V12.6.1 (SSRF). An address of one
// of this host's interfaces is refused even when it is public, since services bound to
// every interface answer on it; the list is read again after a while, and a failed read
// keeps the last one.
func TestPublicFilterRefusesTheHostsOwnAddresses(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	own := map[netip.Addr]bool{netip.MustParseAddr("93.184.216.34"): true}
	var readErr error
	reads := 0
	allow := newPublicFilter(func() (map[netip.Addr]bool, error) {
		reads++
		return own, readErr
	}, func() time.Time { return now })

	for addr, want := range map[string]bool{
		"93.184.216.34": false, "::ffff:93.184.216.34": false, "93.184.216.35": true, "127.0.0.1": false,
	} {
		if got := allow(netip.MustParseAddr(addr)); got != want {
			t.Errorf("allow(%s) = %v, want %v", addr, got, want)
		}
	}
	if reads != 1 {
		t.Fatalf("the interfaces were read %d times, want once within the TTL", reads)
	}
	// The host got another address; after the TTL it is refused too, and a failing read
	// later keeps what was known.
	own = map[netip.Addr]bool{netip.MustParseAddr("93.184.216.34"): true, netip.MustParseAddr("93.184.216.35"): true}
	now = now.Add(ownAddressesTTL + time.Second)
	if allow(netip.MustParseAddr("93.184.216.35")) {
		t.Fatal("a new own address is allowed after the TTL")
	}
	readErr, own = errors.New("netlink: permission denied"), nil
	now = now.Add(ownAddressesTTL + time.Second)
	if allow(netip.MustParseAddr("93.184.216.35")) {
		t.Fatal("a failed read forgot the host's addresses")
	}
}

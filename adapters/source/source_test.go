package source_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/adapters/source"
	"github.com/vigilhq/vigil/domain"
)

func TestFetch(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.Write([]byte(`{"price": 42}`))
		case "/redirect":
			http.Redirect(w, r, "/ok", http.StatusFound)
		case "/big":
			w.Write([]byte(strings.Repeat("x", 2048)))
		case "/gone":
			http.NotFound(w, r)
		default:
			w.WriteHeader(http.StatusBadGateway)
		}
	}))
	t.Cleanup(srv.Close)
	ctx := context.Background()
	f := source.New(source.Config{AllowPrivate: true, MaxBytes: 1024}, time.Now)

	doc, err := f.Fetch(ctx, srv.URL+"/redirect")
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if doc.ContentType != "application/json" || string(doc.Body) != `{"price": 42}` || len(doc.Hash) != 64 || !strings.HasSuffix(doc.URL, "/ok") {
		t.Fatalf("unexpected document %+v", doc)
	}
	for path, code := range map[string]string{"/big": domain.EINVALID, "/gone": domain.EINVALID, "/down": domain.EUNAVAILABLE} {
		if _, err := f.Fetch(ctx, srv.URL+path); domain.ErrorCode(err) != code {
			t.Errorf("Fetch(%s) = %v, want code %s", path, err, code)
		}
	}
	if _, err := f.Fetch(ctx, "ftp://example.com/x"); domain.ErrorCode(err) != domain.EINVALID {
		t.Errorf("ftp URL: %v", err)
	}

	strict := source.New(source.Config{}, time.Now)
	if _, err := strict.Fetch(ctx, srv.URL+"/ok"); domain.ErrorCode(err) != domain.EINVALID || !strings.Contains(domain.ErrorMessage(err), "private") {
		t.Fatalf("loopback source allowed without AllowPrivate: %v", err)
	}
}

// TestPublic: ASVS 4.0.3 V12.6.1 (SSRF). Every special-purpose range of the IANA
// registries is refused, including the IPv6 forms that embed or reach an IPv4 address and
// the old site-local range; an IPv4-mapped address is judged as its IPv4 address.
func TestPublic(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]bool{
		"8.8.8.8": true, "2606:4700::1111": true, "::ffff:8.8.8.8": true, "93.184.216.34": true,
		"127.0.0.1": false, "10.1.2.3": false, "172.16.0.1": false, "192.168.1.1": false,
		"169.254.169.254": false, "100.64.0.1": false, "0.0.0.0": false, "::1": false, "::": false,
		"fe80::1": false, "fc00::1": false, "fd00:ec2::254": false, "::ffff:127.0.0.1": false, "::ffff:169.254.169.254": false,
		"192.0.2.1": false, "198.51.100.7": false, "203.0.113.9": false, "198.18.0.1": false, "192.0.0.9": false,
		"224.0.0.1": false, "239.255.255.250": false, "255.255.255.255": false, "240.0.0.1": false,
		"::127.0.0.1":                          false, // IPv4-compatible
		"::ffff:0:7f00:1":                      false, // IPv4-translated
		"2002:7f00:1::1":                       false, // 6to4 of 127.0.0.1
		"2002:808:808::1":                      false, // 6to4 of a public address: still a relay Vigil does not use
		"64:ff9b::7f00:1":                      false, // NAT64 of 127.0.0.1
		"64:ff9b::808:808":                     false,
		"64:ff9b:1::a00:1":                     false, // local-use NAT64
		"2001:0:4136:e378:8000:63bf:3fff:fdd2": false, // Teredo
		"fec0::1":                              false, // site-local (deprecated)
		"2001:db8::1":                          false, // documentation
		"3fff::1":                              false,
		"ff02::1":                              false,
	} {
		if got := source.Public(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Public(%s) = %v, want %v", addr, got, want)
		}
	}
}

// FuzzPublic: whatever the address, Public never allows one that is loopback, private,
// link-local, multicast or unspecified, in any of the forms that reach it, nor an IPv6
// address outside global unicast; an IPv4 address and its mapped form agree, and an
// embedding of an IPv4 address in IPv6 (compatible, 6to4, NAT64) is never public.
func FuzzPublic(f *testing.F) {
	for _, seed := range []string{"8.8.8.8", "127.0.0.1", "::127.0.0.1", "2002:7f00:1::1", "64:ff9b::a00:1", "fec0::1", "2606:4700::1111"} {
		b := netip.MustParseAddr(seed).As16()
		f.Add(b[:])
	}
	global := netip.MustParsePrefix("2000::/3")
	f.Fuzz(func(t *testing.T, raw []byte) {
		var b [16]byte
		copy(b[:], raw)
		a := netip.AddrFrom16(b)
		if source.Public(a) {
			u := a.Unmap()
			if u.IsLoopback() || u.IsPrivate() || u.IsLinkLocalUnicast() || u.IsMulticast() || u.IsUnspecified() ||
				(u.Is6() && !global.Contains(u)) {
				t.Fatalf("Public(%s) = true", a)
			}
		}
		var v4 [4]byte
		copy(v4[:], b[12:])
		four := netip.AddrFrom4(v4)
		if source.Public(four) != source.Public(netip.AddrFrom16(netip.AddrFrom4(v4).As16())) {
			t.Fatalf("%s and its mapped form disagree", four)
		}
		var compat, sixToFour, nat64 [16]byte
		copy(compat[12:], v4[:])
		sixToFour[0], sixToFour[1] = 0x20, 0x02
		copy(sixToFour[2:6], v4[:])
		nat64[1], nat64[2], nat64[3] = 0x64, 0xff, 0x9b
		copy(nat64[12:], v4[:])
		for _, e := range [][16]byte{compat, sixToFour, nat64} {
			if source.Public(netip.AddrFrom16(e)) {
				t.Fatalf("%s embeds %s and is allowed", netip.AddrFrom16(e), four)
			}
		}
	})
}

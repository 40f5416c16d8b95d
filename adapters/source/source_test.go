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

func TestPublic(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]bool{
		"8.8.8.8": true, "2606:4700::1111": true,
		"127.0.0.1": false, "10.1.2.3": false, "172.16.0.1": false, "192.168.1.1": false,
		"169.254.169.254": false, "100.64.0.1": false, "0.0.0.0": false, "::1": false,
		"fe80::1": false, "fc00::1": false, "::ffff:127.0.0.1": false,
	} {
		if got := source.Public(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Public(%s) = %v, want %v", addr, got, want)
		}
	}
}

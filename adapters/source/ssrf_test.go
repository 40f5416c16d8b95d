package source_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/source"
	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/ai"
)

// TestSSRFRefused checks that with private sources off, every private, loopback,
// link-local or metadata address is refused, by literal, by DNS name and through a redirect.
func TestSSRFRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// A server on 127.0.0.2 stands in for a public host: the fetcher may dial it, and only
	// it; the "internal" server listens on 127.0.0.1.
	inner := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "secret") }))
	t.Cleanup(inner.Close)
	_, innerPort, _ := net.SplitHostPort(strings.TrimPrefix(inner.URL, "http://"))
	public := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, r.URL.Query().Get("to"), http.StatusFound)
	}))
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	require.NoError(t, err)
	public.Listener.Close()
	public.Listener = ln
	public.Start()
	t.Cleanup(public.Close)
	publicAddr := netip.MustParseAddrPort(strings.TrimPrefix(public.URL, "http://"))
	f := source.New(source.Config{Timeout: 2 * time.Second, Fresh: -1, Allow: func(a netip.Addr) bool {
		return a == publicAddr.Addr() || source.Public(a)
	}}, time.Now)
	strict := source.New(source.Config{Timeout: 2 * time.Second, Fresh: -1}, time.Now)

	for _, target := range []string{
		"http://[::1]:" + innerPort + "/",
		"http://10.0.0.1/",
		"http://169.254.169.254/latest/meta-data/",
		"http://localhost:" + innerPort + "/", // a DNS name resolving to loopback
		"http://0.0.0.0:" + innerPort + "/",
	} {
		_, err := f.Fetch(ctx, target)
		require.Equal(t, domain.EINVALID, domain.ErrorCode(err), "%s: %v", target, err)
		require.Contains(t, domain.ErrorMessage(err), "private or local address", target)

		_, err = f.Fetch(ctx, public.URL+"/?to="+target) // a redirect from an allowed host
		require.Equal(t, domain.EINVALID, domain.ErrorCode(err), "redirect to %s: %v", target, err)
	}
	_, err = strict.Fetch(ctx, inner.URL)
	require.Equal(t, domain.EINVALID, domain.ErrorCode(err), "127.0.0.1 must be refused: %v", err)
	// The stand-in public host itself is reachable; a redirect loop ends in an error, not a hang.
	_, err = f.Fetch(ctx, public.URL+"/?to="+public.URL+"/landing")
	require.Equal(t, domain.EINVALID, domain.ErrorCode(err), "%v", err)
	require.Contains(t, domain.ErrorMessage(err), "redirects too often")
}

func TestConditionalGetAndSharing(t *testing.T) {
	t.Parallel()
	var requests, notModified atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		if r.Header.Get("If-None-Match") == `"v1"` {
			notModified.Add(1)
			w.WriteHeader(http.StatusNotModified)
			return
		}
		time.Sleep(20 * time.Millisecond)
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"price": 42}`)
	}))
	t.Cleanup(srv.Close)
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	f := source.New(source.Config{AllowPrivate: true, Fresh: 5 * time.Second}, clock)
	ctx := context.Background()

	// Ten monitors sharing the source in one tick: one request.
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			doc, err := f.Fetch(ctx, srv.URL)
			require.NoError(t, err)
			require.Equal(t, `{"price": 42}`, string(doc.Body))
		}()
	}
	wg.Wait()
	require.Equal(t, int32(1), requests.Load())

	// Later, a conditional GET: the origin answers 304 and the document is served again.
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	doc, err := f.Fetch(ctx, srv.URL)
	require.NoError(t, err)
	require.Equal(t, int32(2), requests.Load())
	require.Equal(t, int32(1), notModified.Load())
	require.Equal(t, `{"price": 42}`, string(doc.Body))
	require.True(t, doc.FetchedAt.Equal(now.UTC()), "a 304 refreshes the fetch time")

	// Within Fresh the document is shared, unless the caller wants one fetched later: a
	// monitor's next slot never reads a document older than its slot.
	mu.Lock()
	now = now.Add(time.Second)
	mu.Unlock()
	_, err = f.Fetch(ai.WithFetchedAfter(ctx, now.Add(-2*time.Second)), srv.URL)
	require.NoError(t, err)
	require.Equal(t, int32(2), requests.Load(), "fetched after the asked time: shared")
	_, err = f.Fetch(ai.WithFetchedAfter(ctx, now), srv.URL)
	require.NoError(t, err)
	require.Equal(t, int32(3), requests.Load(), "fetched before the asked time: asked again")
}

func TestVisibleText(t *testing.T) {
	t.Parallel()
	pages := map[string]struct {
		contentType, body string
		want, absent      []string
	}{
		"html": {"text/html; charset=utf-8", `<html><head><title>Shop</title><style>p{color:red}</style><script>var price = 1;</script></head>
			<body><h1>Widget</h1><p>Price: <b>$64.99</b> &amp; free shipping</p><noscript>enable js</noscript></body></html>`,
			[]string{"Widget", "Price: $64.99 & free shipping"}, []string{"var price", "color:red", "enable js", "<b>"}},
		"rss": {"application/rss+xml", `<?xml version="1.0"?><rss><channel><title>Status</title>
			<item><title>Partial outage</title><description>&lt;p&gt;API errors &lt;b&gt;elevated&lt;/b&gt;&lt;/p&gt;</description></item></channel></rss>`,
			[]string{"Partial outage", "API errors elevated"}, []string{"<p>", "&lt;"}},
		"json": {"application/json", `{"price": 1}`, nil, nil},
	}
	for name, p := range pages {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", p.contentType)
				fmt.Fprint(w, p.body)
			}))
			t.Cleanup(srv.Close)
			doc, err := source.New(source.Config{AllowPrivate: true}, time.Now).Fetch(context.Background(), srv.URL)
			require.NoError(t, err)
			for _, w := range p.want {
				require.Contains(t, doc.Text, w)
			}
			for _, a := range p.absent {
				require.NotContains(t, doc.Text, a)
			}
			if name == "json" {
				require.Empty(t, doc.Text)
			}
		})
	}
}

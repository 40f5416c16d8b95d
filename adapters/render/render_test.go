package render_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/render"
	"github.com/vigilhq/vigil/domain"
)

// newRenderer starts a renderer on the test machine's Chromium (VIGIL_CHROMIUM, which make
// test sets after installing Debian's chromium when missing). Only 127.0.0.1 stands in for
// the public internet: every other address, loopback included, is forbidden as in
// production.
func newRenderer(t *testing.T, cfg render.Config) *render.Renderer {
	t.Helper()
	path, err := render.Find(os.Getenv("VIGIL_CHROMIUM"))
	require.NoError(t, err, "no Chromium: run `make test`, which installs Debian's chromium, or set VIGIL_CHROMIUM")
	cfg.ExecPath = path
	if cfg.Allow == nil {
		cfg.Allow = func(a netip.Addr) bool { return a == netip.MustParseAddr("127.0.0.1") }
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	r, err := render.New(cfg, time.Now)
	require.NoError(t, err)
	t.Cleanup(r.Close)
	return r
}

var (
	sharedOnce     sync.Once
	sharedRenderer *render.Renderer
	sharedErr      error
)

// shared is one renderer with the default settings for the tests that need no other, so
// the package starts fewer browsers at once.
func shared(t *testing.T) *render.Renderer {
	t.Helper()
	sharedOnce.Do(func() {
		path, err := render.Find(os.Getenv("VIGIL_CHROMIUM"))
		if err != nil {
			sharedErr = err
			return
		}
		sharedRenderer, sharedErr = render.New(render.Config{ExecPath: path, Timeout: 30 * time.Second,
			Allow: func(a netip.Addr) bool { return a == netip.MustParseAddr("127.0.0.1") }}, time.Now)
	})
	require.NoError(t, sharedErr, "no Chromium: run `make test`, which installs Debian's chromium, or set VIGIL_CHROMIUM")
	return sharedRenderer
}

// TestMain closes the shared renderer's browser.
func TestMain(m *testing.M) {
	code := m.Run()
	if sharedRenderer != nil {
		sharedRenderer.Close()
	}
	os.Exit(code)
}

func page(t *testing.T, routes map[string]http.HandlerFunc) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	for path, h := range routes {
		mux.HandleFunc(path, h)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func html(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, body)
	}
}

func TestRendersWhatScriptsDraw(t *testing.T) {
	t.Parallel()
	r := shared(t)
	srv := page(t, map[string]http.HandlerFunc{
		"/": html(`<html><body><div id="product">Loading…</div><script>
			fetch("/api/price").then(r => r.json()).then(p => setTimeout(() => {
				document.getElementById("product").innerHTML = '<span class="price">$' + p.price.toFixed(2) + '</span>';
			}, 150));</script></body></html>`),
		"/api/price": func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"price": 42.5}`)
		},
	})
	doc, err := r.Fetch(context.Background(), srv.URL+"/")
	require.NoError(t, err)
	require.Contains(t, string(doc.Body), `<span class="price">$42.50</span>`)
	require.Contains(t, doc.Text, "$42.50")
	require.NotContains(t, doc.Text, "Loading")
	require.Equal(t, "text/html", doc.ContentType)
	require.Len(t, doc.Hash, 64)
}

// TestRefusesForbiddenRequestsFromThePage: a page on an allowed address that asks, from
// inside the browser, for a loopback address, the cloud metadata address and a WebSocket
// on loopback gets none of them; a page on a forbidden address is not loaded at all.
func TestRefusesForbiddenRequestsFromThePage(t *testing.T) {
	t.Parallel()
	r := shared(t)
	var secretHits atomic.Int32
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	require.NoError(t, err)
	secret := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		secretHits.Add(1)
		w.Header().Set("Access-Control-Allow-Origin", "*")
		fmt.Fprint(w, "s3cr3t")
	}), ReadHeaderTimeout: time.Second}
	go secret.Serve(ln) //nolint:errcheck // closed below
	t.Cleanup(func() { secret.Close() })
	secretURL := "http://" + ln.Addr().String()

	srv := page(t, map[string]http.HandlerFunc{"/": html(fmt.Sprintf(`<html><body><p id="out">waiting</p><script>
		const out = [];
		const note = s => { out.push(s); document.getElementById("out").textContent = out.sort().join(" "); };
		fetch(%[1]q + "/secret").then(r => r.text()).then(t => note("leaked:" + t)).catch(() => note("fetch-blocked"));
		fetch("http://169.254.169.254/latest/meta-data/").then(() => note("metadata-leaked")).catch(() => note("metadata-blocked"));
		const img = new Image(); img.onerror = () => note("image-blocked"); img.onload = () => note("image-leaked"); img.src = %[1]q + "/pixel";
		try { const ws = new WebSocket(%[2]q); ws.onopen = () => note("ws-leaked"); ws.onerror = () => note("ws-blocked"); } catch (e) { note("ws-blocked"); }
		</script></body></html>`, secretURL, "ws://"+ln.Addr().String()+"/ws"))})

	doc, err := r.Fetch(context.Background(), srv.URL+"/")
	require.NoError(t, err)
	require.Contains(t, doc.Text, "fetch-blocked image-blocked metadata-blocked ws-blocked")
	require.NotContains(t, doc.Text, "leaked")
	require.Zero(t, secretHits.Load(), "the forbidden server was reached")

	_, err = r.Fetch(context.Background(), secretURL+"/")
	require.Equal(t, domain.EINVALID, domain.ErrorCode(err))
	require.Contains(t, domain.ErrorMessage(err), "private or local address")
	_, err = r.Fetch(context.Background(), "file:///etc/passwd")
	require.Equal(t, domain.EINVALID, domain.ErrorCode(err))
	require.Zero(t, secretHits.Load())
}

func TestTimeLimit(t *testing.T) {
	t.Parallel()
	r := newRenderer(t, render.Config{Timeout: 4 * time.Second})
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	srv := page(t, map[string]http.HandlerFunc{"/": func(w http.ResponseWriter, req *http.Request) {
		select { // a page that never finishes loading
		case <-release:
		case <-req.Context().Done():
		}
	}})
	_, err := r.Fetch(context.Background(), srv.URL+"/")
	require.Equal(t, domain.EUNAVAILABLE, domain.ErrorCode(err))
	require.Contains(t, domain.ErrorMessage(err), "did not render within 4s")

	// The browser still works afterwards.
	ok := page(t, map[string]http.HandlerFunc{"/": html(`<p>fine</p>`)})
	doc, err := r.Fetch(context.Background(), ok.URL+"/")
	require.NoError(t, err)
	require.Contains(t, doc.Text, "fine")
}

func TestNoCookiesKeptBetweenFetches(t *testing.T) {
	t.Parallel()
	r := shared(t)
	var mu sync.Mutex
	var cookies []string
	srv := page(t, map[string]http.HandlerFunc{"/": func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path != "/" { // the browser's favicon request, in the same context
			http.NotFound(w, req)
			return
		}
		mu.Lock()
		cookies = append(cookies, req.Header.Get("Cookie"))
		mu.Unlock()
		http.SetCookie(w, &http.Cookie{Name: "session", Value: "from-server", Path: "/", MaxAge: 3600})
		html(`<script>document.cookie = "seen=1; max-age=3600; path=/"; localStorage.setItem("k", "v");</script><p>hi</p>`)(w, req)
	}})
	for range 2 {
		_, err := r.Fetch(context.Background(), srv.URL+"/")
		require.NoError(t, err)
	}
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []string{"", ""}, cookies, "the second fetch sent the first one's cookies")
}

func TestLimits(t *testing.T) {
	t.Parallel()
	r := newRenderer(t, render.Config{Tabs: 1, MaxBytes: 2000})
	var inFlight, most atomic.Int32
	srv := page(t, map[string]http.HandlerFunc{
		"/slow": func(w http.ResponseWriter, req *http.Request) {
			n := inFlight.Add(1)
			defer inFlight.Add(-1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			time.Sleep(300 * time.Millisecond)
			html(`<p>slow</p>`)(w, req)
		},
		"/big": html(`<p>` + strings.Repeat("x", 5000) + `</p>`),
	})
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := r.Fetch(context.Background(), srv.URL+"/slow")
			require.NoError(t, err)
		}()
	}
	wg.Wait()
	require.Equal(t, int32(1), most.Load(), "more pages than tabs rendered at once")

	_, err := r.Fetch(context.Background(), srv.URL+"/big")
	require.Equal(t, domain.EINVALID, domain.ErrorCode(err))
	require.Contains(t, domain.ErrorMessage(err), "larger than 2000 bytes")
}

// BenchmarkRender measures rendered pages per minute with one browser and its default two
// tabs, on a page that draws its price after the load event:
// go test -run '^$' -bench Render ./adapters/render/ (make bench-extract runs it).
func BenchmarkRender(b *testing.B) {
	path, err := render.Find(os.Getenv("VIGIL_CHROMIUM"))
	if err != nil {
		b.Fatal("no Chromium: set VIGIL_CHROMIUM")
	}
	r, err := render.New(render.Config{ExecPath: path, AllowPrivate: true}, time.Now)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	srv := httptest.NewServer(html(`<html><body><div id="p"></div><script>
		addEventListener("load", () => setTimeout(() => { document.getElementById("p").textContent = "$42.50"; }, 50));
	</script></body></html>`))
	defer srv.Close()
	if _, err := r.Fetch(context.Background(), srv.URL); err != nil { // start the browser
		b.Fatal(err)
	}
	b.ResetTimer()
	var wg sync.WaitGroup
	var next atomic.Int64
	for range render.TabsDefault {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				doc, err := r.Fetch(context.Background(), srv.URL)
				if err != nil || !strings.Contains(doc.Text, "$42.50") {
					b.Errorf("render: %v (%q)", err, doc.Text)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Minutes(), "pages/min")
}

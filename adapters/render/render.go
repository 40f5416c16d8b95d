// Package render fetches pages that draw their content with JavaScript, in one shared
// headless Chromium driven through chromedp. A bounded number of pages render at once,
// each in a browser context of its own, so no cookie, storage or cache of one monitor is
// seen by another; each page has a time limit, a JavaScript memory limit and a size limit
// on what it renders to. The SSRF guard of sources applies to every request a page makes:
// each is intercepted and refused when its host resolves to a forbidden address, and the
// browser reaches the network only through a proxy in this process that checks the
// address of every connection it dials (which also covers WebSockets, workers and DNS
// that changes between the check and the connection).
package render

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"iter"
	"net"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/vigilhq/vigil/adapters/source"
	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/ai"
)

// Defaults for Config fields left zero.
const (
	TabsDefault     = 2
	TimeoutDefault  = 20 * time.Second
	SettleDefault   = 400 * time.Millisecond
	MemoryMBDefault = 256
)

// Config tunes a Renderer.
type Config struct {
	// ExecPath is the Chromium binary; Find looks for one.
	ExecPath string
	// Tabs bounds the pages rendering at once; more wait for a free tab.
	Tabs int
	// Timeout bounds one page, from the wait for a tab to the rendered document.
	Timeout time.Duration
	// MaxBytes bounds the rendered document (default source.MaxBytesDefault).
	MaxBytes int64
	// Settle is how long the document must stay unchanged after it loaded before it is
	// read, so that content drawn after the load event is there.
	Settle time.Duration
	// MemoryMB is the JavaScript heap a page's renderer may use.
	MemoryMB int
	// AllowPrivate and Allow are the SSRF guard, as for source.Config.
	AllowPrivate bool
	Allow        func(netip.Addr) bool
	// UserAgent is sent with every request (default source.UserAgentDefault).
	UserAgent string
	// Polite holds the host limits and robots.txt rules a page's URL waits for, shared
	// with the plain fetcher; nil for none.
	Polite *source.Polite
}

// ErrNoBrowser is returned by Find when no Chromium is installed.
var ErrNoBrowser = errors.New("no Chromium found")

// Find returns the Chromium to use: path when it is set (and exists), else the first of
// chromium, chromium-browser, google-chrome and google-chrome-stable on PATH.
func Find(path string) (string, error) {
	if path != "" {
		if _, err := os.Stat(path); err != nil {
			return "", fmt.Errorf("%w at %s: %w", ErrNoBrowser, path, err)
		}
		return path, nil
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w on PATH", ErrNoBrowser)
}

// Renderer renders pages in one shared browser, started on first use and again after it
// died. It satisfies app.Fetcher.
type Renderer struct {
	cfg   Config
	tabs  chan struct{}
	now   func() time.Time
	proxy *proxy

	mu      sync.Mutex
	browser context.Context // the browser's root chromedp context; nil before the first use
	stop    func()
}

// New returns a Renderer; the browser starts on the first Fetch.
func New(cfg Config, now func() time.Time) (*Renderer, error) {
	if cfg.ExecPath == "" {
		return nil, fmt.Errorf("render: %w", ErrNoBrowser)
	}
	if cfg.Tabs <= 0 {
		cfg.Tabs = TabsDefault
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = TimeoutDefault
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = source.MaxBytesDefault
	}
	if cfg.Settle <= 0 {
		cfg.Settle = SettleDefault
	}
	if cfg.MemoryMB <= 0 {
		cfg.MemoryMB = MemoryMBDefault
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = source.UserAgentDefault
	}
	if cfg.Allow == nil {
		cfg.Allow = source.NewPublicFilter()
	}
	p, err := startProxy(source.Dialer(source.Config{AllowPrivate: cfg.AllowPrivate, Allow: cfg.Allow}))
	if err != nil {
		return nil, fmt.Errorf("render: %w", err)
	}
	return &Renderer{cfg: cfg, tabs: make(chan struct{}, cfg.Tabs), now: now, proxy: p}, nil
}

// Close stops the browser and the proxy.
func (r *Renderer) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stop != nil {
		r.stop()
		r.browser, r.stop = nil, nil
	}
	r.proxy.close()
}

// ensureBrowser returns the running browser's context, starting it when there is none or
// the last one died.
func (r *Renderer) ensureBrowser() (context.Context, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.browser != nil && r.browser.Err() == nil {
		return r.browser, nil
	}
	if r.stop != nil {
		r.stop()
	}
	dir, err := os.MkdirTemp("", "vigil-chromium-")
	if err != nil {
		return nil, fmt.Errorf("browser profile: %w", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(r.cfg.ExecPath), chromedp.NoSandbox,
		chromedp.UserDataDir(dir), chromedp.UserAgent(r.cfg.UserAgent),
		chromedp.ProxyServer("http://"+r.proxy.addr()),
		// Loopback too goes through the proxy, which decides whether it may be reached.
		chromedp.Flag("proxy-bypass-list", "<-loopback>"),
		chromedp.Flag("js-flags", fmt.Sprintf("--max-old-space-size=%d", r.cfg.MemoryMB)),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-sync", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-features", "Translate,MediaRouter,OptimizationHints,DnsOverHttps"),
		chromedp.Flag("mute-audio", true), chromedp.Flag("disable-gpu", true))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		cancelAlloc()
		os.RemoveAll(dir) //nolint:errcheck // a temporary profile
		return nil, &domain.Error{Code: domain.EUNAVAILABLE, Message: "The browser that renders pages could not start.", Err: err}
	}
	r.browser = ctx
	r.stop = func() {
		cancel()
		cancelAlloc()
		os.RemoveAll(dir) //nolint:errcheck // a temporary profile
	}
	return ctx, nil
}

// Fetch renders the page at rawURL and returns its document: the HTML as the scripts left
// it and its visible text. Errors are those of source.Fetcher: EINVALID for a URL or an
// address that is not allowed and for a page too large, EUNAVAILABLE for a page that did
// not render in time or a browser that failed.
func (r *Renderer) Fetch(ctx context.Context, rawURL string) (ai.Document, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return ai.Document{}, domain.Errorf(domain.EINVALID, "The source %q is not an http(s) URL.", rawURL)
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	if err := r.allowed(ctx, u); err != nil {
		return ai.Document{}, err
	}
	release, err := r.cfg.Polite.Acquire(ctx, u)
	if err != nil {
		return ai.Document{}, err
	}
	defer release()
	select {
	case r.tabs <- struct{}{}:
		defer func() { <-r.tabs }()
	case <-ctx.Done():
		return ai.Document{}, &domain.Error{Code: domain.EUNAVAILABLE, Message: "Every tab of the browser was busy for too long.", Err: ctx.Err()}
	}
	browser, err := r.ensureBrowser()
	if err != nil {
		return ai.Document{}, err
	}
	// A browser context of its own: nothing the page stores outlives this fetch.
	tab, closeTab := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	defer closeTab()
	doc, err := r.render(ctx, tab, u)
	if err != nil && ctx.Err() != nil {
		return ai.Document{}, &domain.Error{Code: domain.EUNAVAILABLE, Message: fmt.Sprintf("The page did not render within %s.", r.cfg.Timeout), Err: err}
	}
	return doc, err
}

// render loads u in tab with every request checked, waits for the document to settle and
// reads it. ctx bounds the page.
func (r *Renderer) render(ctx context.Context, tab context.Context, u *url.URL) (ai.Document, error) {
	target, err := chromedp.Run(tab, func(_ context.Context, t *chromedp.Target) (*chromedp.Target, error) { return t, nil })
	if err != nil {
		return ai.Document{}, &domain.Error{Code: domain.EUNAVAILABLE, Message: "The browser could not open a tab.", Err: err}
	}
	// The tab lives as long as tab; its actions run in a child of it that ends with ctx.
	pctx, cancel := context.WithCancel(tab)
	defer cancel()
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	ctx = pctx
	paused := chromedp.Events(tab, fetch.RequestPaused)
	if _, err := cdp.Call(ctx, target, fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{{URLPattern: "*"}}}); err != nil {
		return ai.Document{}, &domain.Error{Code: domain.EUNAVAILABLE, Message: "The browser could not watch the page's requests.", Err: err}
	}
	go r.guard(ctx, target, paused)

	if err := chromedp.Do(ctx, chromedp.Navigate(u.String())); err != nil {
		var le *chromedp.LoadError
		if errors.As(err, &le) && strings.Contains(le.ErrorText, "BLOCKED_BY_CLIENT") {
			return ai.Document{}, &domain.Error{Code: domain.EINVALID, Message: "The source resolves to a private or local address, which is not allowed.", Err: err}
		}
		return ai.Document{}, &domain.Error{Code: domain.EUNAVAILABLE, Message: fmt.Sprintf("Could not load %s in the browser.", u.Host), Err: err}
	}
	html, err := r.settled(ctx)
	if err != nil {
		return ai.Document{}, err
	}
	if int64(len(html)) > r.cfg.MaxBytes {
		return ai.Document{}, domain.Errorf(domain.EINVALID, "The rendered page is larger than %d bytes.", r.cfg.MaxBytes)
	}
	text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	if err != nil {
		return ai.Document{}, &domain.Error{Code: domain.EUNAVAILABLE, Message: "Could not read the rendered page.", Err: err}
	}
	final, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		final = u.String()
	}
	sum := sha256.Sum256([]byte(html))
	return ai.Document{URL: final, ContentType: "text/html", Body: []byte(html), Text: text, FetchedAt: r.now().UTC(),
		Hash: hex.EncodeToString(sum[:])}, nil
}

// settled returns the document's HTML once it has not changed for Settle (or when the
// page's time is nearly up).
func (r *Renderer) settled(ctx context.Context) (string, error) {
	const poll = 100 * time.Millisecond
	var last string
	stable := time.Duration(0)
	for {
		html, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement ? document.documentElement.outerHTML : ""`))
		if err != nil {
			return "", &domain.Error{Code: domain.EUNAVAILABLE, Message: "Could not read the rendered page.", Err: err}
		}
		if int64(len(html)) > r.cfg.MaxBytes {
			return html, nil
		}
		if html == last {
			stable += poll
		} else {
			last, stable = html, 0
		}
		deadline, ok := ctx.Deadline()
		if stable >= r.cfg.Settle || ok && time.Until(deadline) < 2*poll {
			return last, nil
		}
		select {
		case <-time.After(poll):
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
}

// guard answers every paused request of the page: continued when its URL may be reached,
// failed as blocked otherwise.
func (r *Renderer) guard(ctx context.Context, t *chromedp.Target, paused iter.Seq2[fetch.EventRequestPaused, error]) {
	for ev, err := range paused {
		if err != nil || ctx.Err() != nil {
			return
		}
		u, perr := url.Parse(ev.Request.URL)
		if perr == nil && r.allowedURL(ctx, u) == nil {
			cdp.Call(ctx, t, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: ev.RequestID}) //nolint:errcheck // the tab may be gone
			continue
		}
		cdp.Call(ctx, t, fetch.FailRequest, fetch.FailRequestParams{RequestID: ev.RequestID, ErrorReason: network.ErrorReasonBlockedByClient}) //nolint:errcheck // the tab may be gone
	}
}

// allowed checks the page's own URL.
func (r *Renderer) allowed(ctx context.Context, u *url.URL) error {
	if err := r.allowedURL(ctx, u); err != nil {
		return &domain.Error{Code: domain.EINVALID, Message: "The source resolves to a private or local address, which is not allowed.", Err: err}
	}
	return nil
}

// allowedURL reports whether a request of a page may go to u: data and blob URLs never
// leave the browser; http(s) and ws(s) hosts must resolve only to addresses the guard
// allows; anything else is refused.
func (r *Renderer) allowedURL(ctx context.Context, u *url.URL) error {
	switch u.Scheme {
	case "data", "blob", "about":
		return nil
	case "http", "https", "ws", "wss":
	default:
		return fmt.Errorf("%w: %s URL", source.ErrForbiddenAddress, u.Scheme)
	}
	if r.cfg.AllowPrivate {
		return nil
	}
	host := u.Hostname()
	addrs, err := resolve(ctx, host)
	if err != nil {
		return err
	}
	for _, a := range addrs {
		if !r.cfg.Allow(a) {
			return fmt.Errorf("%w: %s", source.ErrForbiddenAddress, a)
		}
	}
	return nil
}

// resolve returns the addresses of host, a name or a literal address.
func resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		return []netip.Addr{a}, nil
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", host, err)
	}
	return addrs, nil
}

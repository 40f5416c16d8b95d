package source_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/source"
	"github.com/vigilhq/vigil/domain"
)

// TestPoliteHostConcurrency: monitors on one host never fetch it more at once than the
// limit, whatever their number, and every one is served.
func TestPoliteHostConcurrency(t *testing.T) {
	t.Parallel()
	var inFlight, most, served atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		time.Sleep(30 * time.Millisecond)
		served.Add(1)
		fmt.Fprint(w, `{"price": 1}`)
	}))
	t.Cleanup(srv.Close)
	f := source.New(source.Config{AllowPrivate: true, Polite: source.PoliteConfig{HostConcurrency: 2}}, time.Now)
	var wg sync.WaitGroup
	for i := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := f.Fetch(context.Background(), fmt.Sprintf("%s/item/%d", srv.URL, i))
			require.NoError(t, err)
		}()
	}
	wg.Wait()
	require.Equal(t, int32(12), served.Load())
	require.Equal(t, int32(2), most.Load(), "more requests to one host at once than its limit")
}

// TestPoliteHostDelay: requests to one host start at least the delay apart; another host
// does not wait for them.
func TestPoliteHostDelay(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var starts []time.Time
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		starts = append(starts, time.Now())
		mu.Unlock()
		fmt.Fprint(w, "ok")
	}))
	t.Cleanup(srv.Close)
	const delay = 150 * time.Millisecond
	f := source.New(source.Config{AllowPrivate: true, Polite: source.PoliteConfig{HostDelay: delay}}, time.Now)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := f.Fetch(context.Background(), fmt.Sprintf("%s/p/%d", srv.URL, i))
			require.NoError(t, err)
		}()
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	slices.SortFunc(starts, func(a, b time.Time) int { return a.Compare(b) })
	require.Len(t, starts, 4)
	// The fetcher lets them go delay apart; on a loaded machine each may then reach the
	// server some tens of milliseconds late, which narrows one gap and widens the next.
	const noise = 50 * time.Millisecond
	for i := 1; i < len(starts); i++ {
		require.GreaterOrEqual(t, starts[i].Sub(starts[i-1]), delay-noise, "requests %d and %d too close", i-1, i)
	}
	require.GreaterOrEqual(t, starts[3].Sub(starts[0]), 3*delay-noise, "four requests take three delays")
}

func TestRobotsTxt(t *testing.T) {
	t.Parallel()
	var robotsReads atomic.Int32
	var mu sync.Mutex
	robots, robotsStatus := "User-agent: *\nDisallow: /admin\n\nUser-agent: VigilBot\nDisallow: /private\nAllow: /private/open\n", http.StatusOK
	var agents []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		agents = append(agents, r.UserAgent())
		if r.URL.Path == "/robots.txt" {
			robotsReads.Add(1)
			w.WriteHeader(robotsStatus)
			fmt.Fprint(w, robots)
			return
		}
		fmt.Fprint(w, "page "+r.URL.Path)
	}))
	t.Cleanup(srv.Close)
	const agent = "VigilBot/1.0 (+https://vigil.example/bot)"
	f := source.New(source.Config{AllowPrivate: true, Fresh: -1, UserAgent: agent, Polite: source.PoliteConfig{Robots: true}}, time.Now)
	ctx := context.Background()

	for _, path := range []string{"/public", "/admin", "/private/open/x"} {
		_, err := f.Fetch(ctx, srv.URL+path)
		require.NoError(t, err, path) // VigilBot's own group replaces the * group
	}
	_, err := f.Fetch(ctx, srv.URL+"/private/x?id=1")
	require.Equal(t, domain.EINVALID, domain.ErrorCode(err))
	require.Contains(t, domain.ErrorMessage(err), "does not allow VigilBot to read /private/x?id=1")
	require.Contains(t, domain.ErrorMessage(err), "SOURCE_ROBOTS=false")
	require.Equal(t, int32(1), robotsReads.Load(), "robots.txt is read once per host, then kept")
	mu.Lock()
	for _, a := range agents {
		require.Equal(t, agent, a)
	}
	mu.Unlock()

	// Another site: no robots.txt (404) restricts nothing; a failing one (503) stops reads.
	for status, code := range map[int]string{http.StatusNotFound: "", http.StatusServiceUnavailable: domain.EUNAVAILABLE} {
		mu.Lock()
		robots, robotsStatus = "User-agent: *\nDisallow: /\n", status
		mu.Unlock()
		other := httptest.NewServer(srv.Config.Handler)
		g := source.New(source.Config{AllowPrivate: true, Polite: source.PoliteConfig{Robots: true}}, time.Now)
		_, err := g.Fetch(ctx, other.URL+"/anything")
		other.Close()
		if code == "" {
			require.NoError(t, err)
		} else {
			require.Equal(t, code, domain.ErrorCode(err))
			require.Contains(t, domain.ErrorMessage(err), "robots.txt")
		}
	}

	// Turned off, robots.txt is not read at all.
	off := source.New(source.Config{AllowPrivate: true, Fresh: -1}, time.Now)
	before := robotsReads.Load()
	_, err = off.Fetch(ctx, srv.URL+"/private/x")
	require.NoError(t, err)
	require.Equal(t, before, robotsReads.Load())
}

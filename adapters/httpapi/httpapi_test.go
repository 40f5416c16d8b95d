package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vigilhq/vigil/adapters/httpapi"
)

type checkFunc func(context.Context) error

func (f checkFunc) Check(ctx context.Context) error { return f(ctx) }

func get(t *testing.T, h http.Handler, path string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec
}

func TestHealthAndReadiness(t *testing.T) {
	t.Parallel()
	var failing error
	s := httpapi.New(httpapi.Config{Logger: zerolog.Nop(), Checks: map[string]httpapi.Checker{
		"postgres": checkFunc(func(context.Context) error { return failing }),
	}})
	if rec := get(t, s.Handler(), "/healthz"); rec.Code != http.StatusOK {
		t.Fatalf("/healthz = %d", rec.Code)
	}
	if rec := get(t, s.Handler(), "/readyz"); rec.Code != http.StatusOK {
		t.Fatalf("/readyz = %d %s", rec.Code, rec.Body)
	}
	failing = errors.New("schema at version 3, want 4")
	rec := get(t, s.Handler(), "/readyz")
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "version 3") {
		t.Fatalf("/readyz with a failing check = %d %s", rec.Code, rec.Body)
	}
}

func TestProblemDetails(t *testing.T) {
	t.Parallel()
	s := httpapi.New(httpapi.Config{Logger: zerolog.Nop()})
	rec := get(t, s.Handler(), "/nowhere")
	if rec.Code != http.StatusNotFound || rec.Header().Get("Content-Type") != "application/problem+json" {
		t.Fatalf("unknown route = %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	var p httpapi.Problem
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.Code != "not_found" || p.Status != 404 {
		t.Fatalf("problem = %+v (%v)", p, err)
	}
	if rec.Header().Get("X-Request-Id") == "" {
		t.Fatal("no request id")
	}
}

func TestDemoSource(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	s := httpapi.New(httpapi.Config{Logger: zerolog.Nop(), DemoSource: true, Now: func() time.Time { return at }})
	rec := get(t, s.Handler(), "/demo/price.json")
	var body struct{ Price float64 }
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Price != httpapi.DemoPrice(at, 0) {
		t.Fatalf("demo price = %s (%v)", rec.Body, err)
	}
	if rec := get(t, s.Handler(), "/demo/page.html"); !strings.Contains(rec.Body.String(), "Price: $") {
		t.Fatalf("demo page = %s", rec.Body)
	}
	low, high := 1000.0, 0.0
	for m := 0; m < 6*60; m += 5 {
		p := httpapi.DemoPrice(at.Add(time.Duration(m)*time.Second), 0)
		low, high = min(low, p), max(high, p)
	}
	if low > 65 || high < 95 {
		t.Fatalf("demo price range over a period = [%v, %v], want it to cross $80 both ways", low, high)
	}
}

type fakeTokens struct{}

func (fakeTokens) Verify(tok string) (string, string, error) {
	if tok != "good" {
		return "", "", errors.New("bad")
	}
	return "user-1", "ann@example.com", nil
}

type recordingUnsubscriber struct{ calls []string }

func (r *recordingUnsubscriber) Resubscribe(_ context.Context, userID, email string) error {
	r.calls = append(r.calls, "undo "+userID+" "+email)
	return nil
}

func (r *recordingUnsubscriber) Unsubscribe(_ context.Context, userID, email string) error {
	r.calls = append(r.calls, userID+" "+email)
	return nil
}

func TestUnsubscribe(t *testing.T) {
	t.Parallel()
	unsub := &recordingUnsubscriber{}
	s := httpapi.New(httpapi.Config{Logger: zerolog.Nop(), UnsubscribeTokens: fakeTokens{}, Unsubscriber: unsub})
	if rec := get(t, s.Handler(), "/unsubscribe?token=good"); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "<form") || len(unsub.calls) != 0 {
		t.Fatalf("GET must only confirm: %d %v", rec.Code, unsub.calls)
	}
	if rec := get(t, s.Handler(), "/unsubscribe?token=forged"); rec.Code != http.StatusBadRequest {
		t.Fatalf("forged token = %d", rec.Code)
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/unsubscribe?token=good", strings.NewReader("List-Unsubscribe=One-Click"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	s.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || len(unsub.calls) != 1 || unsub.calls[0] != "user-1 ann@example.com" {
		t.Fatalf("one-click POST = %d %v", rec.Code, unsub.calls)
	}
	if !strings.Contains(rec.Body.String(), `name="undo"`) || !strings.Contains(rec.Header().Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Fatalf("the page it lands on must offer an undo and forbid framing: %s", rec.Body)
	}
	// The undo button on that page subscribes the address again.
	rec = httptest.NewRecorder()
	req = httptest.NewRequest(http.MethodPost, "/unsubscribe?token=good", strings.NewReader("undo=1"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	s.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || len(unsub.calls) != 2 || unsub.calls[1] != "undo user-1 ann@example.com" ||
		!strings.Contains(rec.Body.String(), "subscribed again") {
		t.Fatalf("undo POST = %d %v %s", rec.Code, unsub.calls, rec.Body)
	}
}

func TestClientIPIsNotForgeable(t *testing.T) {
	t.Parallel()
	var seen string
	probe := func(s *httpapi.Server) string {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/healthz", nil)
		req.RemoteAddr = "10.1.2.3:4567"
		req.Header.Set("X-Forwarded-For", "203.0.113.9")
		s.Handler().ServeHTTP(rec, req)
		return seen
	}
	logger := zerolog.New(writerFunc(func(p []byte) (int, error) {
		if i := strings.Index(string(p), `"ip":"`); i >= 0 {
			seen = strings.SplitN(string(p)[i+6:], `"`, 2)[0]
		}
		return len(p), nil
	})).Level(zerolog.DebugLevel)
	if ip := probe(httpapi.New(httpapi.Config{Logger: logger})); ip != "10.1.2.3" {
		t.Fatalf("without trusted proxies the client IP is %q, want the connection's 10.1.2.3", ip)
	}
	trusted := httpapi.New(httpapi.Config{Logger: logger, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	if ip := probe(trusted); ip != "203.0.113.9" {
		t.Fatalf("behind a trusted proxy the client IP is %q, want 203.0.113.9", ip)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

type observed struct {
	method, route string
	status        int
}

type recordingObserver struct{ got []observed }

func (r *recordingObserver) ObserveHTTP(method, route string, status int, _ time.Duration) {
	r.got = append(r.got, observed{method, route, status})
}

// TestRequestsAreObservedByRoute: the metrics see the route pattern, never the path a client
// sent, and "" for a path no route matched.
func TestRequestsAreObservedByRoute(t *testing.T) {
	t.Parallel()
	obs := &recordingObserver{}
	s := httpapi.New(httpapi.Config{Logger: zerolog.Nop(), Observer: obs, UnsubscribeTokens: fakeTokens{}, Unsubscriber: &recordingUnsubscriber{}})
	get(t, s.Handler(), "/healthz")
	get(t, s.Handler(), "/unsubscribe?token=forged")
	get(t, s.Handler(), "/no/such/path/1234")
	want := []observed{{"GET", "/healthz", 200}, {"GET", "/unsubscribe", 400}, {"GET", "", 404}}
	if len(obs.got) != len(want) {
		t.Fatalf("observed %v, want %v", obs.got, want)
	}
	for i := range want {
		if obs.got[i] != want[i] {
			t.Errorf("request %d observed as %+v, want %+v", i, obs.got[i], want[i])
		}
	}
}

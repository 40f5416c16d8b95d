package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/httpapi"
	"github.com/vigilhq/vigil/adapters/postgres"
	"github.com/vigilhq/vigil/domain/account"
)

// fuzzTimeDefault bounds TestFuzzHTTPAPI in `make test`; VIGIL_FUZZ_TIME (a Go duration)
// sets it, longer in `make fuzz`.
const fuzzTimeDefault = 12 * time.Second

// hostile are strings that have broken parsers, databases and templates somewhere.
var hostile = []string{
	"", " ", "a", "0", "-1", "1e309", "NaN", "null", "true", "[]", "{}", "\x00", "a\x00b", "\xff\xfe", "\xc3\x28",
	"' OR 1=1 --", `"; DROP TABLE users; --`, "<script>alert(1)</script>", "../../../etc/passwd", "%00", "%ff",
	"${jndi:ldap://x/a}", "{{.}}", "http://169.254.169.254/latest/meta-data/", "http://[::1]:22/", "file:///etc/passwd",
	"2026-13-45T99:99:99Z", "9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "🙂", "\u202eevil", "\r\nX-Injected: 1",
	strings.Repeat("x", 3000), strings.Repeat("é", 700), "01900000-0000-7000-8000-000000000000", "00000000-0000-0000-0000-000000000000",
}

// TestFuzzHTTPAPI: ASVS 4.0.3 V5.1.3, V7.4.1 and V13.2.x. Every operation of the OpenAPI
// document the server serves gets random and hostile path and query parameters, headers and
// bodies (valid-looking ones generated from its schema, wrong types, NUL bytes, bytes that
// are not UTF-8, other content types), for a bounded time. No answer may be a 5xx, every
// error of the JSON API is problem+json, and every answer is one the document allows.
func TestFuzzHTTPAPI(t *testing.T) {
	t.Parallel()
	budget := fuzzTimeDefault
	if raw := os.Getenv("VIGIL_FUZZ_TIME"); raw != "" {
		d, err := time.ParseDuration(raw)
		require.NoError(t, err, "VIGIL_FUZZ_TIME")
		budget = d
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d (VIGIL_FUZZ_SEED repeats a run)", seed)
	if raw := os.Getenv("VIGIL_FUZZ_SEED"); raw != "" {
		_, err := fmt.Sscan(raw, &seed)
		require.NoError(t, err, "VIGIL_FUZZ_SEED")
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))

	b, cfg := newStack(t)
	cfg.DemoSource = true
	cfg.Metrics = http.NotFoundHandler()
	cfg.UnsubscribeTokens, cfg.Unsubscriber = fakeTokens{}, &recordingUnsubscriber{}
	cfg.Admin = adminService(t, b.pool)
	keys, err := account.NewAPIKeyService(account.APIKeyDeps{Keys: postgres.NewAPIKeyStore(b.pool),
		Users: postgres.NewAccountStore(b.pool, "vigil/test"), Audit: postgres.NewAuditStore(b.pool), Clock: account.ClockFunc(time.Now)})
	require.NoError(t, err)
	cfg.APIKeys, cfg.APIKeyManager = httpapi.NewAPIKeyResolver(keys), keys
	srv := httpapi.New(cfg)
	b.h = srv.Handler()

	// A user with a monitor, an action and a trigger, so paths name real things too.
	rec := b.do(t, http.MethodPost, "/api/auth/register", `{"email":"fuzz@example.com","password":"`+goodPassword+`","name":"Fuzz"}`, "", nil)
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	token := decode[httpapi.TokenResponse](t, rec).AccessToken
	mon := b.create(t, token, fmt.Sprintf(`{"prompt":"Tell me when the price drops below $80","source_url":%q}`, b.source.URL))
	var actions struct {
		Actions []struct {
			ID string `json:"id"`
		} `json:"actions"`
	}
	require.NoError(t, json.Unmarshal(b.do(t, http.MethodGet, "/api/actions", "", token, nil).Body.Bytes(), &actions))
	var triggers struct {
		Triggers []struct {
			ID string `json:"id"`
		} `json:"triggers"`
	}
	require.NoError(t, json.Unmarshal(b.do(t, http.MethodGet, "/api/monitors/"+mon.ID+"/triggers", "", token, nil).Body.Bytes(), &triggers))
	real := map[string][]string{"id": {mon.ID}, "trigger_id": {}}
	if len(actions.Actions) > 0 {
		real["id"] = append(real["id"], actions.Actions[0].ID)
	}
	for _, tr := range triggers.Triggers {
		real["trigger_id"] = append(real["trigger_id"], tr.ID)
	}

	doc, err := httpapi.OpenAPI()
	require.NoError(t, err)
	served := map[string]bool{}
	for _, r := range srv.Routes() {
		served[r] = true
	}
	type op struct {
		method, path string
		o            *openapi3.Operation
	}
	var ops []op
	for path, item := range doc.Paths.Map() {
		for method, o := range item.Operations() {
			if !served[method+" "+echoPath(path)] || (method == http.MethodDelete && path == "/api/me") {
				continue // not wired here, or the one operation that would end the run
			}
			ops = append(ops, op{method, path, o})
		}
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].method+ops[i].path < ops[j].method+ops[j].path })
	require.NotEmpty(t, ops)

	g := &gen{rng: rng}
	failures := map[string]string{}
	requests := 0
	statuses := map[int]int{}
	deadline := time.Now().Add(budget)
	for time.Now().Before(deadline) {
		o := ops[rng.IntN(len(ops))]
		req := g.request(o.method, o.path, o.o, real, token)
		rec := httptest.NewRecorder()
		b.h.ServeHTTP(rec, req)
		requests++
		statuses[rec.Code]++
		key := fmt.Sprintf("%s %s %d", o.method, o.path, rec.Code)
		if _, seen := failures[key]; seen {
			continue
		}
		if problem := judge(req, rec); problem != "" {
			failures[key] = fmt.Sprintf("%s\n  request: %s %s %q\n  answer: %s", problem, req.Method, truncateForLog(req.URL.String()),
				truncateForLog(g.lastBody), truncateForLog(rec.Body.String()))
		}
	}
	t.Logf("%d requests over %d operations in %s; answers by status: %v", requests, len(ops), budget, statuses)
	require.Greater(t, statuses[http.StatusOK]+statuses[http.StatusCreated]+statuses[http.StatusNoContent], requests/50,
		"too few requests got past validation to exercise the handlers")
	keysSorted := make([]string, 0, len(failures))
	for k := range failures {
		keysSorted = append(keysSorted, k)
	}
	sort.Strings(keysSorted)
	for _, k := range keysSorted {
		t.Errorf("%s: %s", k, failures[k])
	}
}

// judge returns what is wrong with an answer, or "".
func judge(req *http.Request, rec *httptest.ResponseRecorder) string {
	ct := rec.Header().Get("Content-Type")
	switch {
	case rec.Code >= 500:
		return fmt.Sprintf("a %d", rec.Code)
	case rec.Code >= 400 && strings.HasPrefix(req.URL.Path, "/api/") && ct != "application/problem+json":
		return fmt.Sprintf("an error as %q, not problem+json", ct)
	}
	router, err := specRouter()
	if err != nil {
		return err.Error()
	}
	route, params, err := router.FindRoute(req)
	if err != nil {
		return "" // a path the document's router cannot even match (hostile bytes in it): checked above
	}
	opts := &openapi3filter.Options{IncludeResponseStatus: true, AuthenticationFunc: openapi3filter.NoopAuthenticationFunc,
		ExcludeResponseBody: !strings.Contains(ct, "json") || strings.Contains(ct, "ndjson")}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts},
		Status:                 rec.Code, Header: rec.Header(), Options: opts,
	}
	in.SetBodyBytes(rec.Body.Bytes())
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		return "an answer the document does not allow: " + firstLine(err.Error())
	}
	return ""
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func truncateForLog(s string) string {
	if len(s) > 400 {
		return s[:400] + "…"
	}
	return s
}

// gen makes requests from the document: mostly plausible, often hostile.
type gen struct {
	rng      *rand.Rand
	lastBody string
}

func (g *gen) chance(p float64) bool { return g.rng.Float64() < p }

func (g *gen) pick(xs []string) string { return xs[g.rng.IntN(len(xs))] }

func (g *gen) request(method, path string, o *openapi3.Operation, real map[string][]string, token string) *http.Request {
	// Path parameters: a real id, a random one, or something hostile, escaped as a client would.
	p := path
	for strings.Contains(p, "{") {
		i, j := strings.Index(p, "{"), strings.Index(p, "}")
		name := p[i+1 : j]
		var v string
		switch {
		case len(real[name]) > 0 && g.chance(0.6):
			v = g.pick(real[name])
		case name == "asset" && g.chance(0.5):
			v = g.pick([]string{"docs.js", "docs.css", "../openapi.yaml", "nope.js"})
		default:
			v = g.pick(hostile)
		}
		p = p[:i] + url.PathEscape(v) + p[j+1:]
	}
	q := url.Values{}
	for _, pr := range o.Parameters {
		if pr.Value == nil || pr.Value.In != "query" || !g.chance(0.6) {
			continue
		}
		if g.chance(0.5) && pr.Value.Schema != nil {
			q.Add(pr.Value.Name, g.scalar(pr.Value.Schema.Value))
		} else {
			q.Add(pr.Value.Name, g.pick(hostile))
		}
	}
	if g.chance(0.1) {
		q.Add(g.pick(hostile), g.pick(hostile))
	}
	target := p
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	var body []byte
	contentType := ""
	if o.RequestBody != nil && o.RequestBody.Value != nil {
		for ct, mt := range o.RequestBody.Value.Content {
			contentType = ct
			switch {
			case g.chance(0.1):
				body = []byte(g.pick(hostile))
			case g.chance(0.1):
				body = []byte("{\"a\":" + strings.Repeat("[", 200) + strings.Repeat("]", 200) + "}")
			case ct == "application/json" && mt.Schema != nil:
				v := g.value(mt.Schema.Value, 0)
				body, _ = json.Marshal(v)
				if g.chance(0.15) { // text json.Marshal cannot make: NUL escapes, bytes that are not UTF-8
					body = bytes.Replace(body, []byte(`"`), []byte("\"\\u0000\xff"), 1)
				}
			default:
				body = []byte(url.Values{"List-Unsubscribe": {"One-Click"}, g.pick(hostile): {g.pick(hostile)}}.Encode())
			}
			break
		}
	}
	if g.chance(0.1) {
		contentType = g.pick([]string{"text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin1",
			"multipart/form-data; boundary=x", "application/xml", ""})
	}
	g.lastBody = string(body)
	req := httptest.NewRequest(method, "/", bytes.NewReader(body))
	if u, err := url.Parse(target); err == nil {
		req.URL = u
		req.RequestURI = target
	}
	if contentType != "" && (len(body) > 0 || g.chance(0.5)) {
		req.Header.Set("Content-Type", contentType)
	}
	switch {
	case g.chance(0.8):
		req.Header.Set("Authorization", "Bearer "+token)
	case g.chance(0.5):
		req.Header.Set("Authorization", g.pick([]string{"Bearer ", "Bearer vgl_nope", "Basic YTpi", "Bearer " + g.pick(hostile)}))
	}
	if g.chance(0.2) {
		req.Header.Set("If-Match", g.pick([]string{`"1"`, `W/"x"`, "*", g.pick(hostile)}))
	}
	if g.chance(0.1) {
		req.Header.Set("Origin", "https://evil.example")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
	}
	return req
}

// scalar is a value for a query parameter of schema s.
func (g *gen) scalar(s *openapi3.Schema) string {
	if s == nil {
		return g.pick(hostile)
	}
	if len(s.Enum) > 0 && g.chance(0.7) {
		return fmt.Sprint(s.Enum[g.rng.IntN(len(s.Enum))])
	}
	switch {
	case s.Type.Is("integer"):
		return fmt.Sprint(g.rng.IntN(300) - 50)
	case s.Type.Is("number"):
		return fmt.Sprint(g.rng.Float64()*2000 - 500)
	case s.Type.Is("boolean"):
		return g.pick([]string{"true", "false", "1", "yes"})
	case s.Format == "date-time":
		return time.Now().Add(time.Duration(g.rng.IntN(2000)-1000) * time.Hour).Format(time.RFC3339)
	}
	return g.pick(append([]string{"price", "k1", "1h", "1d", "Europe/Paris", "csv", "ndjson"}, hostile...))
}

// value is a JSON value for schema s: mostly of its type, sometimes of another.
func (g *gen) value(s *openapi3.Schema, depth int) any {
	if s == nil || depth > 4 || g.chance(0.05) {
		return g.anyValue()
	}
	if len(s.OneOf) > 0 {
		return g.value(s.OneOf[g.rng.IntN(len(s.OneOf))].Value, depth+1)
	}
	if len(s.AnyOf) > 0 {
		return g.value(s.AnyOf[g.rng.IntN(len(s.AnyOf))].Value, depth+1)
	}
	if len(s.AllOf) > 0 {
		out := map[string]any{}
		for _, part := range s.AllOf {
			if m, ok := g.value(part.Value, depth+1).(map[string]any); ok {
				for k, v := range m {
					out[k] = v
				}
			}
		}
		return out
	}
	if len(s.Enum) > 0 && g.chance(0.8) {
		return s.Enum[g.rng.IntN(len(s.Enum))]
	}
	switch {
	case s.Type.Is("object") || len(s.Properties) > 0:
		out := map[string]any{}
		for name, prop := range s.Properties {
			if g.chance(0.6) || (slices.Contains(s.Required, name) && g.chance(0.8)) {
				out[name] = g.value(prop.Value, depth+1)
			}
		}
		if g.chance(0.05) {
			out[g.pick(hostile)] = g.anyValue()
		}
		return out
	case s.Type.Is("array"):
		n := g.rng.IntN(4)
		out := make([]any, n)
		for i := range out {
			var item *openapi3.Schema
			if s.Items != nil {
				item = s.Items.Value
			}
			out[i] = g.value(item, depth+1)
		}
		return out
	case s.Type.Is("integer"):
		return g.rng.IntN(400) - 100
	case s.Type.Is("number"):
		return g.rng.Float64()*1e4 - 1e3
	case s.Type.Is("boolean"):
		return g.chance(0.5)
	case s.Type.Is("string"):
		switch s.Format {
		case "date-time":
			return time.Now().Add(time.Duration(g.rng.IntN(2000)-1000) * time.Hour).Format(time.RFC3339)
		case "email":
			return g.pick([]string{"fuzz@example.com", "a@b.c", "x"})
		}
		return g.pick(append([]string{"Tell me when the price drops below $80", "price < 80.0", "https://example.com/", "price",
			"span.price", "every_time", "state_change"}, hostile...))
	}
	return g.anyValue()
}

func (g *gen) anyValue() any {
	switch g.rng.IntN(6) {
	case 0:
		return nil
	case 1:
		return g.rng.IntN(1 << 20)
	case 2:
		return g.pick(hostile)
	case 3:
		return []any{g.pick(hostile)}
	case 4:
		return map[string]any{g.pick(hostile): g.pick(hostile)}
	}
	return g.chance(0.5)
}

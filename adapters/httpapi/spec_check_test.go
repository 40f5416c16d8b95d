package httpapi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/httpapi"
)

// specRouter finds operations of the OpenAPI document; built once for every test.
var specRouter = sync.OnceValues(func() (routers.Router, error) {
	doc, err := httpapi.OpenAPI()
	if err != nil {
		return nil, err
	}
	return gorillamux.NewRouter(doc)
})

// checkResponseAgainstSpec fails the test when the request is not a documented operation
// or the response (status, headers, body) does not match the OpenAPI document.
func checkResponseAgainstSpec(t *testing.T, req *http.Request, rec *httptest.ResponseRecorder) {
	t.Helper()
	router, err := specRouter()
	require.NoError(t, err)
	route, params, err := router.FindRoute(req)
	if err != nil {
		t.Errorf("%s %s is not in the OpenAPI document: %v", req.Method, req.URL.Path, err)
		return
	}
	opts := &openapi3filter.Options{IncludeResponseStatus: true, AuthenticationFunc: openapi3filter.NoopAuthenticationFunc,
		// Pages, scripts, metrics and streams of JSON lines are checked for status and
		// content type only; the export tests read the lines.
		ExcludeResponseBody: !strings.Contains(rec.Header().Get("Content-Type"), "json") ||
			strings.Contains(rec.Header().Get("Content-Type"), "ndjson")}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts},
		Status:                 rec.Code, Header: rec.Header(), Options: opts,
	}
	in.SetBodyBytes(rec.Body.Bytes())
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		t.Errorf("%s %s answered %d, which the OpenAPI document does not allow: %v\nbody: %s", req.Method, req.URL.Path, rec.Code, err, rec.Body)
	}
}

// TestOpenAPICoversEveryRoute compares the routes the server registers with everything
// enabled against the operations the document describes: both ways, exactly.
func TestOpenAPICoversEveryRoute(t *testing.T) {
	t.Parallel()
	srv := fullServer(t)
	served := srv.Routes()
	doc, err := httpapi.OpenAPI()
	require.NoError(t, err)
	var documented []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented = append(documented, method+" "+echoPath(path))
		}
	}
	sort.Strings(served)
	sort.Strings(documented)
	require.Equal(t, documented, served, "routes served and operations documented differ")
	require.True(t, doc.IsOpenAPI31OrLater())
}

// echoPath turns /api/monitors/{id} into Echo's /api/monitors/:id.
func echoPath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
			parts[i] = ":" + strings.Trim(s, "{}")
		}
	}
	return strings.Join(parts, "/")
}

func TestOpenAPIServedAndDocsPage(t *testing.T) {
	t.Parallel()
	h := fullServer(t).Handler()
	for path, want := range map[string]string{"/api/openapi.json": `"openapi":"3.1.0"`, "/docs": "/docs/docs.js", "/docs/docs.js": "openapi.json", "/docs/docs.css": "font"} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, path, nil)
		h.ServeHTTP(rec, req)
		require.Equal(t, http.StatusOK, rec.Code, path)
		require.Contains(t, rec.Body.String(), want, path)
		checkResponseAgainstSpec(t, req, rec)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/docs/../openapi.yaml", nil))
	require.NotEqual(t, http.StatusOK, rec.Code)
	_ = openapi3.T{}
}

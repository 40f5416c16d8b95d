package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestOperatorListener: METRICS_ADDR serves the metrics and the Go profiler, which the
// API's port does not show (ASVS 4.0.3 V14.3.2: no debug interfaces on the public port).
func TestOperatorListener(t *testing.T) {
	t.Parallel()
	h := operatorMux(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("vigil_up 1\n")) }))
	for path, want := range map[string]string{
		"/metrics":                       "vigil_up 1",
		"/debug/pprof/":                  "goroutine",
		"/debug/pprof/goroutine?debug=1": "goroutine profile",
		"/debug/pprof/heap?debug=1":      "heap profile",
		"/debug/pprof/cmdline":           "",
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		require.Equal(t, http.StatusOK, rec.Code, path)
		require.True(t, strings.Contains(rec.Body.String(), want), "%s: %.200s", path, rec.Body.String())
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/monitors", nil))
	require.Equal(t, http.StatusNotFound, rec.Code, "nothing else")
}

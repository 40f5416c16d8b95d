package main

import (
	"slices"
	"strings"
	"testing"
)

func TestBenchRoutesParsesTheRouteList(t *testing.T) {
	for raw, want := range map[string][]string{
		"get,list,history": {"get", "list", "history"},
		"history":          {"history"},
		" list , get ":     {"list", "get"},
		"history,get,list": {"history", "get", "list"},
	} {
		got, err := benchRoutes(raw)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("benchRoutes(%q) = %v, %v; want %v", raw, got, err, want)
		}
	}
	for raw, why := range map[string]string{
		"":            "not a route",
		"get,,list":   "not a route",
		"post":        "not a route",
		"get,get":     "named twice",
		"history,GET": "not a route",
	} {
		if _, err := benchRoutes(raw); err == nil || !strings.Contains(err.Error(), why) {
			t.Errorf("benchRoutes(%q) error = %v; want one saying %q", raw, err, why)
		}
	}
}

package monitor_test

import (
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/domain/monitor"
)

func pt(at time.Time, v float64) monitor.Point { return monitor.Point{At: at, Number: &v} }

func TestCompareHistory(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC)
	hoursAgo := func(h int) time.Time { return now.Add(-time.Duration(h) * time.Hour) }
	start := pt(hoursAgo(25), 100)
	rise5 := monitor.ChangeRule{Fact: "price", Measure: "percent", Operator: "increases", Threshold: 5, Window: "24h"}
	drop10 := monitor.ChangeRule{Fact: "price", Measure: "absolute", Operator: "decreases", Threshold: 10, Window: "24h"}
	since := monitor.ChangeRule{Fact: "price", Measure: "percent", Operator: "changes", Threshold: 10, Window: "24h", Baseline: monitor.BaselineSince}
	anyChange := monitor.ChangeRule{Fact: "price", Measure: "any", Operator: "changes"}
	tests := []struct {
		name    string
		rule    monitor.ChangeRule
		current monitor.Point
		h       monitor.History
		want    monitor.State
		explain string
	}{
		{"rise from the window's low counts", rise5, pt(now, 99.75),
			monitor.History{AtStart: &start, InWindow: []monitor.Point{pt(hoursAgo(20), 94), pt(hoursAgo(10), 97)}}, monitor.StateActive, "rose 6.12%"},
		{"rise below threshold", rise5, pt(now, 104), monitor.History{AtStart: &start, InWindow: []monitor.Point{pt(hoursAgo(5), 101)}}, monitor.StateInactive, "rose 4%"},
		{"drop from the window's high", drop10, pt(now, 95), monitor.History{AtStart: &start, InWindow: []monitor.Point{pt(hoursAgo(3), 106)}}, monitor.StateActive, "fell 11"},
		{"collecting history", rise5, pt(now, 120), monitor.History{InWindow: []monitor.Point{pt(hoursAgo(2), 100)}}, monitor.StateUnknown, "Collecting history until 2026-11-03T10:00:00Z"},
		{"zero baseline abstains", rise5, pt(now, 5), monitor.History{AtStart: func() *monitor.Point { p := pt(hoursAgo(25), 0); return &p }()}, monitor.StateUnknown, "undefined"},
		{"since compares with a window ago", since, pt(now, 89), monitor.History{AtStart: &start, InWindow: []monitor.Point{pt(hoursAgo(1), 150)}}, monitor.StateActive, "moved 11%"},
		{"any change: first observation", anyChange, pt(now, 1), monitor.History{}, monitor.StateUnknown, "First observation"},
		{"any change: same value", anyChange, pt(now, 1), monitor.History{Previous: func() *monitor.Point { p := pt(hoursAgo(1), 1); return &p }()}, monitor.StateInactive, ""},
		{"any change: new value", anyChange, pt(now, 2), monitor.History{Previous: func() *monitor.Point { p := pt(hoursAgo(1), 1); return &p }()}, monitor.StateActive, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := monitor.CompareHistory(tt.rule, tt.current, tt.h)
			if v.State != tt.want || !strings.Contains(v.Explanation, tt.explain) {
				t.Fatalf("CompareHistory = %+v, want %s with %q", v, tt.want, tt.explain)
			}
		})
	}
	text := func(s string) monitor.Point { return monitor.Point{At: now, Text: &s} }
	prev := text("All systems operational ")
	if v := monitor.CompareHistory(anyChange, text("All systems operational"), monitor.History{Previous: &prev}); v.State != monitor.StateInactive {
		t.Fatalf("text compared without trimming: %+v", v)
	}
	if v := monitor.CompareHistory(anyChange, text("Partial outage"), monitor.History{Previous: &prev}); v.State != monitor.StateActive {
		t.Fatalf("text change missed: %+v", v)
	}
}

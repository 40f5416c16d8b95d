package monitor_test

import (
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/domain/monitor"
)

func TestUntrusted(t *testing.T) {
	t.Parallel()
	body := "<p>Our price:\n   <b>$64.99</b> today</p>"
	text := "Our price: $64.99 today"
	fact := func(conf float64, evidence string) []monitor.Fact {
		f := monitor.NumberFact("price", 64.99, "USD", time.Now())
		f.Confidence, f.Evidence = conf, evidence
		return []monitor.Fact{f}
	}
	tests := []struct {
		facts []monitor.Fact
		want  string
	}{
		{fact(0.9, "our price: <b>$64.99"), ""},
		{fact(0.9, "/data/price"), ""},
		{fact(0.9, ""), ""},
		{fact(0.3, "$64.99"), "not sure enough"},
		{fact(0.9, "price: $59.00"), "not in the source"},
		{fact(0.9, "price: $64.99 today"), ""}, // only in the visible text
	}
	for _, tt := range tests {
		got := monitor.Untrusted(tt.facts, monitor.MinConfidenceDefault, body, text)
		if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
			t.Errorf("Untrusted(%+v) = %q, want %q", tt.facts[0], got, tt.want)
		}
	}
}

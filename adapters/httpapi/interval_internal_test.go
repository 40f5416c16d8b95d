package httpapi

import (
	"testing"
	"time"
)

func TestFormatIntervalRoundTrips(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		0: "0s", 45 * time.Second: "45s", 10 * time.Minute: "10m", 30 * time.Minute: "30m", time.Hour: "1h",
		90 * time.Minute: "1h30m", 20 * time.Hour: "20h", 24 * time.Hour: "1d", 50 * time.Hour: "50h", 90 * time.Second: "1m30s",
	} {
		got := formatInterval(d)
		if got != want {
			t.Errorf("formatInterval(%v) = %q, want %q", d, got, want)
		}
		if d == 0 {
			continue
		}
		if back, err := parseInterval(got); err != nil || back != d {
			t.Errorf("parseInterval(%q) = %v, %v; want %v", got, back, err, d)
		}
	}
}

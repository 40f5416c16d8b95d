package app_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/vigilhq/vigil/domain/app"
)

func TestDigestDay(t *testing.T) {
	t.Parallel()
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		now        string
		hour       int
		day        string
		cutoffHour int
	}{
		{"2026-12-01T12:59:00Z", 8, "2026-11-30", 8}, // 07:59 in New York: yesterday's is the latest due
		{"2026-12-01T13:00:00Z", 8, "2026-12-01", 8}, // 08:00
		{"2026-12-02T04:30:00Z", 8, "2026-12-01", 8}, // 23:30 the same local day
		// 2026-03-08: clocks jump from 02:00 to 03:00; a digest at 02:00 comes at 03:00.
		{"2026-03-08T06:59:00Z", 2, "2026-03-07", 2},
		{"2026-03-08T07:00:00Z", 2, "2026-03-08", 3},
	} {
		now, _ := time.Parse(time.RFC3339, tc.now)
		day, cutoff := app.DigestDay(ny, tc.hour, now)
		if day != tc.day || cutoff.In(ny).Hour() != tc.cutoffHour || cutoff.After(now) {
			t.Errorf("DigestDay(%s, %d) = %s %s, want %s at %d:00", tc.now, tc.hour, day, cutoff.In(ny), tc.day, tc.cutoffHour)
		}
	}
	first, again := app.DigestID("u", "a@b.c", "2026-12-01"), app.DigestID("u", "a@b.c", "2026-12-01")
	if first != again || first == app.DigestID("u", "a@b.c", "2026-12-02") {
		t.Fatal("digest ids must be deterministic per user, recipient and day")
	}
}

// fakeDigests keeps waiting notifications and digests in memory, as DigestStore says.
type fakeDigests struct {
	mu      sync.Mutex
	tz      string
	hour    int
	pending []time.Time       // created_at of digest_pending notifications
	digests map[string]int    // id -> notifications collected
	days    map[string]string // id -> day
}

func (f *fakeDigests) DigestCandidates(context.Context, int) ([]app.DigestCandidate, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.pending) == 0 {
		return nil, nil
	}
	last := ""
	for _, d := range f.days {
		last = max(last, d)
	}
	return []app.DigestCandidate{{UserID: "u", Recipient: "ann@example.com", Timezone: f.tz, Hour: f.hour, LastDay: last}}, nil
}

func (f *fakeDigests) CreateDigest(_ context.Context, d app.Digest, _ time.Time) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.digests[d.ID]; ok {
		return false, nil
	}
	var keep []time.Time
	n := 0
	for _, c := range f.pending {
		if c.Before(d.Cutoff) {
			n++
		} else {
			keep = append(keep, c)
		}
	}
	if n == 0 {
		return false, nil
	}
	f.pending, f.digests[d.ID], f.days[d.ID] = keep, n, d.Day
	return true, nil
}

// TestDigesterAcrossClockChanges runs the digester every 10 minutes for six days around a
// clock change in two time zones, with a change to report every day but one: one digest
// per day with something to report, none on the empty day, nothing lost, none doubled,
// even with two digesters.
func TestDigesterAcrossClockChanges(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		tz    string
		hour  int
		start string
	}{
		{"America/New_York", 2, "2026-03-05T12:00:00Z"}, // 2026-03-08 02:00 does not exist
		{"Europe/Paris", 2, "2026-10-22T12:00:00Z"},     // 2026-10-25 02:00 happens twice
		{"Europe/Paris", 8, "2026-03-26T12:00:00Z"},     // spring forward on 2026-03-29
	} {
		t.Run(tc.tz, func(t *testing.T) {
			t.Parallel()
			loc, _ := time.LoadLocation(tc.tz)
			start, _ := time.Parse(time.RFC3339, tc.start)
			now := start
			store := &fakeDigests{tz: tc.tz, hour: tc.hour, digests: map[string]int{}, days: map[string]string{}}
			clock := func() time.Time { return now }
			a, b := app.NewDigester(store, clock), app.NewDigester(store, clock)
			added := 0
			for ; now.Before(start.Add(6 * 24 * time.Hour)); now = now.Add(10 * time.Minute) {
				// A change at 15:00 local every day except the third.
				if l := now.In(loc); l.Hour() == 15 && l.Minute() < 10 && l.YearDay() != start.In(loc).YearDay()+2 {
					store.mu.Lock()
					store.pending = append(store.pending, now)
					store.mu.Unlock()
					added++
				}
				for _, g := range []*app.Digester{a, b} {
					if _, err := g.Tick(context.Background()); err != nil {
						t.Fatal(err)
					}
				}
			}
			collected := 0
			perDay := map[string]int{}
			for id, n := range store.digests {
				collected += n
				perDay[store.days[id]]++
			}
			if collected+len(store.pending) != added || len(store.pending) > 1 {
				t.Fatalf("added %d, collected %d, still waiting %d", added, collected, len(store.pending))
			}
			for day, n := range perDay {
				if n != 1 {
					t.Errorf("%s: %d digests", day, n)
				}
			}
			if len(perDay) != added-len(store.pending) {
				t.Errorf("%d digests for %d days with changes: %v", len(perDay), added-len(store.pending), perDay)
			}
			// The day after the empty one has no digest of its own: the empty day sent nothing.
			for id, n := range store.digests {
				if n != 1 {
					t.Errorf("digest %s of %s holds %d changes, want 1", id, store.days[id], n)
				}
			}
		})
	}
}

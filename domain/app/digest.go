package app

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// KindDigest is a notification that is a daily digest of other notifications.
const KindDigest = "digest"

// DigestDay returns the local day whose digest is the latest one due at now, for a user in
// loc whose digest hour is hour, and the cutoff: the digest of day D holds what happened
// before D at hour:00 local time, and is due from then. A day is named by its date in
// loc, so a clock change (an hour that happens twice or not at all) can neither skip nor
// double a day; in a skipped hour the digest comes at the first moment after it.
func DigestDay(loc *time.Location, hour int, now time.Time) (day string, cutoff time.Time) {
	local := now.In(loc)
	y, m, d := local.Date()
	cutoff = atLocalHour(y, m, d, hour, loc)
	if local.Before(cutoff) {
		y, m, d = local.AddDate(0, 0, -1).Date()
		cutoff = atLocalHour(y, m, d, hour, loc)
	}
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Format(time.DateOnly), cutoff
}

// atLocalHour returns hour:00 of the day in loc or, when the clocks skip that hour, the
// first moment after the gap (time.Date may otherwise pick a time before it).
func atLocalHour(y int, m time.Month, d, hour int, loc *time.Location) time.Time {
	t := time.Date(y, m, d, hour, 0, 0, 0, loc)
	for i := 0; i < 3 && t.In(loc).Hour() < hour && t.In(loc).Day() == d; i++ {
		t = t.Add(time.Hour)
	}
	return t
}

// digestNamespace makes digest ids: the same user, recipient and day always give the same
// id, so two schedulers, or one restarted, make one digest.
var digestNamespace = uuid.MustParse("0e4a3f5c-7d1b-4c8e-9a2f-6b5d4c3e2a10")

// DigestID returns the id of the digest of day for one recipient of a user.
func DigestID(userID, recipient, day string) string {
	return uuid.NewSHA1(digestNamespace, []byte(userID+":"+day+":"+recipient)).String()
}

// DigestCandidate is one recipient of one user with notifications waiting for a digest.
type DigestCandidate struct {
	UserID    string
	Recipient string
	Timezone  string
	Hour      int
	LastDay   string // the day of the recipient's last digest, "" when none
}

// Digest is one digest to make.
type Digest struct {
	ID        string
	UserID    string
	Recipient string
	Day       string
	Cutoff    time.Time
}

// DigestStore collects waiting notifications into digests.
type DigestStore interface {
	// DigestCandidates returns up to limit recipients with digest_pending notifications.
	DigestCandidates(ctx context.Context, limit int) ([]DigestCandidate, error)
	// CreateDigest, in one transaction: creates the digest notification with d's id (none
	// if it exists), moves the recipient's digest_pending notifications from before the
	// cutoff into it (status digested) and requests its delivery through the outbox. It
	// creates nothing, and returns false, when no notification is waiting from before the
	// cutoff.
	CreateDigest(ctx context.Context, d Digest, now time.Time) (bool, error)
}

// Digester is the daily digest use case, run on the scheduler's timer.
type Digester struct {
	store DigestStore
	now   func() time.Time
}

// NewDigester returns a Digester.
func NewDigester(store DigestStore, now func() time.Time) *Digester {
	return &Digester{store: store, now: now}
}

// DigestBatch bounds the recipients one Tick looks at.
const DigestBatch = 1000

// Tick makes every digest that is due and returns how many it made.
func (g *Digester) Tick(ctx context.Context) (int, error) {
	now := g.now().UTC()
	candidates, err := g.store.DigestCandidates(ctx, DigestBatch)
	if err != nil {
		return 0, fmt.Errorf("digest candidates: %w", err)
	}
	made := 0
	for _, c := range candidates {
		loc, err := time.LoadLocation(c.Timezone)
		if err != nil {
			loc = time.UTC
		}
		day, cutoff := DigestDay(loc, c.Hour, now)
		if c.LastDay >= day {
			continue // today's digest is made: what came after it waits for tomorrow's
		}
		ok, err := g.store.CreateDigest(ctx, Digest{ID: DigestID(c.UserID, c.Recipient, day), UserID: c.UserID,
			Recipient: c.Recipient, Day: day, Cutoff: cutoff}, now)
		if err != nil {
			return made, fmt.Errorf("digest of %s for user %s: %w", day, c.UserID, err)
		}
		if ok {
			made++
		}
	}
	return made, nil
}

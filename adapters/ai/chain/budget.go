package chain

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/vigilhq/vigil/domain/ai"
)

// spendCache remembers users' monthly spend for spendTTL, so a busy user costs one store
// lookup a minute.
type spendCache struct {
	store SpendStore
	size  int

	mu      sync.Mutex
	entries map[string]spendEntry
}

type spendEntry struct {
	month time.Time
	read  time.Time
	spent float64
}

func newSpendCache(store SpendStore, size int) *spendCache {
	return &spendCache{store: store, size: size, entries: make(map[string]spendEntry)}
}

func (s *spendCache) get(ctx context.Context, user string, month, now time.Time) (float64, error) {
	s.mu.Lock()
	e, ok := s.entries[user]
	s.mu.Unlock()
	if ok && e.month.Equal(month) && now.Sub(e.read) < spendTTL && !now.Before(e.read) {
		return e.spent, nil
	}
	spent, err := s.store.MonthlySpend(ctx, user, month)
	if err != nil {
		return 0, fmt.Errorf("monthly spend of user %s: %w", user, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.entries) >= s.size {
		for u, old := range s.entries {
			if now.Sub(old.read) >= spendTTL {
				delete(s.entries, u)
			}
		}
		if len(s.entries) >= s.size {
			clear(s.entries)
		}
	}
	s.entries[user] = spendEntry{month: month, read: now, spent: spent}
	return spent, nil
}

// budgetSpent reports whether the user of ctx has spent the monthly budget, and when the next
// month starts. A failing spend lookup does not stop the user's monitoring: the budget is not
// enforced until the store answers again.
func (c *Chain) budgetSpent(ctx context.Context) (bool, time.Time) {
	user := ai.UserFrom(ctx)
	if c.cfg.MonthlyBudget <= 0 || user == "" {
		return false, time.Time{}
	}
	now := c.now().UTC()
	month := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	spent, err := c.spend.get(ctx, user, month, now)
	if err != nil {
		c.log.Warn().Err(err).Str("user_id", user).Msg("ai budget not enforced: spend unknown")
		return false, time.Time{}
	}
	return spent >= c.cfg.MonthlyBudget, month.AddDate(0, 1, 0)
}

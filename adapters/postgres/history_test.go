package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/postgres"
	"github.com/vigilhq/vigil/domain/app"
	"github.com/vigilhq/vigil/domain/event"
	"github.com/vigilhq/vigil/domain/monitor"
)

// TestRecorderJudgesHistory records a historical_change monitor's observations through the
// Recorder use case and checks that the state comes from stored facts: unknown while
// history is shorter than the window, then active once the value rose 5% within it.
func TestRecorderJudgesHistory(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	store := postgres.NewMonitorStore(b.pool, "test")
	now := time.Now().UTC().Truncate(time.Second)
	m := monitor.New("0192f000-0000-7000-8000-000000000001", monitor.Draft{UserID: b.userID, Prompt: "alert me when BTC rises 5% in 24 hours",
		SourceURL: "https://prices.example/btc", Interval: time.Hour}, monitor.Spec{
		Kind: monitor.KindHistoricalChange, Summary: "BTC rises 5% within 24h", Confidence: 1,
		Facts:  []monitor.FactSpec{{Name: "price", Type: monitor.FactNumber, Unit: "USD"}},
		Change: &monitor.ChangeRule{Fact: "price", Measure: "percent", Operator: "increases", Threshold: 5, Window: "24h"},
	}, monitor.ClassifiedBy{Provider: "test"}, now.Add(-48*time.Hour))
	require.NoError(t, store.CreateMonitor(ctx, m, app.TriggerPlan{}))
	rec := app.NewRecorder(postgres.NewEvaluationStore(b.pool, "test"), store, postgres.NewFactStore(b.pool), app.RecordLimits{MaxFailures: 3})

	observe := func(hoursAgo int, price float64) app.Recording {
		t.Helper()
		at := now.Add(-time.Duration(hoursAgo) * time.Hour)
		r, err := rec.Record(ctx, event.EvaluationCompleted{MonitorID: m.ID, Kind: m.Spec.Kind, ScheduledFor: at, StartedAt: at, FinishedAt: at,
			Status: monitor.EvaluationSucceeded, State: monitor.StateUnknown, Attempt: 1,
			Facts: []monitor.Fact{monitor.NumberFact("price", price, "USD", at)}})
		require.NoError(t, err)
		return r
	}
	state := func() (string, string) {
		var s, explanation string
		require.NoError(t, b.pool.QueryRow(ctx, `
			SELECT m.state, e.explanation FROM monitors m JOIN evaluations e ON e.monitor_id = m.id
			WHERE m.id = $1 ORDER BY e.scheduled_for DESC LIMIT 1`, m.ID).Scan(&s, &explanation))
		return s, explanation
	}

	observe(30, 100)
	s, why := state()
	require.Equal(t, "unknown", s)
	require.Contains(t, why, "Collecting history until")

	observe(20, 96) // the window's low for the last observation
	observe(5, 99)
	s, why = state()
	require.Equal(t, "inactive", s, why) // 99 vs the low of 96 (and 100 at the window start): +3.1%
	r := observe(0, 101.5)               // +5.7% from 96, within 24h
	require.True(t, r.Outcome.Changed)
	s, why = state()
	require.Equal(t, "active", s)
	require.Contains(t, why, "rose 5.73%")
	// The first two observations could not look back a full 24 hours.
	require.Equal(t, 2, b.count(t, `SELECT count(*) FROM evaluations WHERE monitor_id = $1 AND status = 'abstained'`, m.ID))
}

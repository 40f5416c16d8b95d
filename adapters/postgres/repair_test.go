package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/ai/fallback"
	"github.com/vigilhq/vigil/adapters/postgres"
	"github.com/vigilhq/vigil/adapters/source"
	"github.com/vigilhq/vigil/domain/app"
	"github.com/vigilhq/vigil/domain/event"
	"github.com/vigilhq/vigil/domain/monitor"
)

// TestBrokenExtractionIsToldOnceAndARepairIsAnEdit: misses of a fact found before are
// counted on the monitor; the third creates one extraction_broken email with the last good
// evidence, the page now and the proposed selector, and the fourth no other; the history
// keeps each miss and repair. An applied repair writes the new selector, bumps the version
// and resets the count.
func TestBrokenExtractionIsToldOnceAndARepairIsAnEdit(t *testing.T) {
	t.Parallel()
	b := setup(t)
	mb := newMailerBundle(t, b, source.Config{AllowPrivate: true})
	ctx := context.Background()
	store := postgres.NewEvaluationStore(b.pool, "test")
	monitors := postgres.NewMonitorStore(b.pool, "test")
	limits := app.RecordLimits{MaxFailures: 10, MaxMisses: 3}
	record := func(ev event.EvaluationCompleted) app.RecordPlan {
		t.Helper()
		evs := []event.EvaluationCompleted{ev}
		plan, err := store.RecordEvaluations(ctx, evs, func(st app.RecordState) (app.RecordPlan, error) {
			return app.PlanRecording(evs, st, limits, func() (string, error) { return uuid.NewString(), nil })
		})
		require.NoError(t, err)
		return plan
	}
	good := monitor.NumberFact("price", 120, "USD", b.slot)
	good.Evidence, good.Locator = "$120.00", "span.price"
	miss := func(slot time.Time) event.EvaluationCompleted {
		ev := completed(b.monitor, slot, monitor.EvaluationFailed, monitor.StateUnknown, 0)
		ev.Error, ev.MonitorVersion = "Could not find the price in the source.", b.monitor.Version
		ev.Miss = &monitor.Miss{Fact: "price", Selector: "span.price", LastGood: good, Snippet: "Trail shoe. Now $120.00, was $150.00"}
		ev.Repair = &monitor.Repair{Fact: "price", Old: "span.price", Selector: "[data-testid=price-now]", Found: "120 USD",
			Expected: "120 USD", Verified: true, Reason: "Proposed, not applied: auto_repair is off.", Provider: "claude", At: slot}
		return ev
	}
	t0 := time.Now().UTC().Truncate(time.Minute)
	var broken []app.BrokenNotice
	for i := range 4 {
		broken = append(broken, record(miss(t0.Add(time.Duration(i)*time.Minute))).Broken...)
	}
	require.Len(t, broken, 1, "told once, at the third miss")
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM notifications WHERE monitor_id = $1 AND kind = 'extraction_broken'`, b.monitor.ID))
	var notificationID string
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT id::text FROM notifications WHERE kind = 'extraction_broken'`).Scan(&notificationID))
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM outbox WHERE type = $1 AND convert_from(payload, 'UTF8')::jsonb->>'notification_id' = $2`,
		event.TypeNotificationRequested, notificationID))

	m, err := monitors.FindMonitorByID(ctx, b.monitor.ID)
	require.NoError(t, err)
	require.Equal(t, 4, m.ExtractionMisses)
	require.NotNil(t, m.Repair)
	require.Equal(t, "[data-testid=price-now]", m.Repair.Selector)
	require.False(t, m.Repair.Applied)

	history, _, err := monitors.History(ctx, app.HistoryQuery{UserID: b.userID, MonitorID: b.monitor.ID, Limit: 10})
	require.NoError(t, err)
	require.Len(t, history, 4)
	require.NotNil(t, history[0].Miss)
	require.Equal(t, "$120.00", history[0].Miss.LastGood.Evidence)
	require.Equal(t, "[data-testid=price-now]", history[0].Repair.Selector)

	// The owner's email has the last good evidence, the page now and the proposal.
	r, err := mb.mailer.Deliver(ctx, notificationID)
	require.NoError(t, err)
	require.Equal(t, app.StatusSent, r.Decision.Status)
	msgs := mb.smtp.Messages()
	require.Len(t, msgs, 1)
	require.Contains(t, msgs[0].Subject, "the price is no longer found")
	for _, want := range []string{"last 4 checks", "at span.price", "Last found: 120 USD, from \"$120.00\"",
		"Trail shoe. Now $120.00, was $150.00", "[data-testid=price-now]"} {
		require.Contains(t, msgs[0].Text, want)
	}

	// A verified repair applied by the evaluator: the selector is written, as an edit.
	repaired, err := m.Spec.WithRepairedSelector("price", "[data-testid=price-now]")
	require.NoError(t, err)
	ok := completed(b.monitor, t0.Add(5*time.Minute), monitor.EvaluationSucceeded, monitor.StateInactive, 120)
	ok.MonitorVersion, ok.SourceHash = m.Version, "h2"
	ok.Repair = &monitor.Repair{Fact: "price", Old: "span.price", Selector: "[data-testid=price-now]", Found: "120 USD", Expected: "120 USD",
		Verified: true, Applied: true, Provider: "claude", At: t0}
	ok.RepairedSpec = &repaired
	record(ok)
	after, err := monitors.FindMonitorByID(ctx, b.monitor.ID)
	require.NoError(t, err)
	require.Equal(t, m.Version+1, after.Version, "an applied repair is an edit")
	require.Equal(t, after.Version, after.ExtractionVersion, "of what is extracted")
	f, _ := after.Spec.Fact("price")
	require.Equal(t, "[data-testid=price-now]", f.Selector)
	require.Equal(t, monitor.SelectorByRepair, f.SelectorBy)
	require.Equal(t, 0, after.ExtractionMisses)
	require.True(t, after.Repair.Applied)
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM notifications WHERE kind = 'extraction_broken'`), "a repair sends nothing more")

	// A rename leaves what is extracted; an edit of the selectors by the owner settles the
	// repair and moves the extraction version.
	rules := fallback.New(time.Now)
	service := app.NewMonitorService(monitors, rules, source.New(source.Config{AllowPrivate: true}, time.Now), rules, time.Now,
		app.MonitorConfig{MinInterval: time.Minute})
	name := "Trail shoe"
	edited, err := service.Update(ctx, b.userID, b.monitor.ID, monitor.Changes{Name: &name}, after.Version)
	require.NoError(t, err)
	require.Equal(t, after.ExtractionVersion, edited.ExtractionVersion)
	require.NotNil(t, edited.Repair)
	sel := map[string]string{"": "b.price"}
	edited, err = service.Update(ctx, b.userID, b.monitor.ID, monitor.Changes{Selectors: &sel}, edited.Version)
	require.NoError(t, err)
	require.Nil(t, edited.Repair)
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM monitors WHERE id = $1 AND repair IS NULL AND extraction_misses = 0
		AND extraction_version = version`, b.monitor.ID))
}

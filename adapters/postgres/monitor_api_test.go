package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/ai/fallback"
	"github.com/vigilhq/vigil/adapters/postgres"
	"github.com/vigilhq/vigil/adapters/source"
	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/app"
	"github.com/vigilhq/vigil/domain/event"
	"github.com/vigilhq/vigil/domain/monitor"
)

type apiBundle struct {
	*bundle
	svc   *app.MonitorService
	other string // a second user
}

func setupAPI(t *testing.T, quota int) *apiBundle {
	t.Helper()
	b := setup(t)
	other, _, err := b.seed.EnsureUser(context.Background(), "bob@example.com", "Bob", "user", "")
	require.NoError(t, err)
	rules := fallback.New(time.Now)
	svc := app.NewMonitorService(postgres.NewMonitorStore(b.pool, "test"), rules, source.New(source.Config{AllowPrivate: true}, time.Now),
		rules, time.Now, app.MonitorConfig{MinInterval: time.Minute, Quota: quota})
	return &apiBundle{bundle: b, svc: svc, other: other}
}

func (a *apiBundle) create(t *testing.T, userID, name, prompt string) *monitor.Monitor {
	t.Helper()
	m, err := a.svc.Create(context.Background(), monitor.Draft{UserID: userID, Name: name, Prompt: prompt, SourceURL: "https://shop.example/" + name}, app.TriggerPlan{})
	require.NoError(t, err)
	return m
}

func TestMonitorAPIIsolation(t *testing.T) {
	t.Parallel()
	a := setupAPI(t, 0)
	ctx := context.Background()
	mine := a.monitor
	notFound := func(err error) {
		t.Helper()
		require.True(t, errors.Is(err, domain.ErrNotFound), "want not found, got %v", err)
	}

	_, err := a.svc.Get(ctx, a.other, mine.ID)
	notFound(err)
	_, err = a.svc.Update(ctx, a.other, mine.ID, monitor.Changes{Name: ptr("stolen")}, 0)
	notFound(err)
	notFound(a.svc.Delete(ctx, a.other, mine.ID))
	_, _, err = a.svc.History(ctx, app.HistoryQuery{UserID: a.other, MonitorID: mine.ID, Limit: 10})
	notFound(err)
	notFound(a.svc.EvaluateNow(ctx, a.other, mine.ID))
	_, err = a.svc.Validate(ctx, a.other, mine.ID, app.Proposal{Prompt: "", SourceURL: ""})
	notFound(err)
	_, err = a.svc.Get(ctx, a.userID, "not-a-uuid")
	notFound(err)
	page, err := a.svc.List(ctx, app.MonitorQuery{UserID: a.other, Limit: 10})
	require.NoError(t, err)
	require.Empty(t, page.Monitors)
	require.Equal(t, 1, a.count(t, `SELECT count(*) FROM monitors WHERE id = $1 AND name <> 'stolen'`, mine.ID))
}

func TestMonitorAPIListAndPagination(t *testing.T) {
	t.Parallel()
	a := setupAPI(t, 0)
	ctx := context.Background()
	for i := 0; i < 7; i++ {
		a.create(t, a.userID, fmt.Sprintf("m%02d", i), "price below 80")
	}
	a.create(t, a.userID, "stock", "Let me know when it is back in stock")
	// Page through by name while rows are inserted behind and ahead of the cursor: every
	// row that existed at the start is seen exactly once.
	seen := map[string]int{}
	var after *app.MonitorCursor
	for pages := 0; ; pages++ {
		page, err := a.svc.List(ctx, app.MonitorQuery{UserID: a.userID, Sort: app.SortName, Limit: 3, After: after})
		require.NoError(t, err)
		for _, m := range page.Monitors {
			seen[m.Name]++
		}
		if pages == 0 {
			a.create(t, a.userID, "a-first", "price below 80") // sorts before the cursor: not seen
			a.create(t, a.userID, "z-last", "price below 80")  // after it: seen
		}
		if page.Next == nil {
			break
		}
		after = page.Next
	}
	for i := 0; i < 7; i++ {
		require.Equal(t, 1, seen[fmt.Sprintf("m%02d", i)], "m%02d", i)
	}
	require.Equal(t, 1, seen["z-last"])
	require.Equal(t, 1, seen[a.monitor.Name])

	page, err := a.svc.List(ctx, app.MonitorQuery{UserID: a.userID, Kind: monitor.KindCurrentState, Text: "stock", Limit: 10})
	require.NoError(t, err)
	require.Len(t, page.Monitors, 1)
	require.Equal(t, "stock", page.Monitors[0].Name)
	page, err = a.svc.List(ctx, app.MonitorQuery{UserID: a.userID, Text: "100%_", Limit: 10})
	require.NoError(t, err)
	require.Empty(t, page.Monitors, "LIKE wildcards in the search text are literal")
	page, err = a.svc.List(ctx, app.MonitorQuery{UserID: a.userID, Sort: app.SortCreatedAt, Desc: true, Limit: 2})
	require.NoError(t, err)
	require.Equal(t, "z-last", page.Monitors[0].Name)
	page, err = a.svc.List(ctx, app.MonitorQuery{UserID: a.userID, Sort: app.SortLastEvaluatedAt, Desc: true, Limit: 100})
	require.NoError(t, err)
	require.Len(t, page.Monitors, 11)
}

func TestMonitorAPIUpdateDeleteAndHistory(t *testing.T) {
	t.Parallel()
	a := setupAPI(t, 2)
	ctx := context.Background()
	m := a.monitor

	// Optimistic concurrency.
	updated, err := a.svc.Update(ctx, a.userID, m.ID, monitor.Changes{Prompt: ptr("price below 70")}, m.Version)
	require.NoError(t, err)
	require.Equal(t, "price < 70", updated.Spec.Condition)
	require.Equal(t, m.Version+1, updated.Version)
	_, err = a.svc.Update(ctx, a.userID, m.ID, monitor.Changes{Name: ptr("late")}, m.Version)
	require.True(t, app.IsStaleVersion(err), "stale If-Match: %v", err)
	require.Equal(t, 1, a.count(t, `SELECT count(*) FROM outbox WHERE type = $1`, event.TypeMonitorUpdated))
	paused, err := a.svc.Update(ctx, a.userID, m.ID, monitor.Changes{Status: ptr(monitor.StatusPaused)}, 0)
	require.NoError(t, err)
	require.Equal(t, monitor.StatusPaused, paused.Status)

	// History: evaluations, newest first, with their facts; changed only; pagination.
	rec := postgres.NewEvaluationStore(a.pool, "test")
	t0 := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	for i, price := range []float64{90, 60, 61, 95} {
		state := monitor.StateInactive
		if price < 70 {
			state = monitor.StateActive
		}
		_, err := recordEvaluation(ctx, rec, completed(m, t0.Add(time.Duration(i)*time.Minute), monitor.EvaluationSucceeded, state, price), 3)
		require.NoError(t, err)
	}
	items, next, err := a.svc.History(ctx, app.HistoryQuery{UserID: a.userID, MonitorID: m.ID, Limit: 3})
	require.NoError(t, err)
	require.Len(t, items, 3)
	require.NotNil(t, next)
	require.Equal(t, 95.0, *items[0].Facts[0].Number)
	rest, next, err := a.svc.History(ctx, app.HistoryQuery{UserID: a.userID, MonitorID: m.ID, Limit: 3, Before: next})
	require.NoError(t, err)
	require.Len(t, rest, 1)
	require.Nil(t, next)
	require.Equal(t, 90.0, *rest[0].Facts[0].Number)
	changed, _, err := a.svc.History(ctx, app.HistoryQuery{UserID: a.userID, MonitorID: m.ID, Limit: 10, ChangedOnly: true})
	require.NoError(t, err)
	require.Len(t, changed, 3) // unknown->inactive, ->active, ->inactive
	from := t0.Add(90 * time.Second)
	ranged, _, err := a.svc.History(ctx, app.HistoryQuery{UserID: a.userID, MonitorID: m.ID, Limit: 10, From: &from})
	require.NoError(t, err)
	require.Len(t, ranged, 2)
	// ASVS 4.0.3 V4.2.1: another user's monitor is not found, evaluations or not, and the
	// owner's empty page is only empty.
	_, _, err = a.svc.History(ctx, app.HistoryQuery{UserID: a.other, MonitorID: m.ID, Limit: 10})
	require.True(t, errors.Is(err, domain.ErrNotFound), "want not found, got %v", err)
	later := t0.Add(time.Hour)
	empty, next, err := a.svc.History(ctx, app.HistoryQuery{UserID: a.userID, MonitorID: m.ID, Limit: 10, From: &later})
	require.NoError(t, err)
	require.Empty(t, empty)
	require.Nil(t, next)

	detail, err := a.svc.Get(ctx, a.userID, m.ID)
	require.NoError(t, err)
	require.Equal(t, monitor.StateInactive, detail.LastEvaluation.State)
	require.Len(t, detail.LatestFacts, 1)
	require.Equal(t, 95.0, *detail.LatestFacts[0].Number)

	// The user's interval stands; without one, the classification's suggestion is used.
	given, err := a.svc.Create(ctx, monitor.Draft{UserID: a.other, Prompt: "price below 80", SourceURL: "https://x.example", Interval: 15 * time.Minute}, app.TriggerPlan{})
	require.NoError(t, err)
	require.Equal(t, 15*time.Minute, given.Interval)
	suggested, err := a.svc.Create(ctx, monitor.Draft{UserID: a.other, Prompt: "alert me when BTC rises 5% in 24 hours", SourceURL: "https://x.example"}, app.TriggerPlan{})
	require.NoError(t, err)
	require.Equal(t, 5*time.Minute, suggested.Interval)

	// Quota of 2: the bundle's monitor plus one more.
	a.create(t, a.userID, "second", "price below 80")
	_, err = a.svc.Create(ctx, monitor.Draft{UserID: a.userID, Prompt: "price below 80", SourceURL: "https://x.example"}, app.TriggerPlan{})
	require.Equal(t, domain.ECONFLICT, domain.ErrorCode(err), "%v", err)

	// Evaluate now, then delete: events through the outbox, history gone.
	require.NoError(t, a.svc.EvaluateNow(ctx, a.userID, m.ID))
	require.Equal(t, 1, a.count(t, `SELECT count(*) FROM outbox WHERE type = $1 AND subject = $2`, event.TypeEvaluationDue, "vigil.evaluations.due."+m.ID))
	require.NoError(t, a.svc.Delete(ctx, a.userID, m.ID))
	require.Equal(t, 1, a.count(t, `SELECT count(*) FROM outbox WHERE type = $1`, event.TypeMonitorDeleted))
	require.Equal(t, 0, a.count(t, `SELECT count(*) FROM evaluations WHERE monitor_id = $1`, m.ID))
	require.Equal(t, 0, a.count(t, `SELECT count(*) FROM facts WHERE monitor_id = $1`, m.ID))
	require.True(t, errors.Is(a.svc.Delete(ctx, a.userID, m.ID), domain.ErrNotFound))
}

func TestMonitorAPIValidate(t *testing.T) {
	t.Parallel()
	a := setupAPI(t, 0)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"price": 64.5}`)
	}))
	t.Cleanup(srv.Close)
	ctx := context.Background()
	before := a.count(t, `SELECT count(*) FROM outbox`)
	v, err := a.svc.Validate(ctx, a.userID, "", app.Proposal{Prompt: "Tell me when the price drops below $80", SourceURL: srv.URL})
	require.NoError(t, err)
	require.Equal(t, "price < 80", v.Spec.Condition)
	require.Len(t, v.Facts, 1)
	require.Equal(t, monitor.StateActive, v.Verdict.State)
	v, err = a.svc.Validate(ctx, a.userID, a.monitor.ID, app.Proposal{Prompt: "price above 100", SourceURL: srv.URL})
	require.NoError(t, err)
	require.Equal(t, monitor.StateInactive, v.Verdict.State)
	v, err = a.svc.Validate(ctx, a.userID, "", app.Proposal{Prompt: "price below 80", SourceURL: srv.URL + "/missing"})
	require.NoError(t, err)
	require.Nil(t, v.Verdict)
	require.NotEmpty(t, v.Warnings)
	_, err = a.svc.Validate(ctx, a.userID, "", app.Proposal{Prompt: "write me a poem", SourceURL: ""})
	require.Equal(t, domain.EINVALID, domain.ErrorCode(err))
	require.Equal(t, before, a.count(t, `SELECT count(*) FROM outbox`), "validation emits nothing")
}

func ptr[T any](v T) *T { return &v }

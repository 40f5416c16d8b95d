package httpapi_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/httpapi"
	"github.com/vigilhq/vigil/domain/event"
	"github.com/vigilhq/vigil/domain/monitor"
)

// TestBacktest: a stored price history replayed through the monitor as it is, a lower
// threshold, a change rule and a new prompt, with its trigger's firings, confirm applied,
// and every way a proposal can be refused.
func TestBacktest(t *testing.T) {
	t.Parallel()
	b := setupMonitorsAPIWith(t, stackOptions{rulesOnly: true})
	m := b.create(t, b.ann, fmt.Sprintf(`{"prompt":"Tell me when the price drops below $80","source_url":%q}`, b.source.URL))
	require.Equal(t, "price < 80", m.Spec.Condition)
	t0 := time.Now().UTC().Truncate(time.Hour).Add(-20 * time.Hour)
	prices := []float64{90, 85, 79, 75, 82, 95, 70, 72, 88, 60}
	var evs []event.EvaluationCompleted
	for i, p := range prices {
		slot := t0.Add(time.Duration(i) * time.Hour)
		evs = append(evs, event.EvaluationCompleted{MonitorID: m.ID, ScheduledFor: slot, StartedAt: slot, FinishedAt: slot.Add(time.Second),
			Status: monitor.EvaluationSucceeded, State: map[bool]monitor.State{true: monitor.StateActive, false: monitor.StateInactive}[p < 80],
			Facts: []monitor.Fact{monitor.NumberFact("price", p, "USD", slot.Add(time.Second))}, Attempt: 1, MonitorVersion: m.Version})
	}
	b.recordAll(t, evs)
	path := "/api/monitors/" + m.ID + "/backtest"
	run := func(body string) httpapi.BacktestJSON {
		t.Helper()
		rec := b.do(t, http.MethodPost, path, body, b.ann, nil)
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		return decode[httpapi.BacktestJSON](t, rec)
	}

	// As it is: the same flips the pipeline recorded; the default trigger (becomes_active)
	// would have fired at each drop below 80.
	as := run(`{}`)
	require.Equal(t, 10, as.Evaluations)
	require.Len(t, as.Flips, 6)
	require.Equal(t, 6, as.Actual.Flips, "the replay agrees with what was recorded")
	require.Len(t, as.Triggers, 1)
	require.Equal(t, 3, as.Triggers[0].WouldFire, "below 80 at 79, 70 and 60")
	require.Equal(t, t0.Add(2*time.Hour+time.Second), as.Triggers[0].FiredAt[0].UTC())
	require.Equal(t, "Would have alerted 3 times (6 state changes) in the last 30 days; it actually alerted 0 times.", as.Summary)

	// A lower threshold alerts less; confirm 2 ignores the lone 60.
	low := run(`{"condition":"price < 71.0"}`)
	require.Equal(t, 2, low.WouldAlert, "70, then 60")
	conf := run(`{"condition":"price < 80.0","confirm":2}`)
	require.Equal(t, 2, conf.WouldAlert, "79-75 and 70-72; the lone 60 is not confirmed")
	require.Equal(t, 2, conf.Confirm)

	// A change rule: a rise of 10 or more on the previous observation (82 -> 95, 72 -> 88).
	rise := run(`{"change":{"fact":"price","measure":"absolute","operator":"increases","threshold":10}}`)
	require.Equal(t, "historical_change", string(rise.Spec.Kind))
	var risesAt []time.Time
	for _, f := range rise.Flips {
		if f.To == "active" {
			risesAt = append(risesAt, f.T.UTC())
		}
	}
	require.Equal(t, []time.Time{t0.Add(5*time.Hour + time.Second), t0.Add(8*time.Hour + time.Second)}, risesAt)

	// A new prompt, classified by the rules.
	p := run(`{"prompt":"Tell me when the price drops below $65"}`)
	require.Equal(t, 1, p.WouldAlert)
	// A range without history says so.
	none := run(fmt.Sprintf(`{"from":%q,"to":%q}`, t0.Add(-48*time.Hour).Format(time.RFC3339), t0.Add(-24*time.Hour).Format(time.RFC3339)))
	require.Zero(t, none.Evaluations)
	require.Equal(t, "No stored facts to replay in the last day.", none.Summary)

	// Validating a change of the monitor says what it would have done.
	rec := b.do(t, http.MethodPost, "/api/monitors/"+m.ID+"/validate", `{"prompt":"Tell me when the price drops below $71"}`, b.ann, nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Equal(t, "Would have alerted 2 times (4 state changes) in the last 30 days; it actually alerted 0 times.",
		decode[httpapi.ValidationJSON](t, rec).Backtest)
	rec = b.do(t, http.MethodPost, "/api/monitors/validate", `{"prompt":"Tell me when the price drops below $71"}`, b.ann, nil)
	require.Empty(t, decode[httpapi.ValidationJSON](t, rec).Backtest, "a new monitor has no history")

	for _, tc := range []struct{ body, field string }{
		{`{"condition":"price <"}`, "condition"},
		{`{"condition":"volume > 3.0"}`, "condition"},
		{`{"change":{"fact":"volume","measure":"absolute","operator":"increases","threshold":1}}`, "change"},
		{`{"prompt":"write me a poem"}`, "prompt"},
		{`{"prompt":"price below 10","condition":"price < 10.0"}`, "prompt"},
		{`{"confirm":0}`, "confirm"},
		{fmt.Sprintf(`{"from":%q,"to":%q}`, t0.Format(time.RFC3339), t0.Add(-time.Hour).Format(time.RFC3339)), "from"},
	} {
		rec := b.do(t, http.MethodPost, path, tc.body, b.ann, nil)
		pr := requireProblem(t, rec, http.StatusUnprocessableEntity, "invalid")
		require.NotEmpty(t, pr.Errors[tc.field], "%s: %+v", tc.body, pr)
	}
	requireProblem(t, b.do(t, http.MethodPost, path, `{}`, b.bob, nil), http.StatusNotFound, "not_found")
}

package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/httpapi"
	"github.com/vigilhq/vigil/adapters/postgres"
	"github.com/vigilhq/vigil/domain/app"
	"github.com/vigilhq/vigil/domain/event"
	"github.com/vigilhq/vigil/domain/monitor"
)

// recordAll stores evaluations in one batch as the recorder does.
func (b *monitorsBundle) recordAll(t *testing.T, evs []event.EvaluationCompleted) {
	t.Helper()
	_, err := postgres.NewEvaluationStore(b.pool, "test").RecordEvaluations(context.Background(), evs, func(st app.RecordState) (app.RecordPlan, error) {
		return app.PlanRecording(evs, st, app.RecordLimits{MaxFailures: 100}, func() (string, error) { return uuid.NewString(), nil })
	})
	require.NoError(t, err)
}

// TestMonitorStats: three hours of a monitor's evaluations give the counts, rates,
// percentiles, AI spend, reuse, transitions, timeline and notifications they should, per
// hour and in total.
func TestMonitorStats(t *testing.T) {
	t.Parallel()
	b := setupMonitorsAPIWith(t, stackOptions{rulesOnly: true})
	m := b.create(t, b.ann, fmt.Sprintf(`{"prompt":"Tell me when the price drops below $80","source_url":%q}`, b.source.URL))
	t0 := time.Now().UTC().Truncate(time.Hour).Add(-4 * time.Hour)
	ev := func(min int, status monitor.EvaluationStatus, state monitor.State, latency, fetch int64, reused bool) event.EvaluationCompleted {
		slot := t0.Add(time.Duration(min) * time.Minute)
		e := event.EvaluationCompleted{MonitorID: m.ID, ScheduledFor: slot, StartedAt: slot, FinishedAt: slot.Add(time.Duration(latency) * time.Millisecond),
			Status: status, State: state, Attempt: 1, MonitorVersion: m.Version, FactsReused: reused,
			Usage: event.Usage{Provider: "claude", Model: "m", InputTokens: 100, OutputTokens: 10, Cost: 0.01, LatencyMS: latency, FetchMS: fetch}}
		if status == monitor.EvaluationSucceeded {
			e.Facts = []monitor.Fact{monitor.NumberFact("price", 90, "USD", slot)}
		} else {
			e.Error = "502"
		}
		return e
	}
	S, A, F := monitor.EvaluationSucceeded, monitor.EvaluationAbstained, monitor.EvaluationFailed
	b.recordAll(t, []event.EvaluationCompleted{
		ev(10, S, monitor.StateInactive, 100, 40, false), // unknown -> inactive at +10m
		ev(20, S, monitor.StateInactive, 200, 50, true),
		ev(30, F, monitor.StateUnknown, 300, 60, false),
		ev(70, S, monitor.StateActive, 400, 70, false), // inactive -> active at +70m
		ev(80, A, monitor.StateUnknown, 500, 80, false),
		// nothing in the third hour
		ev(190, S, monitor.StateInactive, 600, 90, false), // active -> inactive at +190m
	})
	_, err := b.pool.Exec(context.Background(), `
		INSERT INTO notifications (user_id, monitor_id, kind, recipient, status, from_state, to_state, created_at)
		SELECT user_id, id, 'state_changed', 'ann@example.com', s, 'inactive', 'active', $2 FROM monitors, unnest(ARRAY['sent', 'sent', 'failed']) s
		WHERE id = $1`, m.ID, t0.Add(75*time.Minute))
	require.NoError(t, err)

	q := url.Values{"from": {t0.Format(time.RFC3339)}, "to": {t0.Add(4 * time.Hour).Format(time.RFC3339)}, "bucket": {"1h"}}
	rec := b.do(t, http.MethodGet, "/api/monitors/"+m.ID+"/stats?"+q.Encode(), "", b.ann, nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	st := decode[httpapi.MonitorStatsJSON](t, rec)
	require.Equal(t, httpapi.EvaluationTotalJSON{Total: 6, Succeeded: 4, Abstained: 1, Failed: 1, SuccessRate: ptrTo(4.0 / 6)}, st.Evaluations)
	require.Equal(t, 6, st.LatencyMS.N)
	require.InDelta(t, 350, *st.LatencyMS.P50, 1e-9, "the median of 100..600")
	require.InDelta(t, 575, *st.LatencyMS.P95, 1e-9, "interpolated: 500 + 0.75 of the way to 600")
	require.InDelta(t, 65, *st.FetchMS.P50, 1e-9)
	require.Equal(t, httpapi.AIUsageJSON{InputTokens: 600, OutputTokens: 60, Cost: 0.06}, roundCost(st.AI))
	require.Equal(t, 1, st.FactsReused.Count)
	require.InDelta(t, 1.0/6, *st.FactsReused.Rate, 1e-9)
	require.Equal(t, 3, st.Transitions)
	require.Equal(t, map[string]int{"sent": 2, "failed": 1}, st.Notifications)

	// The timeline: unknown until the first success, then inactive, active, inactive.
	require.Len(t, st.Timeline, 4)
	for i, want := range []string{"unknown", "inactive", "active", "inactive"} {
		require.Equal(t, want, st.Timeline[i].State)
	}
	require.Equal(t, t0, st.Timeline[0].From.UTC())
	require.Equal(t, t0.Add(10*time.Minute+100*time.Millisecond), st.Timeline[1].From.UTC(), "a state changes when its evaluation finished")
	require.InDelta(t, (60*time.Minute - 100*time.Millisecond + 400*time.Millisecond).Seconds(), st.Timeline[1].Seconds, 1e-6)
	require.InDelta(t, (4 * time.Hour).Seconds(), st.TimeInState["active"]+st.TimeInState["inactive"]+st.TimeInState["unknown"], 1e-6)

	require.Len(t, st.Buckets, 4, "every hour, the empty one included")
	require.Equal(t, 2, st.Buckets[0].Succeeded)
	require.Equal(t, 1, st.Buckets[0].Failed)
	require.Equal(t, 1, st.Buckets[0].FactsReused)
	require.Equal(t, 1, st.Buckets[0].Transitions)
	require.Equal(t, 1, st.Buckets[1].Abstained)
	require.Zero(t, st.Buckets[2].Succeeded+st.Buckets[2].Failed+st.Buckets[2].Abstained)
	require.Equal(t, t0.Add(2*time.Hour), st.Buckets[2].T.UTC())

	// A later range starts in the state the monitor was left in.
	q.Set("from", t0.Add(2*time.Hour).Format(time.RFC3339))
	st = decode[httpapi.MonitorStatsJSON](t, b.do(t, http.MethodGet, "/api/monitors/"+m.ID+"/stats?"+q.Encode(), "", b.ann, nil))
	require.Equal(t, "active", st.Timeline[0].State)
	require.Equal(t, 1, st.Evaluations.Total)

	// Nothing at all: rates and percentiles are null.
	q.Set("from", t0.Add(-48*time.Hour).Format(time.RFC3339))
	q.Set("to", t0.Add(-47*time.Hour).Format(time.RFC3339))
	st = decode[httpapi.MonitorStatsJSON](t, b.do(t, http.MethodGet, "/api/monitors/"+m.ID+"/stats?"+q.Encode(), "", b.ann, nil))
	require.Nil(t, st.Evaluations.SuccessRate)
	require.Nil(t, st.LatencyMS.P50)
	require.Equal(t, []httpapi.SegmentJSON{{State: "unknown", From: st.From, To: st.To, Seconds: 3600}}, st.Timeline)

	for _, tc := range []struct{ query, field string }{{"bucket=raw", "bucket"}, {"tz=Nowhere", "tz"}, {"to=soon", "to"}} {
		requireProblem(t, b.do(t, http.MethodGet, "/api/monitors/"+m.ID+"/stats?"+tc.query, "", b.ann, nil), http.StatusBadRequest, "invalid")
	}
	requireProblem(t, b.do(t, http.MethodGet, "/api/monitors/"+m.ID+"/stats", "", b.bob, nil), http.StatusNotFound, "not_found")
}

func ptrTo[T any](v T) *T { return &v }

func roundCost(a httpapi.AIUsageJSON) httpapi.AIUsageJSON {
	a.Cost = float64(int64(a.Cost*1e6+0.5)) / 1e6
	return a
}

package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
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

// record stores one successful evaluation of m at slot with facts, as the recorder does.
func (b *monitorsBundle) record(t *testing.T, m httpapi.MonitorJSON, slot time.Time, facts ...monitor.Fact) {
	t.Helper()
	for i := range facts {
		facts[i].ObservedAt = slot.Add(time.Second)
	}
	ev := event.EvaluationCompleted{MonitorID: m.ID, ScheduledFor: slot, StartedAt: slot.Add(2 * time.Second), FinishedAt: slot.Add(3 * time.Second),
		Status: monitor.EvaluationSucceeded, State: monitor.StateInactive, Facts: facts, Attempt: 1, MonitorVersion: m.Version}
	evs := []event.EvaluationCompleted{ev}
	_, err := postgres.NewEvaluationStore(b.pool, "test").RecordEvaluations(context.Background(), evs, func(st app.RecordState) (app.RecordPlan, error) {
		return app.PlanRecording(evs, st, app.RecordLimits{MaxFailures: 3}, func() (string, error) { return uuid.NewString(), nil })
	})
	require.NoError(t, err)
}

func priceFact(v float64, evidence string) monitor.Fact {
	f := monitor.NumberFact("price", v, "USD", time.Time{})
	f.Evidence, f.Confidence = evidence, 0.9
	return f
}

// TestFactSeries draws a chart of a monitor's price: hourly buckets with a gap, raw
// observations, a text fact's changes, the latest values with their evidence, and every
// way a query can ask for what cannot be read.
func TestFactSeries(t *testing.T) {
	t.Parallel()
	b := setupMonitorsAPIWith(t, stackOptions{rulesOnly: true})
	m := b.create(t, b.ann, fmt.Sprintf(`{"prompt":"Tell me when the price drops below $80","source_url":%q,"selector":"/price"}`, b.source.URL))
	t0 := time.Now().UTC().Truncate(time.Hour).Add(-5 * time.Hour)
	b.record(t, m, t0.Add(10*time.Minute), priceFact(90, "$90.00"))
	b.record(t, m, t0.Add(40*time.Minute), priceFact(80, "$80.00"))
	// nothing in the second hour
	b.record(t, m, t0.Add(2*time.Hour+5*time.Minute), priceFact(70, strings.Repeat("$70.00 ", 100)))
	path := "/api/monitors/" + m.ID + "/facts"
	q := url.Values{"from": {t0.Format(time.RFC3339)}, "to": {t0.Add(3 * time.Hour).Format(time.RFC3339)}, "bucket": {"1h"}}

	rec := b.do(t, http.MethodGet, path+"?"+q.Encode(), "", b.ann, nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	a := decode[httpapi.SeriesAnswerJSON](t, rec)
	require.Equal(t, "1h", a.Bucket)
	require.Equal(t, "avg", a.Agg)
	require.Len(t, a.Series, 1)
	s := a.Series[0]
	require.Equal(t, "price", s.Key)
	require.Equal(t, "USD", s.Unit)
	require.Len(t, s.Points, 3)
	require.Equal(t, 85.0, s.Points[0].V)
	require.Equal(t, 80.0, *s.Points[0].Min)
	require.Equal(t, 90.0, *s.Points[0].Max)
	require.Equal(t, 2, *s.Points[0].N)
	require.Nil(t, s.Points[1].V, "the empty hour is a gap")
	require.Equal(t, 0, *s.Points[1].N)
	require.Equal(t, t0.Add(time.Hour), s.Points[1].T.UTC())
	require.Equal(t, 70.0, s.Points[2].V)

	q.Set("agg", "max")
	a = decode[httpapi.SeriesAnswerJSON](t, b.do(t, http.MethodGet, path+"?"+q.Encode(), "", b.ann, nil))
	require.Equal(t, 90.0, a.Series[0].Points[0].V)
	q.Set("bucket", "raw")
	q.Del("agg")
	a = decode[httpapi.SeriesAnswerJSON](t, b.do(t, http.MethodGet, path+"?"+q.Encode(), "", b.ann, nil))
	require.Len(t, a.Series[0].Points, 3)
	require.Equal(t, 80.0, a.Series[0].Points[1].V)
	require.Equal(t, t0.Add(40*time.Minute+time.Second), a.Series[0].Points[1].T.UTC())

	// A range holding a single observation, raw and bucketed; one holding none.
	one := url.Values{"from": {t0.Add(2 * time.Hour).Format(time.RFC3339)}, "to": {t0.Add(3 * time.Hour).Format(time.RFC3339)}}
	for _, bucket := range []string{"raw", "1h", "15m"} {
		one.Set("bucket", bucket)
		a = decode[httpapi.SeriesAnswerJSON](t, b.do(t, http.MethodGet, path+"?"+one.Encode(), "", b.ann, nil))
		var vals []any
		for _, p := range a.Series[0].Points {
			if p.V != nil {
				vals = append(vals, p.V)
			}
		}
		require.Equal(t, []any{70.0}, vals, bucket)
	}
	one.Set("from", t0.Add(-48*time.Hour).Format(time.RFC3339))
	one.Set("to", t0.Add(-47*time.Hour).Format(time.RFC3339))
	one.Set("bucket", "raw")
	require.Empty(t, decode[httpapi.SeriesAnswerJSON](t, b.do(t, http.MethodGet, path+"?"+one.Encode(), "", b.ann, nil)).Series[0].Points)

	// Default: the last 7 days, in the finest bucket with at most 1,000 points.
	a = decode[httpapi.SeriesAnswerJSON](t, b.do(t, http.MethodGet, path+"?key=price", "", b.ann, nil))
	require.Equal(t, "15m", a.Bucket)
	require.Len(t, a.Series[0].Points, 7*24*4+1)

	// The latest value of each fact, with its evidence (kept to 300 characters) and confidence.
	rec = b.do(t, http.MethodGet, path+"/latest", "", b.ann, nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	latest := decode[httpapi.LatestFactsJSON](t, rec)
	require.Len(t, latest.Facts, 1)
	require.Equal(t, 70.0, latest.Facts[0].Value)
	require.Equal(t, monitor.EvidenceMaxRunes, len([]rune(*latest.Facts[0].Evidence)))
	require.InDelta(t, 0.9, *latest.Facts[0].Confidence, 1e-6)

	// The monitor's detail shows its last evaluation with its facts, and history their evidence.
	rec = b.do(t, http.MethodGet, "/api/monitors/"+m.ID, "", b.ann, nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	detail := decode[httpapi.MonitorDetailJSON](t, rec)
	require.NotNil(t, detail.LastEvaluation)
	require.Len(t, detail.LastEvaluation.Facts, 1)
	require.Equal(t, 70.0, detail.LastEvaluation.Facts[0].Value)
	require.NotNil(t, detail.Facts[0].Evidence)
	h := decode[httpapi.HistoryJSON](t, b.do(t, http.MethodGet, "/api/monitors/"+m.ID+"/history", "", b.ann, nil))
	require.Equal(t, "$80.00", *h.Evaluations[1].Facts[0].Evidence)

	// Queries that cannot be answered say which parameter to change, as a 400.
	for _, tc := range []struct{ query, field, says string }{
		{"key=volume", "key", `"volume" is not a fact of this monitor; its facts are: price`},
		{"bucket=2h", "bucket", "must be one of"},
		{"agg=median", "agg", "must be one of"},
		{"tz=Mars/Olympus", "tz", "IANA time zone"},
		{"from=2026-11-02T00:00:00Z&to=2026-11-01T00:00:00Z", "from", "before to"},
		{"from=yesterday", "from", "RFC 3339"},
		{"bucket=1m&from=2026-01-01T00:00:00Z&to=2026-03-01T00:00:00Z", "bucket", "use bucket=1h or coarser"},
		{"bucket=raw&from=2026-01-01T00:00:00Z&to=2026-03-01T00:00:00Z&key=price&key=price&key=a&key=b&key=c&key=d&key=e&key=f&key=g&key=h&key=i", "key", "at most 10"},
	} {
		rec := b.do(t, http.MethodGet, path+"?"+tc.query, "", b.ann, nil)
		p := requireProblem(t, rec, http.StatusBadRequest, "invalid")
		require.Contains(t, p.Errors[tc.field], tc.says, tc.query)
	}

	// Another user's monitor does not exist for them.
	for _, p := range []string{path, path + "/latest"} {
		rec := b.do(t, http.MethodGet, p, "", b.bob, nil)
		requireProblem(t, rec, http.StatusNotFound, "not_found")
	}
	rec = b.do(t, http.MethodGet, "/api/monitors/not-a-uuid/facts", "", b.ann, nil)
	requireProblem(t, rec, http.StatusNotFound, "not_found")
}

// TestTextFactSeriesGivesItsChanges: a text fact's series is the value in effect at from,
// then each change, not averages.
func TestTextFactSeriesGivesItsChanges(t *testing.T) {
	t.Parallel()
	b := setupMonitorsAPIWith(t, stackOptions{rulesOnly: true})
	m := b.create(t, b.ann, fmt.Sprintf(`{"prompt":"Tell me when the status changes","source_url":%q}`, b.source.URL))
	require.NotEmpty(t, m.Spec.Facts)
	key := m.Spec.Facts[0].Name
	require.Equal(t, monitor.FactText, m.Spec.Facts[0].Type, "spec %+v", m.Spec)
	t0 := time.Now().UTC().Truncate(time.Hour).Add(-5 * time.Hour)
	text := func(s string) monitor.Fact { return monitor.Fact{Key: key, Text: &s, Confidence: 1} }
	for i, v := range []string{"open", "open", "closed", "closed", "closed", "open"} {
		b.record(t, m, t0.Add(time.Duration(i)*30*time.Minute), text(v))
	}
	from := t0.Add(45 * time.Minute) // inside the first "open"... after the second
	q := url.Values{"from": {from.Format(time.RFC3339)}, "to": {t0.Add(4 * time.Hour).Format(time.RFC3339)}, "key": {key}}
	rec := b.do(t, http.MethodGet, "/api/monitors/"+m.ID+"/facts?"+q.Encode(), "", b.ann, nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	s := decode[httpapi.SeriesAnswerJSON](t, rec).Series[0]
	require.Equal(t, "changes", s.Bucket)
	require.Len(t, s.Points, 3, "open at from, closed, open again: %+v", s.Points)
	require.Equal(t, "open", s.Points[0].V)
	require.Equal(t, from, s.Points[0].T.UTC())
	require.Equal(t, "closed", s.Points[1].V)
	require.Equal(t, t0.Add(time.Hour+time.Second), s.Points[1].T.UTC())
	require.Equal(t, "open", s.Points[2].V)
	require.Nil(t, s.Points[0].N)
}

package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/httpapi"
	"github.com/vigilhq/vigil/adapters/postgres"
	"github.com/vigilhq/vigil/domain/account"
	"github.com/vigilhq/vigil/domain/event"
	"github.com/vigilhq/vigil/domain/monitor"
)

func adminService(t *testing.T, pool *pgxpool.Pool) *account.AdminService {
	t.Helper()
	audit := postgres.NewAuditStore(pool)
	svc, err := account.NewAdminService(account.AdminDeps{Users: postgres.NewAccountStore(pool, "vigil/test"),
		Allowlist: postgres.NewAllowlistStore(pool), Audit: audit, Search: audit, Clock: account.ClockFunc(time.Now)})
	require.NoError(t, err)
	return svc
}

// TestOverviews: an account's overview counts its own monitors, days and noisiest monitors
// only; the system's sums every account's, for administrators only.
func TestOverviews(t *testing.T) {
	t.Parallel()
	b := setupMonitorsAPIWith(t, stackOptions{rulesOnly: true})
	prompt := fmt.Sprintf(`{"prompt":"Tell me when the price drops below $80","source_url":%q}`, b.source.URL)
	quiet, noisy := b.create(t, b.ann, prompt), b.create(t, b.ann, prompt)
	bobs := b.create(t, b.bob, prompt)
	rec := b.do(t, http.MethodPatch, "/api/monitors/"+quiet.ID, `{"status":"paused"}`, b.ann, nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	quiet.Version++

	paris, err := time.LoadLocation("Europe/Paris")
	require.NoError(t, err)
	day0 := time.Date(2026, 11, 20, 0, 0, 0, 0, paris) // local midnights
	ev := func(m httpapi.MonitorJSON, at time.Time, status monitor.EvaluationStatus, state monitor.State) event.EvaluationCompleted {
		e := event.EvaluationCompleted{MonitorID: m.ID, ScheduledFor: at.UTC(), StartedAt: at.UTC(), FinishedAt: at.UTC().Add(time.Second),
			Status: status, State: state, Attempt: 1, MonitorVersion: m.Version, Usage: event.Usage{Cost: 0.25}}
		if status == monitor.EvaluationFailed {
			e.Error = "502"
		} else {
			e.Facts = []monitor.Fact{monitor.NumberFact("price", 70, "USD", at)}
		}
		return e
	}
	S, F := monitor.EvaluationSucceeded, monitor.EvaluationFailed
	b.recordAll(t, []event.EvaluationCompleted{
		ev(noisy, day0.Add(1*time.Hour), S, monitor.StateActive), // 00:00-01:00 local: the first day in Paris, not in UTC
		ev(noisy, day0.Add(2*time.Hour), S, monitor.StateInactive),
		ev(noisy, day0.Add(26*time.Hour), S, monitor.StateActive),
		ev(noisy, day0.Add(27*time.Hour), F, monitor.StateUnknown),
	})
	b.recordAll(t, []event.EvaluationCompleted{ev(quiet, day0.Add(3*time.Hour), S, monitor.StateActive)})
	b.recordAll(t, []event.EvaluationCompleted{ev(bobs, day0.Add(3*time.Hour), S, monitor.StateActive)})
	_, err = b.pool.Exec(context.Background(), `
		INSERT INTO notifications (user_id, monitor_id, kind, recipient, status, from_state, to_state, created_at)
		SELECT user_id, id, 'state_changed', 'x@example.com', 'sent', 'inactive', 'active', $2 FROM monitors WHERE id = ANY($1::uuid[])`,
		[]string{noisy.ID, bobs.ID}, day0.Add(90*time.Minute))
	require.NoError(t, err)

	q := url.Values{"from": {day0.UTC().Format(time.RFC3339)}, "to": {day0.AddDate(0, 0, 3).UTC().Format(time.RFC3339)}, "tz": {"Europe/Paris"}}
	rec = b.do(t, http.MethodGet, "/api/stats?"+q.Encode(), "", b.ann, nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	o := decode[httpapi.OverviewJSON](t, rec)
	require.Nil(t, o.Users, "an account's overview counts no users")
	require.Equal(t, 2, o.Monitors.Total)
	require.Equal(t, map[string]int{"active": 1, "paused": 1, "error": 0}, o.Monitors.ByStatus)
	require.Equal(t, map[string]int{"active": 2, "inactive": 0, "unknown": 0}, o.Monitors.ByState)
	require.Len(t, o.Days, 3)
	require.True(t, o.Days[0].T.Equal(day0), "days start at local midnight: %s", o.Days[0].T)
	require.Equal(t, 3, o.Days[0].Evaluations, "the two of noisy and quiet's one")
	require.InDelta(t, 0.75, o.Days[0].Cost, 1e-9)
	require.Equal(t, map[string]int{"sent": 1}, o.Days[0].Notifications, "bob's notification is not ann's")
	require.Equal(t, 1, o.Days[1].Succeeded)
	require.Equal(t, 1, o.Days[1].Failed)
	require.Zero(t, o.Days[2].Evaluations)
	require.Equal(t, map[string]int{}, o.Days[2].Notifications)
	require.Len(t, o.Noisiest, 2)
	require.Equal(t, noisy.ID, o.Noisiest[0].MonitorID)
	require.Equal(t, 3, o.Noisiest[0].Transitions, "unknown -> active -> inactive -> active")
	require.Equal(t, 1, o.Noisiest[0].Notifications)
	require.Equal(t, quiet.ID, o.Noisiest[1].MonitorID)

	// The system's overview is for administrators only, and sums every account.
	requireProblem(t, b.do(t, http.MethodGet, "/api/admin/stats?"+q.Encode(), "", b.ann, nil), http.StatusForbidden, "forbidden")
	_, err = b.pool.Exec(context.Background(), `UPDATE users SET role = 'admin' WHERE email = 'ann@example.com'`)
	require.NoError(t, err)
	rec = b.do(t, http.MethodPost, "/api/auth/login", fmt.Sprintf(`{"email":"ann@example.com","password":%q}`, goodPassword), "", nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	admin := decode[httpapi.TokenResponse](t, rec).AccessToken
	rec = b.do(t, http.MethodGet, "/api/admin/stats?"+q.Encode(), "", admin, nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	sys := decode[httpapi.OverviewJSON](t, rec)
	require.Equal(t, 2, *sys.Users)
	require.Equal(t, 3, sys.Monitors.Total)
	require.Equal(t, 4, sys.Days[0].Evaluations)
	require.Equal(t, map[string]int{"sent": 2}, sys.Days[0].Notifications)
	require.Len(t, sys.Noisiest, 3)

	for _, bad := range []string{"tz=Atlantis", "from=2020-01-01T00:00:00Z", "to=2020-01-01T00:00:00Z&from=2021-01-01T00:00:00Z", "to=tomorrow"} {
		requireProblem(t, b.do(t, http.MethodGet, "/api/stats?"+bad, "", b.bob, nil), http.StatusBadRequest, "invalid")
	}
	requireProblem(t, b.do(t, http.MethodGet, "/api/stats", "", "", nil), http.StatusUnauthorized, "unauthorized")
}

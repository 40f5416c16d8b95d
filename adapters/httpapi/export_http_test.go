package httpapi_test

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/httpapi"
)

// TestExportMonitor: each kind in both formats, with the download's headers, and the
// errors of a bad export.
func TestExportMonitor(t *testing.T) {
	t.Parallel()
	b := setupMonitorsAPIWith(t, stackOptions{rulesOnly: true})
	m := b.create(t, b.ann, fmt.Sprintf(`{"prompt":"Tell me when the price drops below $80","source_url":%q}`, b.source.URL))
	t0 := time.Now().UTC().Truncate(time.Hour).Add(-3 * time.Hour)
	b.record(t, m, t0, priceFact(90, `$90.00, "was" $95`))
	b.record(t, m, t0.Add(time.Hour), priceFact(75, "$75.00"))
	path := "/api/monitors/" + m.ID + "/export"

	rec := b.do(t, http.MethodGet, path+"?what=facts", "", b.ann, nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Equal(t, "text/csv; charset=utf-8", rec.Header().Get("Content-Type"))
	require.Equal(t, fmt.Sprintf(`attachment; filename="monitor-%s-facts.csv"`, m.ID), rec.Header().Get("Content-Disposition"))
	records, err := csv.NewReader(rec.Body).ReadAll()
	require.NoError(t, err)
	require.Equal(t, []string{"observed_at", "key", "value", "unit", "evidence", "confidence"}, records[0])
	require.Len(t, records, 3)
	require.Equal(t, []string{"price", "90", "USD", `$90.00, "was" $95`, "0.9"}, records[1][1:], "quotes and commas survive")

	rec = b.do(t, http.MethodGet, path+"?what=evaluations&format=ndjson", "", b.ann, nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Equal(t, "application/x-ndjson", rec.Header().Get("Content-Type"))
	lines := strings.Split(strings.TrimSpace(rec.Body.String()), "\n")
	require.Len(t, lines, 2)
	var ev httpapi.EvaluationJSON
	require.NoError(t, json.Unmarshal([]byte(lines[1]), &ev))
	require.Equal(t, "succeeded", ev.Status)
	require.Equal(t, t0.Add(time.Hour), ev.ScheduledFor.UTC())

	// An empty export is its header; notifications in a range.
	rec = b.do(t, http.MethodGet, path+"?what=notifications&from="+t0.Format(time.RFC3339), "", b.ann, nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Equal(t, "id,created_at,kind,channel,recipient,status,from,to,attempts,last_error,sent_at,trigger_id,action_id,evaluation_id\n", rec.Body.String())

	for _, tc := range []struct{ query, field string }{{"", "what"}, {"what=everything", "what"}, {"what=facts&format=xml", "format"},
		{"what=facts&from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", "from"}, {"what=facts&to=later", "to"}} {
		p := requireProblem(t, b.do(t, http.MethodGet, path+"?"+tc.query, "", b.ann, nil), http.StatusBadRequest, "invalid")
		require.NotEmpty(t, p.Errors[tc.field], tc.query)
	}
	requireProblem(t, b.do(t, http.MethodGet, path+"?what=facts", "", b.bob, nil), http.StatusNotFound, "not_found")
}

// TestExportOfAMillionFactsStreams: a million facts download through a real server in
// constant memory (the heap grows by far less than the export's size, asserted through
// runtime.ReadMemStats), and the rows that arrive are the rows stored: same count, same
// checksum.
func TestExportOfAMillionFactsStreams(t *testing.T) {
	t.Parallel()
	const n = 1_000_000
	b := setupMonitorsAPIWith(t, stackOptions{rulesOnly: true})
	m := b.create(t, b.ann, fmt.Sprintf(`{"prompt":"Tell me when the price drops below $80","source_url":%q}`, b.source.URL))
	t0 := time.Now().UTC().Truncate(time.Hour).Add(-n * time.Second)
	value := func(i int) float64 { return float64(i%100_000) / 4 }
	want := fnv.New64a()
	i := 0
	_, err := b.pool.CopyFrom(context.Background(), pgx.Identifier{"facts"}, []string{"monitor_id", "key", "value_number", "unit", "observed_at"},
		pgx.CopyFromFunc(func() ([]any, error) {
			if i == n {
				return nil, nil
			}
			at := t0.Add(time.Duration(i) * time.Second)
			fmt.Fprintf(want, "%s|%s\n", at.Format(time.RFC3339Nano), strconv.FormatFloat(value(i), 'f', -1, 64))
			i++
			return []any{m.ID, "price", value(i - 1), "USD", at}, nil
		}))
	require.NoError(t, err)

	srv := httptest.NewServer(b.h)
	t.Cleanup(srv.Close)
	req, err := http.NewRequest(http.MethodGet, srv.URL+"/api/monitors/"+m.ID+"/export?what=facts&format=csv", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+b.ann)

	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > peak.Load() {
					peak.Store(ms.HeapInuse)
				}
			}
		}
	}()
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	got := fnv.New64a()
	sc := bufio.NewScanner(resp.Body)
	rows, size := 0, 0
	for sc.Scan() {
		line := sc.Text()
		size += len(line) + 1
		if rows++; rows == 1 {
			continue // the header
		}
		f := strings.SplitN(line, ",", 4)
		fmt.Fprintf(got, "%s|%s\n", f[0], f[2])
	}
	require.NoError(t, sc.Err())
	_, _ = io.Copy(io.Discard, resp.Body)
	close(stop)
	<-sampled
	require.Equal(t, n+1, rows, "every fact and the header")
	require.Equal(t, want.Sum64(), got.Sum64(), "the rows that arrived are the rows stored")
	growth := int64(peak.Load()) - int64(base.HeapInuse)
	t.Logf("exported %d rows, %d MB; heap grew by at most %d MB", n, size>>20, growth>>20)
	require.Greater(t, size, 30<<20, "the export is large")
	require.Less(t, growth, int64(64<<20), "the heap does not grow with the export")
}

// TestExportAccount: the account's export holds its user, actions, monitors with their
// triggers, evaluations and facts, and notifications; nothing of another account, and no
// secret.
func TestExportAccount(t *testing.T) {
	t.Parallel()
	b := setupMonitorsAPIWith(t, stackOptions{rulesOnly: true})
	rec := b.do(t, http.MethodPost, "/api/actions", `{"name":"Hook","type":"webhook","config":{"url":"https://93.184.216.34/hook"}}`, b.ann, nil)
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	secret := *decode[httpapi.ActionJSON](t, rec).Secret
	prompt := fmt.Sprintf(`{"prompt":"Tell me when the price drops below $80","source_url":%q}`, b.source.URL)
	m := b.create(t, b.ann, prompt)
	other := b.create(t, b.bob, prompt)
	t0 := time.Now().UTC().Truncate(time.Hour).Add(-2 * time.Hour)
	b.record(t, m, t0, priceFact(90, "$90.00"))
	b.record(t, m, t0.Add(time.Hour), priceFact(70, "$70.00"))
	b.record(t, other, t0, priceFact(10, "$10.00"))
	_, err := b.pool.Exec(context.Background(), `
		INSERT INTO notifications (user_id, monitor_id, kind, recipient, status, from_state, to_state)
		SELECT user_id, id, 'state_changed', 'ann@example.com', 'sent', 'inactive', 'active' FROM monitors WHERE id = ANY($1::uuid[])`,
		[]string{m.ID, other.ID})
	require.NoError(t, err)

	rec = b.do(t, http.MethodGet, "/api/me/export", "", b.ann, nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Equal(t, `attachment; filename="vigil-account.ndjson"`, rec.Header().Get("Content-Disposition"))
	body := rec.Body.String()
	require.NotContains(t, body, secret, "no webhook secret")
	require.NotContains(t, body, other.ID, "nothing of bob's")
	count := map[string]int{}
	for _, l := range strings.Split(strings.TrimSpace(body), "\n") {
		var line struct {
			Type      string          `json:"type"`
			MonitorID string          `json:"monitor_id"`
			Data      json.RawMessage `json:"data"`
		}
		require.NoError(t, json.Unmarshal([]byte(l), &line), l)
		count[line.Type]++
		switch line.Type {
		case "user":
			var u httpapi.UserJSON
			require.NoError(t, json.Unmarshal(line.Data, &u))
			require.Equal(t, "ann@example.com", u.Email)
		case "fact", "evaluation", "trigger":
			require.Equal(t, m.ID, line.MonitorID)
		}
	}
	require.Equal(t, 1, count["user"])
	require.Equal(t, 2, count["action"], "the default email action and the webhook")
	require.Equal(t, 1, count["monitor"])
	require.Equal(t, 1, count["trigger"], "the default trigger")
	require.Equal(t, 2, count["evaluation"])
	require.Equal(t, 2, count["fact"])
	require.Equal(t, 1, count["notification"])
	requireProblem(t, b.do(t, http.MethodGet, "/api/me/export", "", "", nil), http.StatusUnauthorized, "unauthorized")
}

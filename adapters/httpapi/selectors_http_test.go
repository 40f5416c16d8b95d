package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/httpapi"
	"github.com/vigilhq/vigil/adapters/render"
)

// shopPages serves ordinary shop markup, as a new user meets it.
func shopPages(t *testing.T) *httptest.Server {
	t.Helper()
	pages := map[string]string{
		"/plain": `<html><body><div class="product"><h1>Widget</h1><span class="price">$120.00</span></div></body></html>`,
		"/two":   `<html><body><div id="buy"><s class="amount">$150.00</s> <b class="amount sale">$95.00</b></div><p>Price: $150.00</p></body></html>`,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		page, ok := pages[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, page)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestValidateFindsShopPrices covers the page that used to fail (a price in a span whose
// class names it, no label beside it) and shows where the value was found.
func TestValidateFindsShopPrices(t *testing.T) {
	t.Parallel()
	b := setupMonitorsAPIWith(t, stackOptions{rulesOnly: true})
	shop := shopPages(t)

	rec := b.do(t, http.MethodPost, "/api/monitors/validate",
		fmt.Sprintf(`{"prompt":"Tell me when the price drops below $100","source_url":%q}`, shop.URL+"/plain"), b.ann, nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	v := decode[httpapi.ValidationJSON](t, rec)
	require.Empty(t, v.Warnings)
	require.Len(t, v.Facts, 1)
	require.Equal(t, 120.0, v.Facts[0].Value)
	require.Equal(t, "$120.00", *v.Facts[0].Evidence)
	require.Equal(t, "body > div.product > span.price", *v.Facts[0].Locator)
	require.Equal(t, "inactive", v.Verdict.State)

	// The user's selector picks the sale price over the struck-out one and the label.
	rec = b.do(t, http.MethodPost, "/api/monitors/validate",
		fmt.Sprintf(`{"prompt":"Tell me when the price drops below $100","source_url":%q,"selector":"#buy .sale"}`, shop.URL+"/two"), b.ann, nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	v = decode[httpapi.ValidationJSON](t, rec)
	require.Equal(t, 95.0, v.Facts[0].Value)
	require.Equal(t, "div#buy > b.amount", *v.Facts[0].Locator)
	require.Equal(t, 1.0, *v.Facts[0].Confidence)
	require.Equal(t, "active", v.Verdict.State)
	require.Equal(t, "#buy .sale", v.Spec.Facts[0].Selector)
	require.Equal(t, "user", v.Spec.Facts[0].SelectorBy)

	// A selector that matches nothing says so, and is not replaced by a guess.
	rec = b.do(t, http.MethodPost, "/api/monitors/validate",
		fmt.Sprintf(`{"prompt":"Tell me when the price drops below $100","source_url":%q,"selector":{"price":"//span[@id='gone']"}}`, shop.URL+"/two"), b.ann, nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	v = decode[httpapi.ValidationJSON](t, rec)
	require.Empty(t, v.Facts)
	require.Contains(t, v.Warnings, `The selector "//span[@id='gone']" of price matched nothing on the page.`)

	// The format the user gives is honoured: this page is not JSON.
	rec = b.do(t, http.MethodPost, "/api/monitors/validate",
		fmt.Sprintf(`{"prompt":"Tell me when the price drops below $100","source_url":%q,"source_format":"json"}`, shop.URL+"/plain"), b.ann, nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	v = decode[httpapi.ValidationJSON](t, rec)
	require.Empty(t, v.Facts)
	require.Contains(t, v.Warnings, "The source is not JSON, but the monitor's source_format says json.")

	for body, field := range map[string]string{
		`{"prompt":"price below 100","selector":"span[["}`:                 "selector",
		`{"prompt":"price below 100","selector":{"weight":".w"}}`:          "selector.weight",
		`{"prompt":"price below 100","selector":{"price":"xpath://a["}}`:   "selector.price",
		`{"prompt":"price below 100","selector":["span"]}`:                 "selector",
		`{"prompt":"price below 100","source_format":"xml"}`:               "source_format",
		`{"prompt":"price below 100","selector":"re:(("}`:                  "selector",
		`{"prompt":"price below 100","selector":"json:not a path at all"}`: "selector",
	} {
		rec := b.do(t, http.MethodPost, "/api/monitors/validate", body, b.ann, nil)
		p := requireProblem(t, rec, http.StatusUnprocessableEntity, "invalid")
		require.NotEmpty(t, p.Errors[field], "%s: errors %v", body, p.Errors)
	}
	rec = b.do(t, http.MethodPost, "/api/monitors/validate", `{"prompt":"price below 100","selector":{"weight":".w"}}`, b.ann, nil)
	require.Contains(t, requireProblem(t, rec, http.StatusUnprocessableEntity, "invalid").Errors["selector.weight"], "its facts are: price")
}

// TestMonitorSelectorsLifecycle covers selectors and the source format on create and
// update: stored per fact, shown, kept when the prompt is classified again, removed on
// request, and used by evaluations.
func TestMonitorSelectorsLifecycle(t *testing.T) {
	t.Parallel()
	b := setupMonitorsAPI(t)
	shop := shopPages(t)

	m := b.create(t, b.ann, fmt.Sprintf(`{"prompt":"Tell me when the price drops below $100","source_url":%q,"selector":"css:#buy .sale","source_format":"html"}`, shop.URL+"/two"))
	require.Equal(t, "html", m.SourceFormat)
	require.Equal(t, map[string]string{"price": "css:#buy .sale"}, m.Selectors)
	require.Equal(t, "css:#buy .sale", m.Spec.Facts[0].Selector)
	require.Equal(t, "html", b.stringOf(t, `SELECT source_format FROM monitors WHERE id = $1`, m.ID))
	path := "/api/monitors/" + m.ID

	// A dry run of the stored monitor uses its selector.
	rec := b.do(t, http.MethodPost, path+"/validate", `{}`, b.ann, nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Equal(t, 95.0, decode[httpapi.ValidationJSON](t, rec).Facts[0].Value)

	// A new prompt is classified again and keeps the user's selector.
	rec = b.do(t, http.MethodPatch, path, `{"prompt":"Tell me when the price drops below $90"}`, b.ann, nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	m = decode[httpapi.MonitorJSON](t, rec)
	require.Equal(t, "price < 90", m.Spec.Condition)
	require.Equal(t, map[string]string{"price": "css:#buy .sale"}, m.Selectors)

	// Another selector replaces it; null removes it; the format goes back to auto.
	rec = b.do(t, http.MethodPatch, path, `{"selector":{"price":"//div[@id='buy']/b"},"source_format":"auto"}`, b.ann, nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	m = decode[httpapi.MonitorJSON](t, rec)
	require.Equal(t, map[string]string{"price": "//div[@id='buy']/b"}, m.Selectors)
	require.Equal(t, "auto", m.SourceFormat)
	rec = b.do(t, http.MethodPatch, path, `{"selector":null}`, b.ann, nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	m = decode[httpapi.MonitorJSON](t, rec)
	require.Empty(t, m.Selectors)
	require.Empty(t, m.Spec.Facts[0].Selector)

	rec = b.do(t, http.MethodPatch, path, `{"selector":"a[["}`, b.ann, nil)
	require.NotEmpty(t, requireProblem(t, rec, http.StatusUnprocessableEntity, "invalid").Errors["selector"])
	rec = b.do(t, http.MethodPatch, path, `{"source_format":"pdf"}`, b.ann, nil)
	require.NotEmpty(t, requireProblem(t, rec, http.StatusUnprocessableEntity, "invalid").Errors["source_format"])
	rec = b.do(t, http.MethodPost, "/api/monitors", fmt.Sprintf(`{"prompt":"price below 100","source_url":%q,"selector":{"stock":"#s"}}`, shop.URL), b.ann, nil)
	require.NotEmpty(t, requireProblem(t, rec, http.StatusUnprocessableEntity, "invalid").Errors["selector.stock"])
}

func (b *monitorsBundle) stringOf(t *testing.T, sql string, args ...any) string {
	t.Helper()
	var s string
	require.NoError(t, b.pool.QueryRow(t.Context(), sql, args...).Scan(&s))
	return s
}

// TestRenderingIsTheOperatorsChoice: without a browser, a monitor asking for rendering is a
// 422 naming the setting; with one, validate reads what the page's scripts drew, which
// the plain fetch does not see.
func TestRenderingIsTheOperatorsChoice(t *testing.T) {
	t.Parallel()
	jsPage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, `<html><body><div id="app"></div><script>
			document.getElementById("app").innerHTML = '<span class="price">$' + (40 + 2.5).toFixed(2) + '</span>';
		</script></body></html>`)
	}))
	t.Cleanup(jsPage.Close)
	prompt := fmt.Sprintf(`{"prompt":"Tell me when the price drops below $50","source_url":%q,"render":true}`, jsPage.URL)

	none := setupMonitorsAPIWith(t, stackOptions{rulesOnly: true})
	for _, path := range []string{"/api/monitors", "/api/monitors/validate"} {
		rec := none.do(t, http.MethodPost, path, prompt, none.ann, nil)
		p := requireProblem(t, rec, http.StatusUnprocessableEntity, "invalid")
		require.Contains(t, p.Detail, "VIGIL_CHROMIUM")
		require.NotEmpty(t, p.Errors["render"])
	}
	m := none.create(t, none.ann, fmt.Sprintf(`{"prompt":"Tell me when the price drops below $50","source_url":%q}`, jsPage.URL))
	rec := none.do(t, http.MethodPatch, "/api/monitors/"+m.ID, `{"render":true}`, none.ann, nil)
	require.NotEmpty(t, requireProblem(t, rec, http.StatusUnprocessableEntity, "invalid").Errors["render"])

	path, err := render.Find(os.Getenv("VIGIL_CHROMIUM"))
	require.NoError(t, err, "no Chromium: run `make test`, which installs Debian's chromium, or set VIGIL_CHROMIUM")
	r, err := render.New(render.Config{ExecPath: path, AllowPrivate: true, Timeout: 30 * time.Second}, time.Now)
	require.NoError(t, err)
	t.Cleanup(r.Close)
	b := setupMonitorsAPIWith(t, stackOptions{rulesOnly: true, renderer: r})
	rec = b.do(t, http.MethodPost, "/api/monitors/validate", prompt, b.ann, nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	v := decode[httpapi.ValidationJSON](t, rec)
	require.Len(t, v.Facts, 1, "warnings: %v", v.Warnings)
	require.Equal(t, 42.5, v.Facts[0].Value)
	require.Equal(t, "active", v.Verdict.State)

	// Without rendering the same page holds no price.
	rec = b.do(t, http.MethodPost, "/api/monitors/validate", strings.Replace(prompt, `"render":true`, `"render":false`, 1), b.ann, nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Empty(t, decode[httpapi.ValidationJSON](t, rec).Facts)

	m = b.create(t, b.ann, prompt)
	require.True(t, m.Render)
	require.True(t, b.boolOf(t, `SELECT render FROM monitors WHERE id = $1`, m.ID))
}

func (b *monitorsBundle) boolOf(t *testing.T, sql string, args ...any) bool {
	t.Helper()
	var v bool
	require.NoError(t, b.pool.QueryRow(t.Context(), sql, args...).Scan(&v))
	return v
}

// TestAutoRepairAndMissesAreShown: auto_repair is set on create and PATCH; a monitor shows
// its misses and newest repair, and its history each evaluation's miss and repair, in the
// documented shapes.
func TestAutoRepairAndMissesAreShown(t *testing.T) {
	t.Parallel()
	b := setupMonitorsAPIWith(t, stackOptions{rulesOnly: true})
	m := b.create(t, b.ann, `{"prompt":"Tell me when the price drops below $100","source_url":"https://shop.example/x","auto_repair":true}`)
	require.True(t, m.AutoRepair)
	require.Zero(t, m.ExtractionMisses)
	require.Nil(t, m.Repair)
	rec := b.do(t, http.MethodPatch, "/api/monitors/"+m.ID, `{"auto_repair":false}`, b.ann, nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.False(t, decode[httpapi.MonitorJSON](t, rec).AutoRepair)
	rec = b.do(t, http.MethodPatch, "/api/monitors/"+m.ID, `{"auto_repair":"yes"}`, b.ann, nil)
	require.Less(t, rec.Code, 500, rec.Body.String())
	require.GreaterOrEqual(t, rec.Code, 400)

	repair := `{"fact":"price","old_selector":"span.price","selector":"[data-testid=price-now]","found":"120 USD","expected":"120 USD",
		"verified":true,"applied":false,"reason":"Proposed, not applied: auto_repair is off.","provider":"claude","at":"2026-12-01T10:00:00Z"}`
	_, err := b.pool.Exec(context.Background(), `
		INSERT INTO evaluations (id, monitor_id, scheduled_for, started_at, finished_at, status, state, explanation, error, miss, repair)
		VALUES (gen_random_uuid(), $1, now(), now(), now(), 'failed', 'unknown', '', 'Could not find the price in the source.',
		        $2, $3)`, m.ID,
		`{"fact":"price","selector":"span.price","last_good":{"key":"price","number":120,"unit":"USD","evidence":"$120.00","confidence":1,
		  "observed_at":"2026-12-01T09:00:00Z"},"snippet":"Trail shoe. Now $120.00"}`, repair)
	require.NoError(t, err)
	_, err = b.pool.Exec(context.Background(), `UPDATE monitors SET extraction_misses = 1, repair = $2 WHERE id = $1`, m.ID, repair)
	require.NoError(t, err)

	rec = b.do(t, http.MethodGet, "/api/monitors/"+m.ID, "", b.ann, nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	got := decode[httpapi.MonitorJSON](t, rec)
	require.Equal(t, 1, got.ExtractionMisses)
	require.Equal(t, "[data-testid=price-now]", got.Repair.Selector)
	require.True(t, got.Repair.Verified)

	rec = b.do(t, http.MethodGet, "/api/monitors/"+m.ID+"/history", "", b.ann, nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	h := decode[httpapi.HistoryJSON](t, rec)
	require.Len(t, h.Evaluations, 1)
	require.Equal(t, "price", h.Evaluations[0].Miss.Fact)
	require.Equal(t, 120.0, h.Evaluations[0].Miss.LastGood.Value)
	require.Equal(t, "$120.00", *h.Evaluations[0].Miss.LastGood.Evidence)
	require.Equal(t, "Trail shoe. Now $120.00", h.Evaluations[0].Miss.Snippet)
	require.Equal(t, "120 USD", h.Evaluations[0].Repair.Found)

	// Another user sees none of it.
	rec = b.do(t, http.MethodGet, "/api/monitors/"+m.ID+"/history", "", b.bob, nil)
	require.Equal(t, http.StatusNotFound, rec.Code)
}

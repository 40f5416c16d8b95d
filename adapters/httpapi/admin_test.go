package httpapi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/httpapi"
	"github.com/vigilhq/vigil/adapters/postgres"
	"github.com/vigilhq/vigil/adapters/postgres/pgtest"
	"github.com/vigilhq/vigil/domain/account"
)

// withAdmin wires the real admin service.
func withAdmin(t *testing.T) func(*httpapi.Config, *pgxpool.Pool, *fakeClock) {
	t.Helper()
	return func(cfg *httpapi.Config, pool *pgxpool.Pool, clock *fakeClock) {
		audit := postgres.NewAuditStore(pool)
		svc, err := account.NewAdminService(account.AdminDeps{Users: postgres.NewAccountStore(pool, "vigil/test"),
			Allowlist: postgres.NewAllowlistStore(pool), Audit: audit, Search: audit, Clock: clock})
		require.NoError(t, err)
		cfg.Admin = svc
	}
}

// makeAdmin registers an account, makes it an administrator and logs in again, so the
// access token carries the role.
func (b *authBundle) makeAdmin(t *testing.T, email string) httpapi.TokenResponse {
	t.Helper()
	reg := b.register(t, email, goodPassword)
	_, err := b.pool.Exec(context.Background(), `UPDATE users SET role = 'admin' WHERE id = $1`, reg.User.ID)
	require.NoError(t, err)
	rec := b.login(t, email, goodPassword)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	out := decode[httpapi.TokenResponse](t, rec)
	require.Equal(t, "admin", out.User.Role)
	return out
}

func TestAdminNeedsAnAdministrator(t *testing.T) {
	t.Parallel()
	b := setupAuth(t, authOpts{wire: withAdmin(t)})
	ann := b.register(t, "ann@example.com", goodPassword)
	const someID = "01900000-0000-7000-8000-000000000000"
	for _, r := range []struct{ method, path, body string }{
		{http.MethodGet, "/api/admin/allowlist", ""},
		{http.MethodPost, "/api/admin/allowlist", `{"pattern":"@example.com"}`},
		{http.MethodDelete, "/api/admin/allowlist/" + someID, ""},
		{http.MethodGet, "/api/admin/audit", ""},
	} {
		p := requireProblem(t, b.do(t, r.method, r.path, r.body, ann.AccessToken), http.StatusForbidden, "forbidden")
		require.Equal(t, "This needs an administrator.", p.Detail, r.path)
		requireProblem(t, b.do(t, r.method, r.path, r.body, ""), http.StatusUnauthorized, "unauthorized")
	}
	require.Zero(t, b.count(t, `SELECT count(*) FROM beta_allowlist`))

	// A role taken away is effective at once, although the access token still says admin.
	admin := b.makeAdmin(t, "root@example.com")
	require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, "/api/admin/allowlist", "", admin.AccessToken).Code)
	_, err := b.pool.Exec(context.Background(), `UPDATE users SET role = 'user' WHERE id = $1`, admin.User.ID)
	require.NoError(t, err)
	requireProblem(t, b.do(t, http.MethodGet, "/api/admin/allowlist", "", admin.AccessToken), http.StatusForbidden, "forbidden")
}

func TestAdminAllowlist(t *testing.T) {
	t.Parallel()
	pool := pgtest.New(t)
	open := setupAuthOn(t, pool, authOpts{wire: withAdmin(t)})
	beta := setupAuthOn(t, pool, authOpts{beta: true})
	admin := open.makeAdmin(t, "root@example.com")
	add := func(pattern string) *httptest.ResponseRecorder {
		return open.do(t, http.MethodPost, "/api/admin/allowlist", jsonBody(t, map[string]string{"pattern": pattern}), admin.AccessToken)
	}
	registerBeta := func(email string) *httptest.ResponseRecorder {
		return beta.do(t, http.MethodPost, "/api/auth/register", jsonBody(t, map[string]string{"email": email, "password": goodPassword}), "")
	}

	requireProblem(t, registerBeta("zoe@invited.example"), http.StatusForbidden, "forbidden")

	rec := add(" @Invited.Example ")
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	domainEntry := decode[httpapi.AllowlistEntryJSON](t, rec)
	require.Equal(t, "@invited.example", domainEntry.Pattern)
	require.Equal(t, "domain", domainEntry.Kind)
	require.Equal(t, admin.User.ID, *domainEntry.AddedBy)
	require.Equal(t, "/api/admin/allowlist/"+domainEntry.ID, rec.Header().Get("Location"))

	rec = add("Ann@Example.com")
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	emailEntry := decode[httpapi.AllowlistEntryJSON](t, rec)
	require.Equal(t, "ann@example.com", emailEntry.Pattern)
	require.Equal(t, "email", emailEntry.Kind)

	p := requireProblem(t, add("ANN@example.com"), http.StatusConflict, "conflict")
	require.Contains(t, p.Errors, "pattern")
	for _, bad := range []string{"", "nope", "@", "@nodot", "a@@b.example", "@a@b.example", "Ann <ann@example.com>"} {
		p := requireProblem(t, add(bad), http.StatusUnprocessableEntity, "invalid")
		require.Contains(t, p.Errors, "pattern", bad)
	}

	rec = open.do(t, http.MethodGet, "/api/admin/allowlist", "", admin.AccessToken)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	list := decode[httpapi.AllowlistJSON](t, rec)
	require.Len(t, list.Items, 2)
	require.Equal(t, "@invited.example", list.Items[0].Pattern)
	require.Equal(t, "ann@example.com", list.Items[1].Pattern)

	// The beta lets in whoever the entries name.
	require.Equal(t, http.StatusCreated, registerBeta("Zoe@Invited.example").Code)
	require.Equal(t, http.StatusCreated, registerBeta("ann@example.com").Code)
	requireProblem(t, registerBeta("max@example.com"), http.StatusForbidden, "forbidden")

	rec = open.do(t, http.MethodDelete, "/api/admin/allowlist/"+domainEntry.ID, "", admin.AccessToken)
	require.Equal(t, http.StatusNoContent, rec.Code, rec.Body.String())
	requireProblem(t, open.do(t, http.MethodDelete, "/api/admin/allowlist/"+domainEntry.ID, "", admin.AccessToken), http.StatusNotFound, "not_found")
	requireProblem(t, open.do(t, http.MethodDelete, "/api/admin/allowlist/42", "", admin.AccessToken), http.StatusNotFound, "not_found")
	requireProblem(t, registerBeta("kim@invited.example"), http.StatusForbidden, "forbidden")
	rec = open.do(t, http.MethodGet, "/api/admin/allowlist", "", admin.AccessToken)
	require.Len(t, decode[httpapi.AllowlistJSON](t, rec).Items, 1)

	added := open.auditRows(t, account.ActionAllowlistAdded)
	require.Len(t, added, 2)
	require.Equal(t, admin.User.ID, added[0].actor)
	require.Equal(t, domainEntry.ID, added[0].targetID)
	require.Contains(t, added[0].metadata, `"pattern": "@invited.example"`)
	removed := open.auditRows(t, account.ActionAllowlistRemoved)
	require.Len(t, removed, 1)
	require.Equal(t, domainEntry.ID, removed[0].targetID)
}

func TestAdminAudit(t *testing.T) {
	t.Parallel()
	b := setupAuth(t, authOpts{wire: withAdmin(t)})
	admin := b.makeAdmin(t, "root@example.com") // register + login
	ann := b.register(t, "ann@example.com", goodPassword)
	require.Equal(t, http.StatusUnauthorized, b.login(t, "ann@example.com", "not the password!").Code)
	require.Equal(t, http.StatusUnauthorized, b.login(t, "ghost@example.com", "not the password!").Code)

	get := func(query string) httpapi.AdminAuditListJSON {
		rec := b.do(t, http.MethodGet, "/api/admin/audit"+query, "", admin.AccessToken)
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		require.Equal(t, "no-store", rec.Header().Get("Cache-Control"))
		return decode[httpapi.AdminAuditListJSON](t, rec)
	}

	all := get("")
	require.Len(t, all.Items, 5, "every user's events: 2 registers, 3 logins")
	require.Nil(t, all.NextCursor)
	actors := map[string]bool{}
	for _, e := range all.Items {
		if e.ActorID != nil {
			actors[*e.ActorID] = true
		} else {
			require.Equal(t, "login", e.Action, "the unknown email has no actor")
		}
	}
	require.Equal(t, map[string]bool{admin.User.ID: true, ann.User.ID: true}, actors)

	// Keyset pagination, newest first, without gaps or repeats.
	var seen []string
	cursor := ""
	for range 10 {
		q := "?limit=2"
		if cursor != "" {
			q += "&cursor=" + cursor
		}
		page := get(q)
		require.LessOrEqual(t, len(page.Items), 2)
		for _, e := range page.Items {
			seen = append(seen, e.ID)
		}
		if page.NextCursor == nil {
			break
		}
		cursor = *page.NextCursor
	}
	var want []string
	for _, e := range all.Items {
		want = append(want, e.ID)
	}
	require.Equal(t, want, seen)

	logins := get("?action=login")
	require.Len(t, logins.Items, 3)
	for _, e := range logins.Items {
		require.Equal(t, "login", e.Action)
	}
	require.Empty(t, get("?action=nothing_like_this").Items)

	for _, q := range []string{"?limit=0", "?limit=101", "?limit=x", "?cursor=bogus"} {
		requireProblem(t, b.do(t, http.MethodGet, "/api/admin/audit"+q, "", admin.AccessToken), http.StatusUnprocessableEntity, "invalid")
	}
}

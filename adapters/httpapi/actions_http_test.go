package httpapi_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/httpapi"
	"github.com/vigilhq/vigil/adapters/sendgrid"
)

func (b *monitorsBundle) action(t *testing.T, token, body string) httpapi.ActionJSON {
	t.Helper()
	rec := b.do(t, http.MethodPost, "/api/actions", body, token, nil)
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	return decode[httpapi.ActionJSON](t, rec)
}

func (b *monitorsBundle) actions(t *testing.T, token string) []httpapi.ActionJSON {
	t.Helper()
	rec := b.do(t, http.MethodGet, "/api/actions", "", token, nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	return decode[httpapi.ActionListJSON](t, rec).Actions
}

func TestRegistrationCreatesTheDefaultEmailAction(t *testing.T) {
	t.Parallel()
	b := setupMonitorsAPI(t)
	list := b.actions(t, b.ann)
	require.Len(t, list, 1)
	require.True(t, list[0].IsDefault)
	require.Equal(t, "email", list[0].Type)
	require.Equal(t, []string{"ann@example.com"}, list[0].Config.To)
	require.Nil(t, list[0].Secret)
}

func TestActionsCRUDAndIsolation(t *testing.T) {
	t.Parallel()
	b := setupMonitorsAPI(t)

	// Email to the account's own address needs no confirmation and sends none.
	own := b.action(t, b.ann, `{"type":"email","config":{"to":["ANN@example.com"]}}`)
	require.Equal(t, []string{"ann@example.com"}, own.Config.To)
	require.Equal(t, "Email ann@example.com", own.Name)
	require.True(t, own.Enabled)
	require.False(t, own.IsDefault)

	// A webhook gets a generated secret, shown once, stored encrypted.
	rec := b.do(t, http.MethodPost, "/api/actions", `{"name":"Hook","type":"webhook","config":{"url":"https://93.184.216.34/hook"}}`, b.ann, nil)
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	require.Equal(t, "no-store", rec.Header().Get("Cache-Control"))
	hook := decode[httpapi.ActionJSON](t, rec)
	require.NotNil(t, hook.Secret)
	require.True(t, strings.HasPrefix(*hook.Secret, "whsec_"), *hook.Secret)
	var stored string
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT config::text FROM actions WHERE id = $1`, hook.ID).Scan(&stored))
	require.NotContains(t, stored, strings.TrimPrefix(*hook.Secret, "whsec_"), "the secret is encrypted at rest")
	require.Contains(t, stored, `"secret": "v1:test:`)

	got := b.do(t, http.MethodGet, "/api/actions/"+hook.ID, "", b.ann, nil)
	require.Equal(t, http.StatusOK, got.Code)
	require.NotContains(t, got.Body.String(), "secret", "never shown again")

	// Rotating shows a new secret once; a plain update keeps it (and shows nothing).
	rec = b.do(t, http.MethodPatch, "/api/actions/"+hook.ID, `{"rotate_secret":true}`, b.ann, nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	rotated := decode[httpapi.ActionJSON](t, rec)
	require.NotNil(t, rotated.Secret)
	require.NotEqual(t, *hook.Secret, *rotated.Secret)
	var sealed string
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT config->>'secret' FROM actions WHERE id = $1`, hook.ID).Scan(&sealed))
	rec = b.do(t, http.MethodPatch, "/api/actions/"+hook.ID, `{"name":"Renamed","enabled":false}`, b.ann, nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	renamed := decode[httpapi.ActionJSON](t, rec)
	require.Equal(t, "Renamed", renamed.Name)
	require.False(t, renamed.Enabled)
	require.Nil(t, renamed.Secret)
	var sealedAfter string
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT config->>'secret' FROM actions WHERE id = $1`, hook.ID).Scan(&sealedAfter))
	require.Equal(t, sealed, sealedAfter, "an update without rotate_secret keeps the secret")

	require.Len(t, b.actions(t, b.ann), 3)

	// Bob sees none of Ann's actions: each is a 404, never a 403.
	require.Len(t, b.actions(t, b.bob), 1)
	for _, req := range []struct{ method, body string }{{http.MethodGet, ""}, {http.MethodPatch, `{"name":"x"}`}, {http.MethodDelete, ""}} {
		rec := b.do(t, req.method, "/api/actions/"+hook.ID, req.body, b.bob, nil)
		require.Equal(t, http.StatusNotFound, rec.Code, "%s: %s", req.method, rec.Body)
	}
	require.Equal(t, http.StatusNotFound, b.do(t, http.MethodGet, "/api/actions/not-a-uuid", "", b.ann, nil).Code)

	// Delete, then it is gone; audited all along.
	require.Equal(t, http.StatusNoContent, b.do(t, http.MethodDelete, "/api/actions/"+hook.ID, "", b.ann, nil).Code)
	require.Equal(t, http.StatusNotFound, b.do(t, http.MethodGet, "/api/actions/"+hook.ID, "", b.ann, nil).Code)
	for action, n := range map[string]int{"action_created": 2, "action_updated": 2, "action_deleted": 1} {
		require.Equal(t, n, b.count(t, `SELECT count(*) FROM audit_log WHERE actor_user_id = $1 AND target_type = 'action' AND action = $2`,
			b.annUserID, action), action)
	}
	rec = b.do(t, http.MethodGet, "/api/me/audit", "", b.ann, nil)
	require.Contains(t, rec.Body.String(), `"action_deleted"`)
	require.Equal(t, http.StatusUnauthorized, b.do(t, http.MethodGet, "/api/actions", "", "", nil).Code)
}

func TestActionValidation(t *testing.T) {
	t.Parallel()
	b := setupMonitorsAPI(t)
	eleven := make([]string, 11)
	for i := range eleven {
		eleven[i] = fmt.Sprintf("%q", fmt.Sprintf("r%d@example.com", i))
	}
	cases := []struct {
		body   string
		status int
		field  string
	}{
		{`{"config":{"to":["a@example.com"]}}`, http.StatusUnprocessableEntity, "type"},
		{`{"type":"email"}`, http.StatusUnprocessableEntity, "config"},
		{`{"type":"sms","config":{}}`, http.StatusUnprocessableEntity, "type"},
		{`{"type":"email","config":{}}`, http.StatusUnprocessableEntity, "config.to"},
		{`{"type":"email","config":{"to":[]}}`, http.StatusUnprocessableEntity, "config.to"},
		{`{"type":"email","config":{"to":[` + strings.Join(eleven, ",") + `]}}`, http.StatusUnprocessableEntity, "config.to"},
		{`{"type":"email","config":{"to":["not an address"]}}`, http.StatusUnprocessableEntity, "config.to[0]"},
		{`{"type":"email","config":{"to":["Ann <ann@example.com>"]}}`, http.StatusUnprocessableEntity, "config.to[0]"},
		{`{"type":"email","config":{"to":["a@example.com"],"url":"https://x.example"}}`, http.StatusUnprocessableEntity, "config.url"},
		{`{"type":"webhook","config":{}}`, http.StatusUnprocessableEntity, "config.url"},
		{`{"type":"webhook","config":{"url":"ftp://93.184.216.34/"}}`, http.StatusUnprocessableEntity, "config.url"},
		{`{"type":"webhook","config":{"url":"https://user:pw@93.184.216.34/"}}`, http.StatusUnprocessableEntity, "config.url"},
		{`{"type":"webhook","config":{"url":"https://93.184.216.34/","secret":"short"}}`, http.StatusUnprocessableEntity, "config.secret"},
		{`{"type":"webhook","config":{"url":"https://93.184.216.34/","to":["a@example.com"]}}`, http.StatusUnprocessableEntity, "config.to"},
		{`{"name":"` + strings.Repeat("n", 201) + `","type":"email","config":{"to":["a@example.com"]}}`, http.StatusUnprocessableEntity, "name"},
		// The SSRF guard: loopback, private and metadata targets are refused at creation.
		{`{"type":"webhook","config":{"url":"http://127.0.0.1:8080/hook"}}`, http.StatusUnprocessableEntity, "config.url"},
		{`{"type":"webhook","config":{"url":"http://localhost/hook"}}`, http.StatusUnprocessableEntity, "config.url"},
		{`{"type":"webhook","config":{"url":"http://10.1.2.3/hook"}}`, http.StatusUnprocessableEntity, "config.url"},
		{`{"type":"webhook","config":{"url":"http://169.254.169.254/latest/meta-data"}}`, http.StatusUnprocessableEntity, "config.url"},
		{`{"type":"webhook","config":{"url":"http://[::1]/hook"}}`, http.StatusUnprocessableEntity, "config.url"},
		{`{"type":"email","config":{"to":"a@example.com"}}`, http.StatusBadRequest, ""},
		{`{"type":"email","config":{"to":["a@example.com"]},"rotate_secret":true}`, http.StatusUnprocessableEntity, "rotate_secret"},
		{`{"type":"email","config":{"to":["a@example.com"]},"extra":1}`, http.StatusBadRequest, ""},
	}
	for _, tc := range cases {
		rec := b.do(t, http.MethodPost, "/api/actions", tc.body, b.ann, nil)
		require.Equal(t, tc.status, rec.Code, "%s: %s", tc.body, rec.Body)
		if tc.field != "" {
			fields := decodeString[httpapi.Problem](t, rec.Body.String()).Errors
			require.Contains(t, fields, tc.field, "%s: %s", tc.body, rec.Body)
		}
	}
	loopback := decodeString[httpapi.Problem](t,
		b.do(t, http.MethodPost, "/api/actions", `{"type":"webhook","config":{"url":"http://127.0.0.1/x"}}`, b.ann, nil).Body.String())
	require.Contains(t, loopback.Errors["config.url"], "private or local address")

	hook := b.action(t, b.ann, `{"type":"webhook","config":{"url":"https://93.184.216.34/hook","secret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}`)
	require.Equal(t, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", *hook.Secret, "a secret of the user's own is kept")
	for body, field := range map[string]string{
		`{"type":"email"}`:                       "type",
		`{"config":{"to":["a@example.com"]}}`:    "config.to",
		`{"config":{"url":"http://127.0.0.1/"}}`: "config.url",
		`{"rotate_secret":true,"config":{"secret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}`: "rotate_secret",
	} {
		rec := b.do(t, http.MethodPatch, "/api/actions/"+hook.ID, body, b.ann, nil)
		require.Equal(t, http.StatusUnprocessableEntity, rec.Code, "%s: %s", body, rec.Body)
		require.Contains(t, decodeString[httpapi.Problem](t, rec.Body.String()).Errors, field, body)
	}
}

func TestActionsPerUserLimit(t *testing.T) {
	t.Parallel()
	b := setupMonitorsAPI(t)
	_, err := b.pool.Exec(context.Background(), `
		INSERT INTO actions (user_id, name, type, config) SELECT $1, 'a' || i, 'email', '{"to":["ann@example.com"]}'
		FROM generate_series(1, 99) i`, b.annUserID)
	require.NoError(t, err)
	rec := b.do(t, http.MethodPost, "/api/actions", `{"type":"email","config":{"to":["ann@example.com"]}}`, b.ann, nil)
	require.Equal(t, http.StatusConflict, rec.Code, rec.Body.String())
	require.Contains(t, rec.Body.String(), "limit of 100 actions")
}

// TestOtherRecipientsConfirmFirst: an address other than the account's own gets one
// confirmation email and nothing else until its owner follows the link.
func TestOtherRecipientsConfirmFirst(t *testing.T) {
	t.Parallel()
	b := setupMonitorsAPI(t)
	a := b.action(t, b.ann, `{"type":"email","config":{"to":["ann@example.com","carol@example.com"]}}`)
	msgs := b.mail.WaitFor(t, 1, 10*time.Second)
	require.Equal(t, []string{"carol@example.com"}, msgs[0].To)
	require.Equal(t, "Confirm that you want Vigil notifications", msgs[0].Subject)
	require.Contains(t, msgs[0].Text, "ann@example.com")
	link := ""
	for _, line := range strings.Split(msgs[0].Text, "\n") {
		if strings.HasPrefix(line, "http://vigil.test/confirm-recipient?token=") {
			link = strings.TrimSpace(line)
		}
	}
	require.NotEmpty(t, link, msgs[0].Text)

	// Saving the action again does not mail the address again within a day.
	rec := b.do(t, http.MethodPatch, "/api/actions/"+a.ID, `{"config":{"to":["carol@example.com","ann@example.com"]}}`, b.ann, nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Equal(t, 0, b.count(t, `SELECT count(*) FROM email_recipients WHERE confirmed_at IS NOT NULL`))

	u, err := url.Parse(link)
	require.NoError(t, err)
	path := u.Path + "?" + u.RawQuery
	// GET only asks (mail scanners follow links); the page cannot be framed.
	rec = b.do(t, http.MethodGet, path, "", "", nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Contains(t, rec.Body.String(), "<form method=\"post\"")
	require.Contains(t, rec.Header().Get("Content-Security-Policy"), "frame-ancestors 'none'")
	require.Equal(t, 0, b.count(t, `SELECT count(*) FROM email_recipients WHERE confirmed_at IS NOT NULL`))
	// POST confirms.
	rec = b.do(t, http.MethodPost, path, "", "", nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Contains(t, rec.Body.String(), "Confirmed")
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM email_recipients WHERE user_id = $1 AND email = 'carol@example.com' AND confirmed_at IS NOT NULL`, b.annUserID))
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM audit_log WHERE actor_user_id = $1 AND action = 'recipient_confirmed'`, b.annUserID))

	// A forged or tampered token is a 400 page, not a confirmation.
	rec = b.do(t, http.MethodPost, "/confirm-recipient?token="+url.QueryEscape(u.Query().Get("token")+"x"), "", "", nil)
	require.Equal(t, http.StatusBadRequest, rec.Code)
	require.Contains(t, rec.Body.String(), "not valid")
	rec = b.do(t, http.MethodGet, "/confirm-recipient?token=nonsense", "", "", nil)
	require.Equal(t, http.StatusBadRequest, rec.Code)
	require.Len(t, b.mail.Messages(), 1, "no further email to the address")
}

func TestTriggersCRUDAndIsolation(t *testing.T) {
	t.Parallel()
	b := setupMonitorsAPI(t)
	body := fmt.Sprintf(`{"prompt":"Tell me when the price drops below $80","source_url":%q,"interval":"15m"}`, b.source.URL)

	// Without a triggers field, the monitor gets becomes_active / every_time to the
	// default email action.
	rec := b.do(t, http.MethodPost, "/api/monitors", body, b.ann, nil)
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	created := decode[httpapi.MonitorCreatedJSON](t, rec)
	def := b.actions(t, b.ann)[0]
	require.Len(t, created.Triggers, 1)
	require.Equal(t, def.ID, created.Triggers[0].ActionID)
	require.Equal(t, "becomes_active", created.Triggers[0].Condition)
	require.Equal(t, "every_time", created.Triggers[0].Frequency)
	require.Equal(t, "0s", created.Triggers[0].Cooldown)
	mon := created.ID

	// An explicit empty list means none.
	none := b.do(t, http.MethodPost, "/api/monitors", strings.Replace(body, `"interval"`, `"triggers":[],"interval"`, 1), b.ann, nil)
	require.Equal(t, http.StatusCreated, none.Code, none.Body.String())
	require.Empty(t, decode[httpapi.MonitorCreatedJSON](t, none).Triggers)

	hook := b.action(t, b.ann, `{"type":"webhook","config":{"url":"https://93.184.216.34/hook"}}`)
	rec = b.do(t, http.MethodPost, "/api/monitors/"+mon+"/triggers",
		fmt.Sprintf(`{"action_id":%q,"condition":"state_change","frequency":"once","cooldown":"30m"}`, hook.ID), b.ann, nil)
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	tr := decode[httpapi.TriggerJSON](t, rec)
	require.Equal(t, "/api/monitors/"+mon+"/triggers/"+tr.ID, rec.Header().Get("Location"))
	require.Equal(t, "30m", tr.Cooldown)
	require.Equal(t, "once", tr.Frequency)

	// A duplicate (monitor, action, condition) is a 409.
	rec = b.do(t, http.MethodPost, "/api/monitors/"+mon+"/triggers", fmt.Sprintf(`{"action_id":%q,"condition":"state_change"}`, hook.ID), b.ann, nil)
	require.Equal(t, http.StatusConflict, rec.Code, rec.Body.String())

	list := b.do(t, http.MethodGet, "/api/monitors/"+mon+"/triggers", "", b.ann, nil)
	require.Equal(t, http.StatusOK, list.Code)
	require.Len(t, decode[httpapi.TriggerListJSON](t, list).Triggers, 2)

	// A spent once trigger is re-armed by enabling it.
	_, err := b.pool.Exec(context.Background(), `UPDATE triggers SET enabled = false, fired_count = 1 WHERE id = $1`, tr.ID)
	require.NoError(t, err)
	rec = b.do(t, http.MethodPatch, "/api/monitors/"+mon+"/triggers/"+tr.ID, `{"enabled":true,"cooldown":"0"}`, b.ann, nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	patched := decode[httpapi.TriggerJSON](t, rec)
	require.True(t, patched.Enabled)
	require.Equal(t, "0s", patched.Cooldown)
	rec = b.do(t, http.MethodPatch, "/api/monitors/"+mon+"/triggers/"+tr.ID, `{"condition":"becomes_active","action_id":"`+def.ID+`"}`, b.ann, nil)
	require.Equal(t, http.StatusConflict, rec.Code, "moving onto an existing (action, condition): %s", rec.Body)

	// Bob: Ann's monitor and trigger are 404s, and so is a trigger naming Ann's action on
	// his own monitor.
	bobMon := b.create(t, b.bob, body)
	for _, req := range []struct{ method, path, body string }{
		{http.MethodGet, "/api/monitors/" + mon + "/triggers", ""},
		{http.MethodPost, "/api/monitors/" + mon + "/triggers", fmt.Sprintf(`{"action_id":%q,"condition":"becomes_inactive"}`, hook.ID)},
		{http.MethodGet, "/api/monitors/" + mon + "/triggers/" + tr.ID, ""},
		{http.MethodPatch, "/api/monitors/" + mon + "/triggers/" + tr.ID, `{"enabled":false}`},
		{http.MethodDelete, "/api/monitors/" + mon + "/triggers/" + tr.ID, ""},
		{http.MethodGet, "/api/monitors/" + bobMon.ID + "/triggers/" + tr.ID, ""},
		{http.MethodPost, "/api/monitors/" + bobMon.ID + "/triggers", fmt.Sprintf(`{"action_id":%q,"condition":"becomes_inactive"}`, hook.ID)},
	} {
		rec := b.do(t, req.method, req.path, req.body, b.bob, nil)
		require.Equal(t, http.StatusNotFound, rec.Code, "%s %s: %s", req.method, req.path, rec.Body)
	}
	rec = b.do(t, http.MethodPost, "/api/monitors", strings.Replace(body, `"interval"`,
		fmt.Sprintf(`"triggers":[{"action_id":%q,"condition":"state_change"}],"interval"`, hook.ID), 1), b.bob, nil)
	require.Equal(t, http.StatusNotFound, rec.Code, "a monitor created with another user's action: %s", rec.Body)
	require.Contains(t, decodeString[httpapi.Problem](t, rec.Body.String()).Errors, "triggers[0].action_id")
	rec = b.do(t, http.MethodPatch, "/api/monitors/"+bobMon.ID+"/triggers/"+bobTrigger(t, b, bobMon.ID), fmt.Sprintf(`{"action_id":%q}`, hook.ID), b.bob, nil)
	require.Equal(t, http.StatusNotFound, rec.Code, "moving a trigger onto another user's action: %s", rec.Body)

	// Validation names the field.
	for payload, field := range map[string]string{
		`{"condition":"state_change"}`:                                                            "action_id",
		fmt.Sprintf(`{"action_id":%q}`, hook.ID):                                                  "condition",
		fmt.Sprintf(`{"action_id":%q,"condition":"sometimes"}`, hook.ID):                          "condition",
		fmt.Sprintf(`{"action_id":%q,"condition":"state_change","frequency":"hourly"}`, hook.ID):  "frequency",
		fmt.Sprintf(`{"action_id":%q,"condition":"becomes_inactive","cooldown":"8d"}`, hook.ID):   "cooldown",
		fmt.Sprintf(`{"action_id":%q,"condition":"becomes_inactive","cooldown":"soon"}`, hook.ID): "cooldown",
	} {
		rec := b.do(t, http.MethodPost, "/api/monitors/"+mon+"/triggers", payload, b.ann, nil)
		require.Equal(t, http.StatusUnprocessableEntity, rec.Code, "%s: %s", payload, rec.Body)
		require.Contains(t, decodeString[httpapi.Problem](t, rec.Body.String()).Errors, field, payload)
	}
	rec = b.do(t, http.MethodPost, "/api/monitors", strings.Replace(body, `"interval"`, `"triggers":[{"condition":"state_change"}],"interval"`, 1), b.ann, nil)
	require.Equal(t, http.StatusUnprocessableEntity, rec.Code)
	require.Contains(t, decodeString[httpapi.Problem](t, rec.Body.String()).Errors, "triggers[0].action_id")
	rec = b.do(t, http.MethodPatch, "/api/monitors/"+mon, `{"triggers":[]}`, b.ann, nil)
	require.Equal(t, http.StatusUnprocessableEntity, rec.Code, rec.Body.String())

	// The detail shows the triggers; delete removes one; every change is audited.
	detail := decode[httpapi.MonitorDetailJSON](t, b.do(t, http.MethodGet, "/api/monitors/"+mon, "", b.ann, nil))
	require.Len(t, detail.Triggers, 2)
	require.Equal(t, http.StatusNoContent, b.do(t, http.MethodDelete, "/api/monitors/"+mon+"/triggers/"+tr.ID, "", b.ann, nil).Code)
	require.Equal(t, http.StatusNotFound, b.do(t, http.MethodGet, "/api/monitors/"+mon+"/triggers/"+tr.ID, "", b.ann, nil).Code)
	for action, n := range map[string]int{"monitor_created": 2, "trigger_created": 1, "trigger_updated": 1, "trigger_deleted": 1} {
		require.Equal(t, n, b.count(t, `SELECT count(*) FROM audit_log WHERE actor_user_id = $1 AND action = $2`, b.annUserID, action), action)
	}
	// Deleting the action takes its triggers with it.
	require.Equal(t, http.StatusNoContent, b.do(t, http.MethodDelete, "/api/actions/"+def.ID, "", b.ann, nil).Code)
	require.Equal(t, 0, b.count(t, `SELECT count(*) FROM triggers WHERE monitor_id = $1`, mon))
	// With no default action left, a new monitor starts without triggers.
	rec = b.do(t, http.MethodPost, "/api/monitors", body, b.ann, nil)
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	require.Empty(t, decode[httpapi.MonitorCreatedJSON](t, rec).Triggers)
}

func bobTrigger(t *testing.T, b *monitorsBundle, monitorID string) string {
	t.Helper()
	list := decode[httpapi.TriggerListJSON](t, b.do(t, http.MethodGet, "/api/monitors/"+monitorID+"/triggers", "", b.bob, nil)).Triggers
	require.NotEmpty(t, list)
	return list[0].ID
}

func TestResubscribeThroughPatchMe(t *testing.T) {
	t.Parallel()
	b := setupMonitorsAPI(t)
	_, err := b.pool.Exec(context.Background(), `UPDATE users SET unsubscribed_at = now() WHERE id = $1`, b.annUserID)
	require.NoError(t, err)
	me := decode[httpapi.UserJSON](t, b.do(t, http.MethodGet, "/api/me", "", b.ann, nil))
	require.NotNil(t, me.UnsubscribedAt)

	rec := b.do(t, http.MethodPatch, "/api/me", `{"notifications_enabled":true}`, b.ann, nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Nil(t, decode[httpapi.UserJSON](t, rec).UnsubscribedAt)
	require.Equal(t, 0, b.count(t, `SELECT count(*) FROM users WHERE id = $1 AND unsubscribed_at IS NOT NULL`, b.annUserID))
}

func TestActionTestSendsASample(t *testing.T) {
	t.Parallel()
	b := setupMonitorsAPI(t)
	a := b.action(t, b.ann, `{"name":"Team","type":"email","config":{"to":["ann@example.com","dan@example.com"]}}`)
	b.mail.WaitFor(t, 1, 10*time.Second) // dan's confirmation request

	rec := b.do(t, http.MethodPost, "/api/actions/"+a.ID+"/test", "", b.ann, nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	results := decode[httpapi.ActionTestJSON](t, rec).Results
	require.Len(t, results, 2)
	require.Equal(t, "ann@example.com", results[0].Recipient)
	require.Equal(t, "delivered", results[0].Outcome)
	require.Equal(t, 250, *results[0].Code)
	require.Equal(t, "dan@example.com", results[1].Recipient)
	require.Equal(t, "skipped", results[1].Outcome, "an unconfirmed address gets no sample either")
	msgs := b.mail.WaitFor(t, 2, 10*time.Second)
	require.Len(t, msgs, 2)
	require.Equal(t, []string{"ann@example.com"}, msgs[1].To)
	require.Contains(t, msgs[1].Text, "test notification")

	// The relay refusing the sample is reported, not hidden.
	b.mail.RejectNext(550, "5.1.1 mailbox unavailable")
	rec = b.do(t, http.MethodPost, "/api/actions/"+a.ID+"/test", "", b.ann, nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	results = decode[httpapi.ActionTestJSON](t, rec).Results
	require.Equal(t, "failed", results[0].Outcome)
	require.Equal(t, 550, *results[0].Code)
	require.Contains(t, results[0].Detail, "mailbox unavailable")
	require.Equal(t, 0, b.count(t, `SELECT count(*) FROM email_suppressions`), "a test suppresses nothing")

	// A webhook whose URL now resolves to a private address is refused before any request.
	hook := b.action(t, b.ann, `{"type":"webhook","config":{"url":"https://93.184.216.34/hook"}}`)
	_, err := b.pool.Exec(context.Background(), `UPDATE actions SET config = jsonb_set(config, '{url}', '"http://127.0.0.1:9/hook"') WHERE id = $1`, hook.ID)
	require.NoError(t, err)
	rec = b.do(t, http.MethodPost, "/api/actions/"+hook.ID+"/test", "", b.ann, nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	results = decode[httpapi.ActionTestJSON](t, rec).Results
	require.Equal(t, "failed", results[0].Outcome)
	require.Contains(t, results[0].Detail, "private or local address")

	require.Equal(t, http.StatusNotFound, b.do(t, http.MethodPost, "/api/actions/"+a.ID+"/test", "", b.bob, nil).Code)
}

// TestNotificationsAPI: the delivery status of a notification, with its attempts, filters
// and pages, a resend, and isolation between users.
func TestNotificationsAPI(t *testing.T) {
	t.Parallel()
	b := setupMonitorsAPI(t)
	ctx := context.Background()
	mon := b.create(t, b.ann, fmt.Sprintf(`{"prompt":"Tell me when the price drops below $80","source_url":%q,"interval":"15m"}`, b.source.URL))
	// Three notifications of Ann's monitor, as the matcher and mailer leave them.
	var ids []string
	for i, status := range []string{"failed", "sent", "pending"} {
		var id string
		require.NoError(t, b.pool.QueryRow(ctx, `
			INSERT INTO notifications (user_id, monitor_id, channel, recipient, from_state, to_state, status, attempts, last_error, created_at)
			VALUES ($1, $2, 'email', 'ann@example.com', 'inactive', 'active', $3, $4, NULLIF($5, ''), now() - make_interval(mins => $6))
			RETURNING id`, b.annUserID, mon.ID, status, map[string]int{"failed": 2, "sent": 1, "pending": 0}[status],
			map[string]string{"failed": "The mail server rejected the message (SMTP 550)."}[status], 10-i).Scan(&id))
		ids = append(ids, id)
	}
	_, err := b.pool.Exec(ctx, `
		INSERT INTO notification_attempts (notification_id, attempt, started_at, finished_at, outcome, code, detail) VALUES
		($1, 1, now(), now(), 'retry', 451, 'deferred'), ($1, 2, now(), now(), 'failed', 550, 'no such user')`, ids[0])
	require.NoError(t, err)

	rec := b.do(t, http.MethodGet, "/api/notifications?limit=2", "", b.ann, nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	page := decode[httpapi.NotificationListJSON](t, rec)
	require.Len(t, page.Notifications, 2)
	require.Equal(t, ids[2], page.Notifications[0].ID, "newest first")
	require.NotNil(t, page.NextCursor)
	rec = b.do(t, http.MethodGet, "/api/notifications?limit=2&cursor="+*page.NextCursor, "", b.ann, nil)
	page = decode[httpapi.NotificationListJSON](t, rec)
	require.Len(t, page.Notifications, 1)
	require.Equal(t, ids[0], page.Notifications[0].ID)
	require.Nil(t, page.NextCursor)

	for query, want := range map[string]int{
		"status=failed": 1, "status=sent": 1, "channel=webhook": 0, "channel=email": 3,
		"monitor_id=" + mon.ID: 3, "monitor_id=" + ids[0]: 0, "monitor_id=nonsense": 0,
		// Half a minute from the notifications (10, 9 and 8 minutes old): RFC 3339 drops the
		// fraction of the second, which must not move the bound past one of them.
		"from=" + url.QueryEscape(time.Now().Add(-9*time.Minute-30*time.Second).UTC().Format(time.RFC3339)): 2,
		"to=" + url.QueryEscape(time.Now().Add(-9*time.Minute-30*time.Second).UTC().Format(time.RFC3339)):   1,
	} {
		rec := b.do(t, http.MethodGet, "/api/notifications?"+query, "", b.ann, nil)
		require.Equal(t, http.StatusOK, rec.Code, "%s: %s", query, rec.Body)
		require.Len(t, decode[httpapi.NotificationListJSON](t, rec).Notifications, want, query)
	}
	for query, field := range map[string]string{"status=lost": "status", "channel=sms": "channel", "from=yesterday": "from",
		"limit=0": "limit", "cursor=%21": "cursor"} {
		rec := b.do(t, http.MethodGet, "/api/notifications?"+query, "", b.ann, nil)
		require.Equal(t, http.StatusUnprocessableEntity, rec.Code, query)
		require.Contains(t, decodeString[httpapi.Problem](t, rec.Body.String()).Errors, field, query)
	}

	// One notification with every attempt.
	rec = b.do(t, http.MethodGet, "/api/notifications/"+ids[0], "", b.ann, nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	n := decode[httpapi.NotificationJSON](t, rec)
	require.Equal(t, "failed", n.Status)
	require.Len(t, n.History, 2)
	require.Equal(t, 451, *n.History[0].Code)
	require.Equal(t, "failed", n.History[1].Outcome)
	require.Equal(t, "no such user", n.History[1].Detail)

	// Resend a failed one: owed again, requested through the outbox.
	rec = b.do(t, http.MethodPost, "/api/notifications/"+ids[0]+"/resend", "", b.ann, nil)
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	n = decode[httpapi.NotificationJSON](t, rec)
	require.Equal(t, "pending", n.Status)
	require.Nil(t, n.LastError)
	require.NotNil(t, n.NextAttemptAt)
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM outbox WHERE type = 'vigil.notification.requested.v1' AND event_id LIKE $1`, "notification:"+ids[0]+":3:%"))
	// A notification still owed cannot be resent.
	rec = b.do(t, http.MethodPost, "/api/notifications/"+ids[2]+"/resend", "", b.ann, nil)
	require.Equal(t, http.StatusConflict, rec.Code, rec.Body.String())

	// Bob sees none of it.
	require.Empty(t, decode[httpapi.NotificationListJSON](t, b.do(t, http.MethodGet, "/api/notifications", "", b.bob, nil)).Notifications)
	for _, path := range []string{"/api/notifications/" + ids[1], "/api/notifications/nonsense"} {
		require.Equal(t, http.StatusNotFound, b.do(t, http.MethodGet, path, "", b.bob, nil).Code, path)
	}
	require.Equal(t, http.StatusNotFound, b.do(t, http.MethodPost, "/api/notifications/"+ids[1]+"/resend", "", b.bob, nil).Code)
	require.Equal(t, http.StatusUnauthorized, b.do(t, http.MethodGet, "/api/notifications", "", "", nil).Code)
}

func TestMonitorConfirmSetting(t *testing.T) {
	t.Parallel()
	b := setupMonitorsAPI(t)
	body := fmt.Sprintf(`{"prompt":"Tell me when the price drops below $80","source_url":%q,"confirm":3}`, b.source.URL)
	m := b.create(t, b.ann, body)
	require.Equal(t, 3, m.Confirm)
	require.Equal(t, 1, b.create(t, b.ann, fmt.Sprintf(`{"prompt":"price below 70","source_url":%q}`, b.source.URL)).Confirm, "default 1")
	rec := b.do(t, http.MethodPatch, "/api/monitors/"+m.ID, `{"confirm":2}`, b.ann, nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Equal(t, 2, decode[httpapi.MonitorJSON](t, rec).Confirm)
	for _, bad := range []string{`{"confirm":0}`, `{"confirm":11}`, `{"confirm":-1}`} {
		rec := b.do(t, http.MethodPatch, "/api/monitors/"+m.ID, bad, b.ann, nil)
		require.Equal(t, http.StatusUnprocessableEntity, rec.Code, bad)
		require.Contains(t, decodeString[httpapi.Problem](t, rec.Body.String()).Errors, "confirm", bad)
	}
	rec = b.do(t, http.MethodPost, "/api/monitors", strings.Replace(body, `"confirm":3`, `"confirm":0`, 1), b.ann, nil)
	require.Equal(t, http.StatusUnprocessableEntity, rec.Code, rec.Body.String())
}

// signEvents signs a SendGrid event body as SendGrid does: ECDSA P-256 over the timestamp
// followed by the body.
func (b *monitorsBundle) signEvents(t *testing.T, body string, at time.Time) map[string]string {
	t.Helper()
	ts := strconv.FormatInt(at.Unix(), 10)
	digest := sha256.Sum256([]byte(ts + body))
	sig, err := ecdsa.SignASN1(rand.Reader, b.eventKey, digest[:])
	require.NoError(t, err)
	return map[string]string{sendgrid.HeaderSignature: base64.StdEncoding.EncodeToString(sig), sendgrid.HeaderTimestamp: ts}
}

func TestEmailEventsWebhook(t *testing.T) {
	t.Parallel()
	b := setupMonitorsAPI(t)
	ctx := context.Background()
	mon := b.create(t, b.ann, fmt.Sprintf(`{"prompt":"Tell me when the price drops below $80","source_url":%q}`, b.source.URL))
	ids := map[string]string{}
	for _, to := range []string{"ann@example.com", "carol@example.com", "dan@example.com"} {
		var id string
		require.NoError(t, b.pool.QueryRow(ctx, `
			INSERT INTO notifications (user_id, monitor_id, recipient, from_state, to_state, status)
			VALUES ($1, $2, $3, 'inactive', 'active', 'sent') RETURNING id`, b.annUserID, mon.ID, to).Scan(&id))
		ids[to] = id
	}
	body := fmt.Sprintf(`[
		{"email":"ann@example.com","event":"delivered","timestamp":1764590000,"smtp-id":"<%s@vigil>"},
		{"email":"carol@example.com","event":"bounce","reason":"550 5.1.1 no such user","timestamp":1764590001,"smtp-id":"<%s@vigil>"},
		{"email":"dan@example.com","event":"spamreport","timestamp":1764590002,"smtp-id":"<%s@vigil>"},
		{"email":"erin@example.com","event":"dropped","reason":"Bounced Address","timestamp":1764590003},
		{"email":"ann@example.com","event":"open","timestamp":1764590004}
	]`, ids["ann@example.com"], ids["carol@example.com"], ids["dan@example.com"])

	rec := b.do(t, http.MethodPost, "/api/webhooks/email-events", body, "", b.signEvents(t, body, time.Now()))
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.JSONEq(t, `{"received":5,"applied":4}`, rec.Body.String())
	for to, status := range map[string]string{"ann@example.com": "delivered", "carol@example.com": "bounced", "dan@example.com": "complained"} {
		require.Equal(t, 1, b.count(t, `SELECT count(*) FROM notifications WHERE id = $1 AND status = $2`, ids[to], status), to)
	}
	for email, reason := range map[string]string{"carol@example.com": "bounce", "dan@example.com": "complaint", "erin@example.com": "bounce"} {
		require.Equal(t, 1, b.count(t, `SELECT count(*) FROM email_suppressions WHERE email = $1 AND reason = $2`, email, reason), email)
	}
	require.Equal(t, 0, b.count(t, `SELECT count(*) FROM email_suppressions WHERE email = 'ann@example.com'`))
	// The same events again change nothing more (a bounced notification stays bounced).
	rec = b.do(t, http.MethodPost, "/api/webhooks/email-events", body, "", b.signEvents(t, body, time.Now()))
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, 3, b.count(t, `SELECT count(*) FROM email_suppressions`))

	// Not SendGrid's: forged, tampered, stale, or unsigned; and a body that is not events.
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	forged := &monitorsBundle{eventKey: other}
	for name, headers := range map[string]map[string]string{
		"another key": forged.signEvents(t, body, time.Now()),
		"stale":       b.signEvents(t, body, time.Now().Add(-time.Hour)),
		"unsigned":    nil,
	} {
		rec := b.do(t, http.MethodPost, "/api/webhooks/email-events", body, "", headers)
		require.Equal(t, http.StatusUnauthorized, rec.Code, name)
	}
	tampered := b.signEvents(t, body, time.Now())
	rec = b.do(t, http.MethodPost, "/api/webhooks/email-events", strings.Replace(body, "erin", "frank", 1), "", tampered)
	require.Equal(t, http.StatusUnauthorized, rec.Code)
	require.Equal(t, 0, b.count(t, `SELECT count(*) FROM email_suppressions WHERE email = 'frank@example.com'`))
	notEvents := `{"email":"x@example.com"}`
	rec = b.do(t, http.MethodPost, "/api/webhooks/email-events", notEvents, "", b.signEvents(t, notEvents, time.Now()))
	require.Equal(t, http.StatusUnprocessableEntity, rec.Code)
}

func TestAdminSuppressions(t *testing.T) {
	t.Parallel()
	b := setupMonitorsAPI(t)
	ctx := context.Background()
	_, err := b.pool.Exec(ctx, `INSERT INTO email_suppressions (email, reason, detail) VALUES
		('a@example.com', 'bounce', '550'), ('b@example.com', 'complaint', NULL), ('c@other.example', 'unsubscribe', 'one-click link')`)
	require.NoError(t, err)
	require.Equal(t, http.StatusForbidden, b.do(t, http.MethodGet, "/api/admin/suppressions", "", b.ann, nil).Code)
	_, err = b.pool.Exec(ctx, `UPDATE users SET role = 'admin' WHERE id = $1`, b.annUserID)
	require.NoError(t, err)
	rec := b.do(t, http.MethodPost, "/api/auth/login", fmt.Sprintf(`{"email":"ann@example.com","password":%q}`, goodPassword), "", nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	admin := decode[httpapi.TokenResponse](t, rec).AccessToken

	rec = b.do(t, http.MethodGet, "/api/admin/suppressions?limit=2", "", admin, nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	page := decode[httpapi.SuppressionListJSON](t, rec)
	require.Len(t, page.Suppressions, 2)
	require.Equal(t, "a@example.com", page.Suppressions[0].Email)
	require.Equal(t, "b@example.com", *page.NextAfter)
	page = decode[httpapi.SuppressionListJSON](t, b.do(t, http.MethodGet, "/api/admin/suppressions?after=b@example.com", "", admin, nil))
	require.Len(t, page.Suppressions, 1)
	require.Nil(t, page.NextAfter)
	page = decode[httpapi.SuppressionListJSON](t, b.do(t, http.MethodGet, "/api/admin/suppressions?q=other", "", admin, nil))
	require.Len(t, page.Suppressions, 1)
	require.Equal(t, "unsubscribe", page.Suppressions[0].Reason)

	require.Equal(t, http.StatusNoContent, b.do(t, http.MethodDelete, "/api/admin/suppressions/A@example.com", "", admin, nil).Code)
	require.Equal(t, http.StatusNotFound, b.do(t, http.MethodDelete, "/api/admin/suppressions/a@example.com", "", admin, nil).Code)
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM audit_log WHERE action = 'suppression_removed' AND target_id = 'a@example.com'`))
	require.Equal(t, http.StatusForbidden, b.do(t, http.MethodDelete, "/api/admin/suppressions/b@example.com", "", b.bob, nil).Code)
}

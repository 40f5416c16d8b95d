package action_test

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/action"
)

var now = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func TestNewEmail(t *testing.T) {
	t.Parallel()
	a, err := action.New("a1", action.Draft{UserID: "u", Type: action.TypeEmail,
		Recipients: []string{" Ann@Example.com ", "bob@example.com", "ann@example.com"}}, now)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(a.Recipients, ",") != "ann@example.com,bob@example.com" {
		t.Fatalf("recipients = %v: lower-cased, trimmed, de-duplicated", a.Recipients)
	}
	if a.Name != "Email ann@example.com" || !a.Enabled || a.Secret != "" {
		t.Fatalf("defaults: %+v", a)
	}
	if got := a.OtherRecipients("ANN@example.com"); len(got) != 1 || got[0] != "bob@example.com" {
		t.Fatalf("other recipients = %v", got)
	}
}

func TestNewWebhookSecret(t *testing.T) {
	t.Parallel()
	a, err := action.New("a1", action.Draft{UserID: "u", Type: action.TypeWebhook, URL: "https://hooks.example.com/x"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(a.Secret, action.SecretPrefix) || len(action.SecretKey(a.Secret)) != 32 {
		t.Fatalf("generated secret %q: want whsec_ and 32 random bytes", a.Secret)
	}
	if a.Name != "Webhook to hooks.example.com" {
		t.Fatalf("name = %q", a.Name)
	}
	b, _ := action.New("a2", action.Draft{UserID: "u", Type: action.TypeWebhook, URL: "https://hooks.example.com/x"}, now)
	if b.Secret == a.Secret {
		t.Fatal("two generated secrets are equal")
	}
	own := action.SecretPrefix + base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k", 24)))
	c, err := action.New("a3", action.Draft{UserID: "u", Type: action.TypeWebhook, URL: "http://x.example", Secret: own}, now)
	if err != nil || c.Secret != own {
		t.Fatalf("own secret: %v %q", err, c.Secret)
	}
}

func TestNewInvalid(t *testing.T) {
	t.Parallel()
	eleven := make([]string, 11)
	for i := range eleven {
		eleven[i] = "r" + strings.Repeat("x", i) + "@example.com"
	}
	for name, tc := range map[string]struct {
		d     action.Draft
		field string
	}{
		"no type":          {action.Draft{}, "type"},
		"no recipients":    {action.Draft{Type: action.TypeEmail}, "config.to"},
		"eleven":           {action.Draft{Type: action.TypeEmail, Recipients: eleven}, "config.to"},
		"bad address":      {action.Draft{Type: action.TypeEmail, Recipients: []string{"a@b.c", "nope"}}, "config.to[1]"},
		"display name":     {action.Draft{Type: action.TypeEmail, Recipients: []string{"Ann <a@b.c>"}}, "config.to[0]"},
		"url on email":     {action.Draft{Type: action.TypeEmail, Recipients: []string{"a@b.c"}, URL: "http://x"}, "config.url"},
		"no url":           {action.Draft{Type: action.TypeWebhook}, "config.url"},
		"relative url":     {action.Draft{Type: action.TypeWebhook, URL: "/hook"}, "config.url"},
		"javascript":       {action.Draft{Type: action.TypeWebhook, URL: "javascript:alert(1)"}, "config.url"},
		"credentials":      {action.Draft{Type: action.TypeWebhook, URL: "https://u:p@x.example/"}, "config.url"},
		"fragment":         {action.Draft{Type: action.TypeWebhook, URL: "https://x.example/#a"}, "config.url"},
		"long url":         {action.Draft{Type: action.TypeWebhook, URL: "https://x.example/" + strings.Repeat("a", 2048)}, "config.url"},
		"weak secret":      {action.Draft{Type: action.TypeWebhook, URL: "https://x.example/", Secret: "whsec_c2hvcnQ="}, "config.secret"},
		"recipients on wh": {action.Draft{Type: action.TypeWebhook, URL: "https://x.example/", Recipients: []string{}}, "config.to"},
		"long name":        {action.Draft{Type: action.TypeEmail, Recipients: []string{"a@b.c"}, Name: strings.Repeat("n", 201)}, "name"},
	} {
		_, err := action.New("a", tc.d, now)
		var de *domain.Error
		if !errorAs(err, &de) || de.Code != domain.EINVALID || de.Fields[tc.field] == "" {
			t.Errorf("%s: %v, want EINVALID naming %s", name, err, tc.field)
		}
	}
}

func TestApply(t *testing.T) {
	t.Parallel()
	a, err := action.New("a1", action.Draft{UserID: "u", Type: action.TypeWebhook, URL: "https://x.example/"}, now)
	if err != nil {
		t.Fatal(err)
	}
	a.Secret = "" // as loaded from storage
	later := now.Add(time.Hour)
	name := "Ops"
	changed, err := a.Apply(action.Changes{Name: &name}, later)
	if err != nil || changed || a.Name != "Ops" || a.Secret != "" || !a.UpdatedAt.Equal(later) {
		t.Fatalf("rename: %v %v %+v", changed, err, a)
	}
	changed, err = a.Apply(action.Changes{RotateSecret: true}, later)
	if err != nil || !changed || !strings.HasPrefix(a.Secret, action.SecretPrefix) {
		t.Fatalf("rotate: %v %v %q", changed, err, a.Secret)
	}
	a.Enabled, a.DisabledReason = false, "The endpoint answered 410 Gone."
	on := true
	if _, err := a.Apply(action.Changes{Enabled: &on}, later); err != nil || !a.Enabled || a.DisabledReason != "" {
		t.Fatalf("enabling must clear why Vigil turned it off: %v %+v", err, a)
	}
	to := []string{"a@b.c"}
	if _, err := a.Apply(action.Changes{Recipients: &to}, later); err == nil {
		t.Fatal("recipients on a webhook accepted")
	}
	e, _ := action.New("e1", action.Draft{UserID: "u", Type: action.TypeEmail, Recipients: []string{"a@b.c"}}, now)
	if _, err := e.Apply(action.Changes{RotateSecret: true}, later); err == nil {
		t.Fatal("rotate_secret on an email action accepted")
	}
	empty := []string{}
	if _, err := e.Apply(action.Changes{Recipients: &empty}, later); err == nil {
		t.Fatal("an email action without recipients accepted")
	}
}

func errorAs(err error, target **domain.Error) bool {
	de, ok := err.(*domain.Error)
	if ok {
		*target = de
	}
	return ok
}

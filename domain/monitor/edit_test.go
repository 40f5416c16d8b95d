package monitor_test

import (
	"testing"
	"time"

	"github.com/vigilhq/vigil/domain/monitor"
)

func ptr[T any](v T) *T { return &v }

func TestEdit(t *testing.T) {
	t.Parallel()
	created := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	now := created.Add(time.Hour)
	base := func() *monitor.Monitor {
		m := monitor.New("m1", monitor.Draft{UserID: "u", Name: "Widget", Prompt: "price below 80", SourceURL: "https://a.example/x", Interval: time.Hour},
			monitor.Spec{Summary: "price below 80", Kind: monitor.KindCurrentState}, monitor.ClassifiedBy{Provider: "fallback"}, created)
		m.State, m.NextRunAt = monitor.StateActive, created.Add(2*time.Hour)
		return m
	}

	m := base()
	c := monitor.Changes{Name: ptr("Cheap widget")}
	if m.NeedsClassification(c) {
		t.Fatal("a new name needs no classification")
	}
	if err := m.Edit(m.Draft(c), c, nil, monitor.ClassifiedBy{}, now); err != nil {
		t.Fatal(err)
	}
	if m.Name != "Cheap widget" || m.Version != 2 || m.State != monitor.StateActive || !m.NextRunAt.Equal(created.Add(2*time.Hour)) {
		t.Fatalf("rename: %+v", m)
	}

	m = base()
	c = monitor.Changes{Prompt: ptr("price below 70")}
	if !m.NeedsClassification(c) {
		t.Fatal("a new prompt needs classification")
	}
	spec := monitor.Spec{Summary: "price below 70", Kind: monitor.KindCurrentState}
	if err := m.Edit(m.Draft(c), c, &spec, monitor.ClassifiedBy{Provider: "claude"}, now); err != nil {
		t.Fatal(err)
	}
	if m.Spec.Summary != "price below 70" || m.State != monitor.StateUnknown || !m.NextRunAt.Equal(now) || m.ClassifiedBy.Provider != "claude" || m.Name != "Widget" {
		t.Fatalf("new prompt: %+v", m)
	}

	m = base()
	m.Name = "price below 80" // named after its summary
	c = monitor.Changes{Prompt: ptr("price below 70")}
	if err := m.Edit(m.Draft(c), c, &spec, monitor.ClassifiedBy{}, now); err != nil || m.Name != "price below 70" {
		t.Fatalf("a name taken from the summary follows it: %q %v", m.Name, err)
	}

	m = base()
	m.Status, m.ConsecutiveFailures, m.LastError = monitor.StatusError, 5, "502"
	c = monitor.Changes{Status: ptr(monitor.StatusActive)}
	if err := m.Edit(m.Draft(c), c, nil, monitor.ClassifiedBy{}, now); err != nil {
		t.Fatal(err)
	}
	if m.Status != monitor.StatusActive || m.ConsecutiveFailures != 0 || m.LastError != "" || !m.NextRunAt.Equal(now) {
		t.Fatalf("resume: %+v", m)
	}
	c = monitor.Changes{Status: ptr(monitor.StatusError)}
	if err := m.Edit(m.Draft(c), c, nil, monitor.ClassifiedBy{}, now); err == nil {
		t.Fatal("users must not set status error")
	}

	m = base()
	c = monitor.Changes{Cron: ptr("0 9 * * *"), Timezone: ptr("Europe/Paris")}
	d := m.Draft(c)
	if err := d.Validate(time.Minute); err != nil {
		t.Fatalf("switch to cron: %v", err)
	}
	if err := m.Edit(d, c, nil, monitor.ClassifiedBy{}, now); err != nil {
		t.Fatal(err)
	}
	if m.Cron != "0 9 * * *" || m.Interval != 24*time.Hour || !m.NextRunAt.Equal(now) {
		t.Fatalf("cron: %+v", m)
	}
	c = monitor.Changes{Interval: ptr(30 * time.Minute)}
	if err := m.Edit(m.Draft(c), c, nil, monitor.ClassifiedBy{}, now); err != nil || m.Cron != "" || m.Interval != 30*time.Minute {
		t.Fatalf("back to an interval: %+v %v", m, err)
	}
}

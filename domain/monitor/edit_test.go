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
	if _, err := m.Edit(m.Draft(c), c, nil, monitor.ClassifiedBy{}, now); err != nil {
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
	if _, err := m.Edit(m.Draft(c), c, &spec, monitor.ClassifiedBy{Provider: "claude"}, now); err != nil {
		t.Fatal(err)
	}
	if m.Spec.Summary != "price below 70" || m.State != monitor.StateUnknown || !m.NextRunAt.Equal(now) || m.ClassifiedBy.Provider != "claude" || m.Name != "Widget" {
		t.Fatalf("new prompt: %+v", m)
	}

	m = base()
	m.Name = "price below 80" // named after its summary
	c = monitor.Changes{Prompt: ptr("price below 70")}
	if _, err := m.Edit(m.Draft(c), c, &spec, monitor.ClassifiedBy{}, now); err != nil || m.Name != "price below 70" {
		t.Fatalf("a name taken from the summary follows it: %q %v", m.Name, err)
	}

	m = base()
	m.Status, m.ConsecutiveFailures, m.LastError = monitor.StatusError, 5, "502"
	c = monitor.Changes{Status: ptr(monitor.StatusActive)}
	if _, err := m.Edit(m.Draft(c), c, nil, monitor.ClassifiedBy{}, now); err != nil {
		t.Fatal(err)
	}
	if m.Status != monitor.StatusActive || m.ConsecutiveFailures != 0 || m.LastError != "" || !m.NextRunAt.Equal(now) {
		t.Fatalf("resume: %+v", m)
	}
	c = monitor.Changes{Status: ptr(monitor.StatusError)}
	if _, err := m.Edit(m.Draft(c), c, nil, monitor.ClassifiedBy{}, now); err == nil {
		t.Fatal("users must not set status error")
	}

	m = base()
	c = monitor.Changes{Cron: ptr("0 9 * * *"), Timezone: ptr("Europe/Paris")}
	d := m.Draft(c)
	if err := d.Validate(time.Minute); err != nil {
		t.Fatalf("switch to cron: %v", err)
	}
	if _, err := m.Edit(d, c, nil, monitor.ClassifiedBy{}, now); err != nil {
		t.Fatal(err)
	}
	if m.Cron != "0 9 * * *" || m.Interval != 24*time.Hour || !m.NextRunAt.Equal(now) {
		t.Fatalf("cron: %+v", m)
	}
	c = monitor.Changes{Interval: ptr(30 * time.Minute)}
	if _, err := m.Edit(m.Draft(c), c, nil, monitor.ClassifiedBy{}, now); err != nil || m.Cron != "" || m.Interval != 30*time.Minute {
		t.Fatalf("back to an interval: %+v %v", m, err)
	}
}

// TestEditReportsPipelineFields: an edit names the pipeline-owned fields it changed, so the
// store writes only those and never puts back a state or schedule it read earlier.
func TestEditReportsPipelineFields(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 1, 13, 0, 0, 0, time.UTC)
	spec := monitor.Spec{Summary: "price below 70", Kind: monitor.KindCurrentState}
	for _, tc := range []struct {
		name   string
		status monitor.Status
		c      monitor.Changes
		spec   *monitor.Spec
		want   monitor.Edited
	}{
		{name: "rename", status: monitor.StatusActive, c: monitor.Changes{Name: ptr("Cheap")}},
		{name: "same status again", status: monitor.StatusActive, c: monitor.Changes{Status: ptr(monitor.StatusActive)}},
		{name: "pause", status: monitor.StatusActive, c: monitor.Changes{Status: ptr(monitor.StatusPaused)}, want: monitor.Edited{SetStatus: true}},
		{name: "resume", status: monitor.StatusError, c: monitor.Changes{Status: ptr(monitor.StatusActive)},
			want: monitor.Edited{SetStatus: true, ClearFailures: true, RunNow: true}},
		{name: "new schedule", status: monitor.StatusActive, c: monitor.Changes{Interval: ptr(30 * time.Minute)}, want: monitor.Edited{RunNow: true}},
		{name: "new prompt", status: monitor.StatusActive, c: monitor.Changes{Prompt: ptr("price below 70")}, spec: &spec,
			want: monitor.Edited{ResetState: true, RunNow: true, ClearRepair: true}},
		{name: "read in a browser", status: monitor.StatusActive, c: monitor.Changes{Render: ptr(true)},
			want: monitor.Edited{RunNow: true, ClearRepair: true}},
		{name: "new selector", status: monitor.StatusActive, c: monitor.Changes{Selectors: ptr(map[string]string{"": "span.price"})},
			want: monitor.Edited{RunNow: true, ClearRepair: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := monitor.New("m1", monitor.Draft{UserID: "u", Prompt: "price below 80", Interval: time.Hour},
				monitor.Spec{Summary: "price below 80", Kind: monitor.KindCurrentState,
					Facts: []monitor.FactSpec{{Name: "price", Type: monitor.FactNumber}}}, monitor.ClassifiedBy{}, now.Add(-time.Hour))
			m.Status = tc.status
			m.ExtractionMisses, m.Repair = 2, &monitor.Repair{Fact: "price"}
			got, err := m.Edit(m.Draft(tc.c), tc.c, tc.spec, monitor.ClassifiedBy{}, now)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("Edited = %+v, want %+v", got, tc.want)
			}
			if settled := m.ExtractionMisses == 0 && m.Repair == nil; settled != tc.want.ClearRepair {
				t.Fatalf("misses %d, repair %v after an edit with ClearRepair %t", m.ExtractionMisses, m.Repair, tc.want.ClearRepair)
			}
			if moved := m.ExtractionVersion == m.Version; moved != tc.want.ClearRepair {
				t.Fatalf("extraction version %d at version %d after an edit with ClearRepair %t", m.ExtractionVersion, m.Version, tc.want.ClearRepair)
			}
		})
	}
}

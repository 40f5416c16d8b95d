package streams_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/domain/event"
	"github.com/vigilhq/vigil/streams"
)

func TestSubject(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	change := event.MonitorChange{ID: "e1", MonitorID: "m1", At: at}
	tests := []struct {
		ev   event.Event
		want string
	}{
		{event.MonitorCreated{MonitorChange: change}, "vigil.monitors.m1.created"},
		{event.MonitorUpdated{MonitorChange: change}, "vigil.monitors.m1.updated"},
		{event.MonitorDeleted{MonitorChange: change}, "vigil.monitors.m1.deleted"},
		{event.EvaluationDue{MonitorID: "m1", ScheduledFor: at}, "vigil.evaluations.due.m1"},
		{event.EvaluationCompleted{MonitorID: "m1", ScheduledFor: at}, "vigil.evaluations.completed.m1"},
		{event.StateChanged{MonitorID: "m1", EvaluationID: "ev1"}, "vigil.states.changed.m1"},
		{event.NotificationRequested{NotificationID: "n1", MonitorID: "m1"}, "vigil.notifications.email.n1"},
		{event.NotificationRequested{NotificationID: "n2", Channel: event.ChannelWebhook}, "vigil.notifications.webhook.n2"},
		{event.NotificationRequested{NotificationID: "n3", Channel: event.ChannelEmail}, "vigil.notifications.email.n3"},
	}
	for _, tt := range tests {
		t.Run(tt.ev.EventType(), func(t *testing.T) {
			t.Parallel()
			got, err := streams.Subject(tt.ev)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}

	_, err := streams.Subject(unknownEvent{})
	require.ErrorContains(t, err, "unknown event type")
	_, err = streams.Subject(event.EvaluationDue{MonitorID: "a.b"})
	require.Error(t, err, "a dot would add a subject token")
	_, err = streams.Subject(event.EvaluationDue{})
	require.Error(t, err)
}

type unknownEvent struct{}

func (unknownEvent) EventID() string       { return "x" }
func (unknownEvent) EventType() string     { return "vigil.unknown.v1" }
func (unknownEvent) AggregateID() string   { return "a" }
func (unknownEvent) OccurredAt() time.Time { return time.Time{} }

func TestEnvelopeRoundTrip(t *testing.T) {
	t.Parallel()
	ev := monitorCreated()
	ev.At = time.Date(2026, 3, 1, 12, 30, 0, 123456789, time.FixedZone("CET", 3600))
	tp := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	ctx := streams.WithTraceparent(context.Background(), tp)

	m, err := streams.NewMsg(ctx, ev, "vigil/api")
	require.NoError(t, err)
	require.Equal(t, "vigil.monitors."+ev.MonitorID+".created", m.Subject)
	require.Equal(t, "1.0", m.Header.Get("ce-specversion"))
	require.Equal(t, ev.ID, m.Header.Get("Nats-Msg-Id"))
	require.Equal(t, "application/json", m.Header.Get("content-type"))
	require.Equal(t, "2026-03-01T11:30:00.123456789Z", m.Header.Get("ce-time"))

	env, err := streams.DecodeEnvelope(m.Header, m.Data)
	require.NoError(t, err)
	require.Equal(t, ev.ID, env.ID)
	require.Equal(t, event.TypeMonitorCreated, env.Type)
	require.Equal(t, "vigil/api", env.Source)
	require.Equal(t, ev.MonitorID, env.Subject)
	require.True(t, ev.At.Equal(env.Time), "time %s != %s", env.Time, ev.At)
	require.Equal(t, tp, env.Traceparent)
	want, err := json.Marshal(ev)
	require.NoError(t, err)
	require.JSONEq(t, string(want), string(env.Data))

	// Consumers ignore fields they do not know.
	var got event.MonitorCreated
	require.NoError(t, streams.Message{Envelope: env}.Decode(&got))
	require.Equal(t, ev.MonitorID, got.MonitorID)
	var partial struct {
		MonitorID string `json:"monitor_id"`
	}
	require.NoError(t, streams.Message{Envelope: env}.Decode(&partial))
	require.Equal(t, ev.MonitorID, partial.MonitorID)

	// Without a traceparent on ctx there is no header.
	m, err = streams.NewMsg(context.Background(), ev, "vigil/api")
	require.NoError(t, err)
	require.Empty(t, m.Header.Get("traceparent"))
}

func TestDecodeEnvelopeRejects(t *testing.T) {
	t.Parallel()
	h := nats.Header{}
	h.Set("ce-type", event.TypeMonitorCreated)
	_, err := streams.DecodeEnvelope(h, nil)
	require.ErrorContains(t, err, "ce-id")

	h = nats.Header{}
	h.Set("ce-id", "1")
	_, err = streams.DecodeEnvelope(h, nil)
	require.ErrorContains(t, err, "ce-type")

	h.Set("ce-type", event.TypeMonitorCreated)
	h.Set("ce-time", "yesterday")
	_, err = streams.DecodeEnvelope(h, nil)
	require.ErrorContains(t, err, "ce-time")
}

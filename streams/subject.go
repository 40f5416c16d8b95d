package streams

import (
	"fmt"
	"strings"

	"github.com/vigilhq/vigil/domain/event"
)

// Subject maps a domain event to the subject it is published on:
//
//	MonitorCreated/Updated/Deleted -> vigil.monitors.<monitor>.created|updated|deleted
//	EvaluationDue                  -> vigil.evaluations.due.<monitor>
//	EvaluationCompleted            -> vigil.evaluations.completed.<monitor>
//	StateChanged                   -> vigil.states.changed.<monitor>
//	NotificationRequested          -> vigil.notifications.email|webhook.<notification>
//
// An unknown event type, or an aggregate id that is not a valid subject token, is an error.
func Subject(ev event.Event) (string, error) {
	if ev == nil {
		return "", fmt.Errorf("subject: nil event")
	}
	id := ev.AggregateID()
	if !validToken(id) {
		return "", fmt.Errorf("subject of %s: aggregate id %q is not a valid subject token", ev.EventType(), id)
	}
	switch t := ev.EventType(); t {
	case event.TypeMonitorCreated:
		return "vigil.monitors." + id + ".created", nil
	case event.TypeMonitorUpdated:
		return "vigil.monitors." + id + ".updated", nil
	case event.TypeMonitorDeleted:
		return "vigil.monitors." + id + ".deleted", nil
	case event.TypeEvaluationDue:
		return "vigil.evaluations.due." + id, nil
	case event.TypeEvaluationCompleted:
		return "vigil.evaluations.completed." + id, nil
	case event.TypeStateChanged:
		return "vigil.states.changed." + id, nil
	case event.TypeNotificationRequested:
		if nr, ok := ev.(event.NotificationRequested); ok && nr.Channel == event.ChannelWebhook {
			return "vigil.notifications.webhook." + id, nil
		}
		return "vigil.notifications.email." + id, nil
	default:
		return "", fmt.Errorf("subject: unknown event type %q", t)
	}
}

// validToken reports whether s can be one token of a NATS subject.
func validToken(s string) bool {
	return s != "" && !strings.ContainsAny(s, ".*> \t\r\n")
}

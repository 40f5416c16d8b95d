package app

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/monitor"
)

// ExportKind is what a monitor's export holds.
type ExportKind string

// Export kinds.
const (
	ExportFacts         ExportKind = "facts"
	ExportEvaluations   ExportKind = "evaluations"
	ExportNotifications ExportKind = "notifications"
)

// ExportQuery asks for a monitor's facts, evaluations or notifications in [From, To).
type ExportQuery struct {
	UserID, MonitorID string
	What              ExportKind
	From, To          *time.Time // nil: from the start, up to now
}

// ExportSink receives an export's rows one at a time, oldest first; only the function of
// the query's kind is called.
type ExportSink struct {
	Fact         func(monitor.Fact) error
	Evaluation   func(EvaluationRecord) error
	Notification func(NotificationRecord) error
}

// ExportStore streams a monitor's history in constant memory, from one consistent snapshot.
type ExportStore interface {
	StreamFacts(ctx context.Context, monitorID string, from, to time.Time, fn func(monitor.Fact) error) error
	StreamEvaluations(ctx context.Context, monitorID string, from, to time.Time, fn func(EvaluationRecord) error) error
	StreamNotifications(ctx context.Context, monitorID string, from, to time.Time, fn func(NotificationRecord) error) error
}

// ExportService streams monitors' history for download.
type ExportService struct {
	monitors OwnedMonitors
	store    ExportStore
	now      func() time.Time
}

// NewExportService returns an ExportService.
func NewExportService(monitors OwnedMonitors, store ExportStore, now func() time.Time) *ExportService {
	return &ExportService{monitors: monitors, store: store, now: now}
}

// Prepare checks an export before anything is sent: the monitor is the user's, the kind
// is known and the range is sound. It returns the query with its range filled in.
func (s *ExportService) Prepare(ctx context.Context, q ExportQuery) (ExportQuery, error) {
	if _, err := s.monitors.GetMonitor(ctx, q.UserID, q.MonitorID); err != nil {
		return q, err
	}
	fields := map[string]string{}
	switch q.What {
	case ExportFacts, ExportEvaluations, ExportNotifications:
	case "":
		fields["what"] = "is required: facts, evaluations or notifications"
	default:
		fields["what"] = "must be facts, evaluations or notifications"
	}
	to := s.now().UTC()
	if q.To != nil {
		to = q.To.UTC()
	}
	from := time.Time{}
	if q.From != nil {
		from = q.From.UTC()
	}
	if !from.Before(to) {
		fields["from"] = "must be before to"
	}
	if len(fields) > 0 {
		return q, &domain.Error{Code: domain.EINVALID, Message: "The export has invalid parameters.", Fields: fields}
	}
	q.From, q.To = &from, &to
	return q, nil
}

// Export streams a prepared query's rows to sink.
func (s *ExportService) Export(ctx context.Context, q ExportQuery, sink ExportSink) error {
	if q.From == nil || q.To == nil {
		return fmt.Errorf("export of %s: not prepared", q.MonitorID)
	}
	var err error
	switch q.What {
	case ExportFacts:
		err = s.store.StreamFacts(ctx, q.MonitorID, *q.From, *q.To, sink.Fact)
	case ExportEvaluations:
		err = s.store.StreamEvaluations(ctx, q.MonitorID, *q.From, *q.To, sink.Evaluation)
	case ExportNotifications:
		err = s.store.StreamNotifications(ctx, q.MonitorID, *q.From, *q.To, sink.Notification)
	default:
		err = fmt.Errorf("unknown export %q", q.What)
	}
	if err != nil {
		return fmt.Errorf("export %s of %s: %w", q.What, q.MonitorID, err)
	}
	return nil
}

// ExportFileName names an export's file: monitor-<id>-<kind>.<ext>, safe in a header.
func ExportFileName(monitorID string, what ExportKind, ext string) string {
	clean := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return -1
	}, strings.ToLower(monitorID))
	return fmt.Sprintf("monitor-%s-%s.%s", clean, what, ext)
}

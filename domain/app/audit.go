package app

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/vigilhq/vigil/domain/account"
)

// Audit actions of the monitor, action and trigger use cases.
const (
	AuditMonitorCreated = "monitor_created"
	AuditMonitorUpdated = "monitor_updated"
	AuditMonitorDeleted = "monitor_deleted"
	AuditActionCreated  = "action_created"
	AuditActionUpdated  = "action_updated"
	AuditActionDeleted  = "action_deleted"
	AuditTriggerCreated = "trigger_created"
	AuditTriggerUpdated = "trigger_updated"
	AuditTriggerDeleted = "trigger_deleted"
	AuditRecipientAdded = "recipient_confirmed"
)

// Audit target types.
const (
	TargetMonitor = "monitor"
	TargetAction  = "action"
	TargetTrigger = "trigger"
)

// AuditRecorder appends audit events; account.AuditLog satisfies it.
type AuditRecorder interface {
	RecordAudit(ctx context.Context, e account.AuditEvent) error
}

// recordAudit writes a successful change by userID, with the client found in ctx. A nil
// recorder records nothing (tools such as seed and bench).
func recordAudit(ctx context.Context, rec AuditRecorder, now time.Time, userID, action, targetType, targetID string, meta map[string]any) error {
	if rec == nil {
		return nil
	}
	id, err := uuid.NewV7()
	if err != nil {
		return fmt.Errorf("new audit id: %w", err)
	}
	cl := account.ClientFrom(ctx)
	e := account.AuditEvent{ID: id.String(), ActorID: userID, Action: action, TargetType: targetType, TargetID: targetID,
		IP: cl.IP, UserAgent: cl.UserAgent, Outcome: account.OutcomeSuccess, Metadata: meta, CreatedAt: now.UTC().Truncate(time.Microsecond)}
	if err := rec.RecordAudit(ctx, e); err != nil {
		return fmt.Errorf("record audit event %s: %w", action, err)
	}
	return nil
}

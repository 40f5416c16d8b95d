package app

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/vigilhq/vigil/domain/trigger"
)

// TriggersPerMonitorMax bounds how many triggers one monitor may have.
const TriggersPerMonitorMax = 20

// TriggerRepository persists the triggers of users' monitors. Every method is scoped to
// the user: another user's monitor, trigger or action is ENOTFOUND.
type TriggerRepository interface {
	// ListTriggers returns the monitor's triggers, oldest first.
	ListTriggers(ctx context.Context, userID, monitorID string) ([]trigger.Trigger, error)
	// GetTrigger returns one trigger of the monitor.
	GetTrigger(ctx context.Context, userID, monitorID, id string) (trigger.Trigger, error)
	// CreateTrigger inserts t. ENOTFOUND when the monitor or the action is not the user's,
	// ECONFLICT when the monitor already has a trigger for that action and condition or
	// already has max triggers.
	CreateTrigger(ctx context.Context, userID string, t *trigger.Trigger, max int) error
	// UpdateTrigger writes t's action, condition, frequency, cooldown and switch. Errors as
	// CreateTrigger's.
	UpdateTrigger(ctx context.Context, userID string, t *trigger.Trigger) error
	// DeleteTrigger deletes one trigger of the monitor.
	DeleteTrigger(ctx context.Context, userID, monitorID, id string) error
}

// TriggerService is the triggers API's use cases.
type TriggerService struct {
	repo  TriggerRepository
	audit AuditRecorder
	now   func() time.Time
}

// NewTriggerService returns the triggers use cases.
func NewTriggerService(repo TriggerRepository, audit AuditRecorder, now func() time.Time) *TriggerService {
	return &TriggerService{repo: repo, audit: audit, now: now}
}

// List returns the triggers of the user's monitor.
func (s *TriggerService) List(ctx context.Context, userID, monitorID string) ([]trigger.Trigger, error) {
	return s.repo.ListTriggers(ctx, userID, monitorID)
}

// Get returns one trigger of the user's monitor.
func (s *TriggerService) Get(ctx context.Context, userID, monitorID, id string) (trigger.Trigger, error) {
	return s.repo.GetTrigger(ctx, userID, monitorID, id)
}

// Create validates and stores a trigger on the user's monitor.
func (s *TriggerService) Create(ctx context.Context, userID, monitorID string, spec trigger.Spec) (trigger.Trigger, error) {
	if err := spec.Validate(""); err != nil {
		return trigger.Trigger{}, err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return trigger.Trigger{}, fmt.Errorf("new trigger id: %w", err)
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	t := trigger.Trigger{ID: id.String(), MonitorID: monitorID, ActionID: spec.ActionID, Condition: spec.Condition,
		Frequency: spec.Frequency, Cooldown: spec.Cooldown, Enabled: spec.Enabled, CreatedAt: now, UpdatedAt: now}
	if err := s.repo.CreateTrigger(ctx, userID, &t, TriggersPerMonitorMax); err != nil {
		return trigger.Trigger{}, err
	}
	meta := map[string]any{"monitor_id": monitorID, "action_id": t.ActionID, "condition": string(t.Condition), "frequency": string(t.Frequency)}
	if err := recordAudit(ctx, s.audit, now, userID, AuditTriggerCreated, TargetTrigger, t.ID, meta); err != nil {
		return trigger.Trigger{}, err
	}
	return t, nil
}

// Update changes a trigger of the user's monitor. Enabling a spent once trigger re-arms it.
func (s *TriggerService) Update(ctx context.Context, userID, monitorID, id string, c trigger.Changes) (trigger.Trigger, error) {
	t, err := s.repo.GetTrigger(ctx, userID, monitorID, id)
	if err != nil {
		return trigger.Trigger{}, err
	}
	if err := t.Apply(c); err != nil {
		return trigger.Trigger{}, err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	t.UpdatedAt = now
	if err := s.repo.UpdateTrigger(ctx, userID, &t); err != nil {
		return trigger.Trigger{}, err
	}
	meta := map[string]any{"monitor_id": monitorID, "enabled": t.Enabled}
	if err := recordAudit(ctx, s.audit, now, userID, AuditTriggerUpdated, TargetTrigger, t.ID, meta); err != nil {
		return trigger.Trigger{}, err
	}
	return t, nil
}

// Delete deletes a trigger of the user's monitor.
func (s *TriggerService) Delete(ctx context.Context, userID, monitorID, id string) error {
	if err := s.repo.DeleteTrigger(ctx, userID, monitorID, id); err != nil {
		return err
	}
	return recordAudit(ctx, s.audit, s.now(), userID, AuditTriggerDeleted, TargetTrigger, id, map[string]any{"monitor_id": monitorID})
}

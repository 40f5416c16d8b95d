package account

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/vigilhq/vigil/domain"
)

// Allowlist entry kinds.
const (
	AllowlistKindEmail  = "email"  // one address, "ann@example.com"
	AllowlistKindDomain = "domain" // every address of a domain, "@example.com"
)

// Audit actions and target type of allowlist changes.
const (
	ActionAllowlistAdded   = "allowlist_added"
	ActionAllowlistRemoved = "allowlist_removed"
	TargetAllowlistEntry   = "allowlist_entry"
)

// AllowlistEntry is one row of the beta allowlist.
type AllowlistEntry struct {
	ID        string
	Pattern   string // lower-cased: "ann@example.com" or "@example.com"
	Kind      string // AllowlistKindEmail or AllowlistKindDomain
	AddedBy   string // user id; "" when unknown or deleted
	CreatedAt time.Time
}

// AllowlistAdmin edits the beta allowlist.
type AllowlistAdmin interface {
	// ListAllowlist returns every entry, ordered by pattern.
	ListAllowlist(ctx context.Context) ([]AllowlistEntry, error)
	// AddAllowlistEntry inserts e (its ID set by the caller). Returns ECONFLICT when the
	// pattern is listed already.
	AddAllowlistEntry(ctx context.Context, e *AllowlistEntry) error
	// RemoveAllowlistEntry deletes the entry and returns it, or ENOTFOUND.
	RemoveAllowlistEntry(ctx context.Context, id string) (*AllowlistEntry, error)
}

// AuditFilter selects a page of every user's audit events.
type AuditFilter struct {
	Action string // "" for every action
	Limit  int
	Cursor string // "" for the first page
}

// AuditSearcher lists every user's audit events, for administrators.
type AuditSearcher interface {
	// ListAudit returns up to f.Limit events matching f, newest first, after f.Cursor.
	// Returns EINVALID for a cursor it did not issue.
	ListAudit(ctx context.Context, f AuditFilter) (AuditPage, error)
}

// AdminDeps are the ports the AdminService needs; all are required.
type AdminDeps struct {
	Users     UserStore
	Allowlist AllowlistAdmin
	Audit     AuditLog
	Search    AuditSearcher
	Clock     Clock
}

// AdminService runs the administrators' use cases: the beta allowlist and the audit log
// of every user. Each use case checks that the actor is an administrator now, so a role
// taken away is effective before the actor's access token expires.
type AdminService struct {
	d AdminDeps
}

// NewAdminService returns the administrators' use cases.
func NewAdminService(d AdminDeps) (*AdminService, error) {
	if d.Users == nil || d.Allowlist == nil || d.Audit == nil || d.Search == nil || d.Clock == nil {
		return nil, errors.New("admin service: every dependency is required")
	}
	return &AdminService{d: d}, nil
}

// ListAllowlist returns the allowlist. Returns EFORBIDDEN when actorID is not an admin.
func (s *AdminService) ListAllowlist(ctx context.Context, actorID string) ([]AllowlistEntry, error) {
	if err := s.requireAdmin(ctx, actorID); err != nil {
		return nil, err
	}
	entries, err := s.d.Allowlist.ListAllowlist(ctx)
	if err != nil {
		return nil, fmt.Errorf("list allowlist: %w", err)
	}
	return entries, nil
}

// AddToAllowlist lists an email address or an "@domain". Returns EFORBIDDEN when actorID
// is not an admin, EINVALID for anything else than an address or "@domain", ECONFLICT
// when the pattern is listed already.
func (s *AdminService) AddToAllowlist(ctx context.Context, actorID, pattern string, cl Client) (*AllowlistEntry, error) {
	if err := s.requireAdmin(ctx, actorID); err != nil {
		return nil, err
	}
	pattern, kind, msg := ParseAllowlistPattern(pattern)
	if msg != "" {
		return nil, invalid(map[string]string{"pattern": msg})
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, fmt.Errorf("new allowlist id: %w", err)
	}
	now := s.now()
	e := &AllowlistEntry{ID: id.String(), Pattern: pattern, Kind: kind, AddedBy: actorID, CreatedAt: now}
	if err := s.d.Allowlist.AddAllowlistEntry(ctx, e); err != nil {
		if errors.Is(err, domain.ErrConflict) {
			return nil, &domain.Error{Code: domain.ECONFLICT, Message: fmt.Sprintf("%s is on the allowlist already.", pattern),
				Fields: map[string]string{"pattern": "is listed already"}, Err: err}
		}
		return nil, fmt.Errorf("add %s to the allowlist: %w", pattern, err)
	}
	if err := recordAudit(ctx, s.d.Audit, now, AuditEvent{ActorID: actorID, Action: ActionAllowlistAdded,
		TargetType: TargetAllowlistEntry, TargetID: e.ID, Outcome: OutcomeSuccess,
		Metadata: map[string]any{"pattern": pattern, "kind": kind}}, cl); err != nil {
		return nil, err
	}
	return e, nil
}

// RemoveFromAllowlist deletes an entry. Accounts it let in stay; they just cannot log in
// while the beta is on. Returns EFORBIDDEN when actorID is not an admin, ENOTFOUND for an
// unknown id.
func (s *AdminService) RemoveFromAllowlist(ctx context.Context, actorID, id string, cl Client) error {
	if err := s.requireAdmin(ctx, actorID); err != nil {
		return err
	}
	if _, err := uuid.Parse(id); err != nil {
		return domain.Errorf(domain.ENOTFOUND, "There is no such allowlist entry.")
	}
	e, err := s.d.Allowlist.RemoveAllowlistEntry(ctx, id)
	if isNotFound(err) {
		return domain.Errorf(domain.ENOTFOUND, "There is no such allowlist entry.")
	}
	if err != nil {
		return fmt.Errorf("remove allowlist entry %s: %w", id, err)
	}
	return recordAudit(ctx, s.d.Audit, s.now(), AuditEvent{ActorID: actorID, Action: ActionAllowlistRemoved,
		TargetType: TargetAllowlistEntry, TargetID: e.ID, Outcome: OutcomeSuccess,
		Metadata: map[string]any{"pattern": e.Pattern, "kind": e.Kind}}, cl)
}

// ListAllAudit returns every user's audit events, newest first, optionally of one action.
// limit 0 means AuditLimitDefault; more than AuditLimitMax or less than 0 is EINVALID.
// Returns EFORBIDDEN when actorID is not an admin.
func (s *AdminService) ListAllAudit(ctx context.Context, actorID string, f AuditFilter) (AuditPage, error) {
	if err := s.requireAdmin(ctx, actorID); err != nil {
		return AuditPage{}, err
	}
	if f.Limit == 0 {
		f.Limit = AuditLimitDefault
	}
	fields := map[string]string{}
	if f.Limit < 1 || f.Limit > AuditLimitMax {
		fields["limit"] = fmt.Sprintf("must be from 1 to %d", AuditLimitMax)
	}
	f.Action = strings.TrimSpace(f.Action)
	if len(f.Action) > 100 {
		fields["action"] = "must be at most 100 characters"
	}
	if err := invalid(fields); err != nil {
		return AuditPage{}, err
	}
	page, err := s.d.Search.ListAudit(ctx, f)
	if err != nil {
		return AuditPage{}, fmt.Errorf("list audit events: %w", err)
	}
	return page, nil
}

// ParseAllowlistPattern normalises an allowlist pattern: an email address or "@" and a
// domain, trimmed and lower-cased. It returns the pattern, its kind and "" — or a field
// error text when it is neither.
func ParseAllowlistPattern(raw string) (pattern, kind, msg string) {
	pattern = NormalizeEmail(raw)
	if pattern == "" {
		return "", "", "is required"
	}
	if strings.HasPrefix(pattern, "@") {
		// A domain is valid when some address at it is.
		if strings.Count(pattern, "@") != 1 || validateEmail("x"+pattern) != "" {
			return "", "", `must be an email address or "@" and a domain, such as @example.com`
		}
		return pattern, AllowlistKindDomain, ""
	}
	if validateEmail(pattern) != "" {
		return "", "", `must be an email address or "@" and a domain, such as @example.com`
	}
	return pattern, AllowlistKindEmail, ""
}

// requireAdmin returns EFORBIDDEN unless actorID is an enabled administrator.
// RequireAdmin returns EFORBIDDEN unless actorID is an enabled administrator, for the
// administrators' views of other packages.
func (s *AdminService) RequireAdmin(ctx context.Context, actorID string) error {
	return s.requireAdmin(ctx, actorID)
}

func (s *AdminService) requireAdmin(ctx context.Context, actorID string) error {
	u, err := s.d.Users.FindUserByID(ctx, actorID)
	if isNotFound(err) {
		return errAccountGone()
	}
	if err != nil {
		return fmt.Errorf("find user %s: %w", actorID, err)
	}
	if u.Role != RoleAdmin || u.Disabled() {
		return domain.Errorf(domain.EFORBIDDEN, "This needs an administrator.")
	}
	return nil
}

func (s *AdminService) now() time.Time { return s.d.Clock.Now().UTC().Truncate(time.Microsecond) }

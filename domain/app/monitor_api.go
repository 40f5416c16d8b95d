package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/ai"
	"github.com/vigilhq/vigil/domain/monitor"
	"github.com/vigilhq/vigil/domain/trigger"
)

// Monitor list sorting.
const (
	SortCreatedAt       = "created_at"
	SortName            = "name"
	SortLastEvaluatedAt = "last_evaluated_at"
	SortStateChangedAt  = "state_changed_at"
)

// MonitorQuery selects a page of one user's monitors.
type MonitorQuery struct {
	UserID string
	Status monitor.Status
	Kind   monitor.Kind
	State  monitor.State
	Text   string // matches name or prompt
	Sort   string // one of the Sort constants
	Desc   bool
	Limit  int
	After  *MonitorCursor // the last row of the previous page
}

// MonitorCursor is the position after which a page starts: the sort value and the id of
// the last row shown (keyset pagination, stable while rows are inserted).
type MonitorCursor struct {
	Value string // the sort column's value, as text; "" for NULL
	ID    string
}

// MonitorPage is one page of monitors.
type MonitorPage struct {
	Monitors []*monitor.Monitor
	Next     *MonitorCursor // nil on the last page
}

// EvaluationRecord is one evaluation as history shows it.
type EvaluationRecord struct {
	ID            string
	ScheduledFor  time.Time
	StartedAt     *time.Time
	FinishedAt    *time.Time
	Status        monitor.EvaluationStatus
	State         monitor.State
	PreviousState *monitor.State
	Changed       bool
	Explanation   string
	Provider      string
	Model         string
	InputTokens   int
	OutputTokens  int
	Cost          float64
	LatencyMS     int
	Error         string
	FactsReused   bool
	Facts         []monitor.Fact
	// Miss is a fact found before and missed on the changed source; Repair the selector
	// repair tried then (applied, proposed or rejected).
	Miss   *monitor.Miss
	Repair *monitor.Repair
}

// MonitorDetail is a monitor with what users look at first.
type MonitorDetail struct {
	Monitor        *monitor.Monitor
	LastEvaluation *EvaluationRecord
	LatestFacts    []monitor.Fact
	Triggers       []trigger.Trigger
}

// HistoryQuery selects a page of a monitor's evaluations, newest first.
type HistoryQuery struct {
	UserID, MonitorID string
	From, To          *time.Time // scheduled_for range, To exclusive
	ChangedOnly       bool
	Limit             int
	Before            *HistoryCursor
}

// HistoryCursor is the last evaluation of the previous page.
type HistoryCursor struct {
	ScheduledFor time.Time
	ID           string
}

// MonitorRepository is what the monitor API needs from storage. Every method is scoped
// to the user: another user's monitor is ENOTFOUND, never EFORBIDDEN.
type MonitorRepository interface {
	MonitorStore
	// CountMonitors returns how many monitors the user has.
	CountMonitors(ctx context.Context, userID string) (int, error)
	// GetMonitor returns the user's monitor or ENOTFOUND.
	GetMonitor(ctx context.Context, userID, id string) (*monitor.Monitor, error)
	// MonitorDetail returns the user's monitor with its last evaluation, latest facts and
	// triggers, or ENOTFOUND.
	MonitorDetail(ctx context.Context, userID, id string) (MonitorDetail, error)
	// ListMonitors returns a page of the user's monitors.
	ListMonitors(ctx context.Context, q MonitorQuery) (MonitorPage, error)
	// UpdateMonitor stores the user's fields of m, and of the fields the pipeline also
	// writes only those edited names, if its stored version is still expectedVersion (ECONFLICT
	// otherwise) and, in the same transaction, the MonitorUpdated event.
	// It refreshes m's pipeline fields from the row it wrote.
	UpdateMonitor(ctx context.Context, m *monitor.Monitor, expectedVersion int64, edited monitor.Edited) error
	// DeleteMonitor deletes the user's monitor with its history and, in the same
	// transaction, writes MonitorDeleted. ENOTFOUND when it is not the user's.
	DeleteMonitor(ctx context.Context, userID, id string, now time.Time) error
	// History returns a page of evaluations of the user's monitor and the cursor of the
	// next page, nil when none. ENOTFOUND when the monitor is not the user's.
	History(ctx context.Context, q HistoryQuery) ([]EvaluationRecord, *HistoryCursor, error)
	// RequestEvaluation schedules an evaluation of the user's monitor in the slot now,
	// through the outbox. ENOTFOUND when it is not the user's.
	RequestEvaluation(ctx context.Context, userID, id string, now time.Time) error
}

// MonitorService is the monitor API's use cases.
type MonitorService struct {
	repo       MonitorRepository
	classifier Classifier
	fetcher    Fetcher
	provider   ai.Provider
	now        func() time.Time
	cfg        MonitorConfig
}

// MonitorConfig holds the limits of the monitor API.
type MonitorConfig struct {
	MinInterval   time.Duration
	Quota         int // monitors per user
	MinConfidence float64
	// Audit records creates, updates and deletes; nil records nothing.
	Audit AuditRecorder
	// CheckSelector reports a selector that cannot work as an EINVALID error naming
	// field; nil accepts every selector.
	CheckSelector func(field, selector string) error
	// Guard refuses sources on private, loopback or special addresses when a monitor is
	// created, its source changed, or validated; nil checks only at fetch time.
	Guard SourceGuard
	// Renderer fetches sources in a browser for monitors that ask for rendering; nil when
	// this Vigil has none, and such monitors are refused.
	Renderer Fetcher
	// Backtests replays a validated change of an existing monitor over its last 30 days,
	// for validate's summary; nil leaves it out.
	Backtests interface {
		Run(ctx context.Context, q BacktestQuery) (Backtest, error)
	}
}

// checkSource refuses a source on an address Vigil may not call, as an EINVALID error
// naming source_url.
func (s *MonitorService) checkSource(ctx context.Context, sourceURL string) error {
	if s.cfg.Guard == nil || sourceURL == "" {
		return nil
	}
	if err := s.cfg.Guard.CheckSource(ctx, sourceURL); err != nil {
		return &domain.Error{Code: domain.EINVALID, Message: "The monitor has invalid fields.",
			Fields: map[string]string{"source_url": domain.ErrorMessage(err)}, Err: err}
	}
	return nil
}

// checkRender refuses rendering when no browser is configured.
func (s *MonitorService) checkRender(render bool) error {
	if render && s.cfg.Renderer == nil {
		return ErrNoRenderer
	}
	return nil
}

// checkSelectors checks the syntax of a draft's selectors before anything is classified.
func (s *MonitorService) checkSelectors(selectors map[string]string) error {
	if s.cfg.CheckSelector == nil {
		return nil
	}
	for name, sel := range selectors {
		field := "selector"
		if name != monitor.SelectorPrimary {
			field += "." + name
		}
		if err := s.cfg.CheckSelector(field, sel); err != nil {
			return err
		}
	}
	return nil
}

// NewMonitorService returns the monitor use cases. provider does validation's dry runs
// (the same chain the evaluator uses); classifier is usually the same provider.
func NewMonitorService(repo MonitorRepository, classifier Classifier, fetcher Fetcher, provider ai.Provider, now func() time.Time, cfg MonitorConfig) *MonitorService {
	if cfg.MinConfidence <= 0 {
		cfg.MinConfidence = monitor.MinConfidenceDefault
	}
	return &MonitorService{repo: repo, classifier: classifier, fetcher: fetcher, provider: provider, now: now, cfg: cfg}
}

// Create validates, classifies and stores a new monitor, due at once, with the triggers
// of plan. When the draft has neither interval nor cron, the classification's suggested
// interval is used (at least the minimum), else an hour.
func (s *MonitorService) Create(ctx context.Context, d monitor.Draft, plan TriggerPlan) (*monitor.Monitor, error) {
	suggested := d.Interval == 0 && d.Cron == ""
	if suggested {
		d.Interval = time.Hour // replaced by the classification's suggestion when there is one
	}
	if err := d.Validate(s.cfg.MinInterval); err != nil {
		return nil, err
	}
	if err := s.checkSelectors(d.Selectors); err != nil {
		return nil, err
	}
	if err := s.checkRender(d.Render); err != nil {
		return nil, err
	}
	if err := s.checkSource(ctx, d.SourceURL); err != nil {
		return nil, err
	}
	if len(plan.Specs) > TriggersPerMonitorMax {
		return nil, &domain.Error{Code: domain.EINVALID, Message: "The monitor has invalid fields.",
			Fields: map[string]string{"triggers": fmt.Sprintf("must list at most %d triggers", TriggersPerMonitorMax)}}
	}
	for i, sp := range plan.Specs {
		if err := sp.Validate(fmt.Sprintf("triggers[%d].", i)); err != nil {
			return nil, err
		}
	}
	if s.cfg.Quota > 0 {
		n, err := s.repo.CountMonitors(ctx, d.UserID)
		if err != nil {
			return nil, fmt.Errorf("count monitors: %w", err)
		}
		if n >= s.cfg.Quota {
			return nil, domain.Errorf(domain.ECONFLICT, "You have reached your limit of %d monitors; delete one first.", s.cfg.Quota)
		}
	}
	m, err := NewMonitors(s.repo, s.classifier, s.now, s.cfg.MinInterval).create(ctx, d, suggested, plan)
	if err != nil {
		return nil, err
	}
	if err := recordAudit(ctx, s.cfg.Audit, m.CreatedAt, m.UserID, AuditMonitorCreated, TargetMonitor, m.ID, nil); err != nil {
		return nil, err
	}
	return m, nil
}

// Get returns the user's monitor with its details.
func (s *MonitorService) Get(ctx context.Context, userID, id string) (MonitorDetail, error) {
	return s.repo.MonitorDetail(ctx, userID, id)
}

// List returns a page of the user's monitors.
func (s *MonitorService) List(ctx context.Context, q MonitorQuery) (MonitorPage, error) {
	return s.repo.ListMonitors(ctx, q)
}

// Update edits the user's monitor. expectedVersion, when not 0, must be the stored version
// (a stale one is ECONFLICT, 412 over HTTP). A changed prompt or source is classified again.
func (s *MonitorService) Update(ctx context.Context, userID, id string, c monitor.Changes, expectedVersion int64) (*monitor.Monitor, error) {
	m, err := s.repo.GetMonitor(ctx, userID, id)
	if err != nil {
		return nil, err
	}
	if expectedVersion != 0 && expectedVersion != m.Version {
		return nil, versionConflict(m.Version)
	}
	d := m.Draft(c)
	if err := d.Validate(s.cfg.MinInterval); err != nil {
		return nil, err
	}
	if err := s.checkSelectors(d.Selectors); err != nil {
		return nil, err
	}
	if c.Render != nil {
		if err := s.checkRender(d.Render); err != nil {
			return nil, err
		}
	}
	if c.SourceURL != nil {
		if err := s.checkSource(ctx, d.SourceURL); err != nil {
			return nil, err
		}
	}
	var spec *monitor.Spec
	var by monitor.ClassifiedBy
	if m.NeedsClassification(c) {
		sp, usage, err := s.classifier.Classify(ai.WithUser(ctx, userID), d.Prompt, ai.Hints{SourceURL: d.SourceURL})
		if err != nil {
			return nil, fmt.Errorf("classify prompt: %w", err)
		}
		if sp.NeedsSource && d.SourceURL == "" {
			return nil, needsSource()
		}
		spec, by = &sp, monitor.ClassifiedBy{Provider: usage.Provider, Model: usage.Model}
	}
	stored := m.Version
	edited, err := m.Edit(d, c, spec, by, s.now().UTC())
	if err != nil {
		return nil, err
	}
	if err := s.repo.UpdateMonitor(ctx, m, stored, edited); err != nil {
		if errors.Is(err, domain.ErrConflict) {
			return nil, versionConflict(stored)
		}
		return nil, fmt.Errorf("store monitor: %w", err)
	}
	if err := recordAudit(ctx, s.cfg.Audit, m.UpdatedAt, userID, AuditMonitorUpdated, TargetMonitor, m.ID, map[string]any{"version": m.Version}); err != nil {
		return nil, err
	}
	return m, nil
}

// Delete deletes the user's monitor and everything recorded about it.
func (s *MonitorService) Delete(ctx context.Context, userID, id string) error {
	now := s.now().UTC()
	if err := s.repo.DeleteMonitor(ctx, userID, id, now); err != nil {
		return err
	}
	return recordAudit(ctx, s.cfg.Audit, now, userID, AuditMonitorDeleted, TargetMonitor, id, nil)
}

// History returns a page of the monitor's evaluations.
func (s *MonitorService) History(ctx context.Context, q HistoryQuery) ([]EvaluationRecord, *HistoryCursor, error) {
	return s.repo.History(ctx, q)
}

// EvaluateNow schedules an evaluation of the user's monitor at once.
func (s *MonitorService) EvaluateNow(ctx context.Context, userID, id string) error {
	return s.repo.RequestEvaluation(ctx, userID, id, s.now().UTC())
}

// Validation is what a monitor would do, found without changing anything.
type Validation struct {
	Spec         monitor.Spec
	ClassifiedBy monitor.ClassifiedBy
	Facts        []monitor.Fact
	Verdict      *monitor.Verdict
	Warnings     []string
	// Backtest, for an existing monitor, says in one line what the validated spec would
	// have done over the monitor's last 30 days; "" when it cannot be replayed.
	Backtest string
}

// backtestSummary replays spec's condition or change rule over the monitor's history.
func (s *MonitorService) backtestSummary(ctx context.Context, userID, monitorID string, spec monitor.Spec) string {
	if s.cfg.Backtests == nil {
		return ""
	}
	q := BacktestQuery{UserID: userID, MonitorID: monitorID}
	switch {
	case spec.Kind == monitor.KindHistoricalChange && spec.Change != nil:
		q.Change = spec.Change
	case spec.Condition != "":
		q.Condition = &spec.Condition
	default:
		return ""
	}
	b, err := s.cfg.Backtests.Run(ctx, q)
	if err != nil {
		return "" // a spec the history cannot replay (new facts) has nothing to say yet
	}
	return b.Summary()
}

// Proposal is what validate tries: a prompt and where to watch it, and how. Empty fields
// (nil Selectors, "" SourceFormat) of an existing monitor's proposal take its settings.
type Proposal struct {
	Prompt       string
	SourceURL    string
	SourceFormat monitor.SourceFormat
	Selectors    map[string]string
	// Render reads the source in a browser; nil takes the monitor's setting (off for a
	// new one).
	Render *bool
}

// Validate classifies a proposed prompt and, when the source is reachable, runs one dry
// evaluation. It changes nothing and emits nothing. For an existing monitor (id set) the
// proposal defaults to its current prompt, source and selectors.
func (s *MonitorService) Validate(ctx context.Context, userID, id string, p Proposal) (Validation, error) {
	var current *monitor.Monitor
	if id != "" {
		m, err := s.repo.GetMonitor(ctx, userID, id)
		if err != nil {
			return Validation{}, err
		}
		current = m
		if p.Prompt == "" {
			p.Prompt = m.Prompt
		}
		if p.SourceURL == "" {
			p.SourceURL = m.SourceURL
		}
		if p.SourceFormat == "" {
			p.SourceFormat = m.SourceFormat
		}
		if p.Render == nil {
			p.Render = &m.Render
		}
	}
	render := p.Render != nil && *p.Render
	if err := s.checkRender(render); err != nil {
		return Validation{}, err
	}
	prompt, sourceURL := p.Prompt, p.SourceURL // what is validated, with the monitor's where left empty
	d := monitor.Draft{UserID: userID, Prompt: prompt, SourceURL: sourceURL, Interval: monitor.MaxInterval,
		SourceFormat: p.SourceFormat, Selectors: p.Selectors}
	if err := d.Validate(0); err != nil {
		return Validation{}, err
	}
	if err := s.checkSelectors(d.Selectors); err != nil {
		return Validation{}, err
	}
	if err := s.checkSource(ctx, d.SourceURL); err != nil {
		return Validation{}, err
	}
	ctx = ai.WithUser(ctx, userID)
	spec, usage, err := s.classifier.Classify(ctx, prompt, ai.Hints{SourceURL: sourceURL})
	if err != nil {
		return Validation{}, fmt.Errorf("classify prompt: %w", err)
	}
	if current != nil {
		spec = spec.KeepUserSelectors(current.Spec)
	}
	if p.Selectors != nil {
		if spec, err = spec.WithSelectors(p.Selectors); err != nil {
			return Validation{}, err
		}
	}
	v := Validation{Spec: spec, ClassifiedBy: monitor.ClassifiedBy{Provider: usage.Provider, Model: usage.Model}, Warnings: append([]string(nil), spec.Warnings...)}
	if current != nil {
		v.Backtest = s.backtestSummary(ctx, userID, current.ID, spec)
	}
	if sourceURL == "" {
		if spec.NeedsSource {
			v.Warnings = append(v.Warnings, "This prompt needs a source_url to watch.")
		}
		return v, nil
	}
	fetcher := s.fetcher
	if render {
		fetcher = s.cfg.Renderer
	}
	doc, err := fetcher.Fetch(ctx, sourceURL)
	if err != nil {
		v.Warnings = append(v.Warnings, "The source could not be read: "+domain.ErrorMessage(err))
		return v, nil
	}
	doc.Format = string(p.SourceFormat.OrAuto())
	facts, _, err := s.provider.Extract(ctx, spec, doc)
	if err != nil {
		v.Warnings = append(v.Warnings, domain.ErrorMessage(err))
		var missing *domain.Error
		if errors.As(err, &missing) {
			for _, f := range spec.Facts {
				if f.Exact() && f.Name == missing.Fields["fact"] {
					v.Warnings = append(v.Warnings, fmt.Sprintf("The selector %q of %s matched nothing on the page.", f.Selector, f.Name))
				}
			}
		}
		return v, nil
	}
	v.Facts = facts
	if why := monitor.Untrusted(facts, s.cfg.MinConfidence, string(doc.Body), doc.Text); why != "" {
		v.Warnings = append(v.Warnings, why)
	}
	if spec.Kind == monitor.KindHistoricalChange {
		v.Warnings = append(v.Warnings, "Changes are judged from the history Vigil collects once the monitor runs.")
		return v, nil
	}
	verdict, _, err := s.provider.Evaluate(ctx, spec, facts, doc)
	if err != nil {
		v.Warnings = append(v.Warnings, domain.ErrorMessage(err))
		return v, nil
	}
	v.Verdict = &verdict
	return v, nil
}

func versionConflict(current int64) error {
	return &domain.Error{Code: domain.ECONFLICT, Message: fmt.Sprintf("The monitor was changed meanwhile (it is at version %d); reload it and try again.", current),
		Err: errStaleVersion}
}

// errStaleVersion marks a conflict caused by a stale If-Match version (412 over HTTP).
var errStaleVersion = errors.New("stale version")

// IsStaleVersion reports whether err is an optimistic-concurrency conflict.
func IsStaleVersion(err error) bool { return errors.Is(err, errStaleVersion) }

func needsSource() error {
	return &domain.Error{Code: domain.EINVALID, Message: "This prompt needs a source to watch.",
		Fields: map[string]string{"source_url": "is required for this prompt"}}
}

package app

import (
	"context"
	"fmt"
	"time"

	"github.com/vigilhq/vigil/domain/monitor"
)

// RetentionConfig says how long history is kept.
type RetentionConfig struct {
	Facts, Evaluations, Notifications time.Duration
	BatchSize                         int // rows deleted per statement; 0 is RetentionBatchDefault
	FuturePartitions                  int // months of facts partitions created ahead; 0 is 3
}

// Defaults of RetentionConfig.
const (
	FactsRetentionDefault         = 400 * 24 * time.Hour
	EvaluationsRetentionDefault   = 180 * 24 * time.Hour
	NotificationsRetentionDefault = 180 * 24 * time.Hour
	RetentionBatchDefault         = 5000
)

// Partition is one monthly partition of the facts, holding [From, To).
type Partition struct {
	Name string    `json:"name"`
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

// ArchivedFact is one fact as an archive keeps it.
type ArchivedFact struct {
	MonitorID    string `json:"monitor_id"`
	EvaluationID string `json:"evaluation_id,omitempty"`
	monitor.Fact
}

// ArchiveManifest describes an archived partition.
type ArchiveManifest struct {
	Partition string    `json:"partition"`
	From      time.Time `json:"from"`
	To        time.Time `json:"to"`
	Rows      int64     `json:"rows"`
	File      string    `json:"file"`
	SHA256    string    `json:"sha256"`
	CreatedAt time.Time `json:"created_at"`
}

// RetentionPlan is what a run drops and deletes.
type RetentionPlan struct {
	Now                 time.Time   `json:"now"`
	FactsBefore         time.Time   `json:"facts_before"` // partitions that end at or before it are dropped
	EvaluationsBefore   time.Time   `json:"evaluations_before"`
	NotificationsBefore time.Time   `json:"notifications_before"`
	Drop                []Partition `json:"drop"`
	// Rows past retention, counted for a dry run.
	EvaluationsDue int64 `json:"evaluations_due,omitempty"`
	NotesDue       int64 `json:"notifications_due,omitempty"`
}

// PlanRetention picks the partitions wholly past retention at now: a partition is dropped
// only once its last instant is older than the facts' retention, so nothing inside it is
// lost early.
func PlanRetention(now time.Time, cfg RetentionConfig, partitions []Partition) RetentionPlan {
	cfg = cfg.orDefaults()
	p := RetentionPlan{Now: now, FactsBefore: now.Add(-cfg.Facts), EvaluationsBefore: now.Add(-cfg.Evaluations),
		NotificationsBefore: now.Add(-cfg.Notifications)}
	for _, part := range partitions {
		if !part.To.IsZero() && !part.To.After(p.FactsBefore) {
			p.Drop = append(p.Drop, part)
		}
	}
	return p
}

func (c RetentionConfig) orDefaults() RetentionConfig {
	if c.Facts <= 0 {
		c.Facts = FactsRetentionDefault
	}
	if c.Evaluations <= 0 {
		c.Evaluations = EvaluationsRetentionDefault
	}
	if c.Notifications <= 0 {
		c.Notifications = NotificationsRetentionDefault
	}
	if c.BatchSize <= 0 {
		c.BatchSize = RetentionBatchDefault
	}
	if c.FuturePartitions <= 0 {
		c.FuturePartitions = 3
	}
	return c
}

// RetentionReport is what a run did (or, dry, would do).
type RetentionReport struct {
	RetentionPlan
	DryRun               bool              `json:"dry_run"`
	PartitionsCreated    int               `json:"partitions_created"`
	Dropped              []Partition       `json:"dropped"`
	Archived             []ArchiveManifest `json:"archived"`
	EvaluationsDeleted   int64             `json:"evaluations_deleted"`
	NotificationsDeleted int64             `json:"notifications_deleted"`
}

// RetentionStore is the storage side of retention.
type RetentionStore interface {
	// EnsurePartitions creates the monthly facts partitions from the month of from for
	// months months, returning how many it created.
	EnsurePartitions(ctx context.Context, from time.Time, months int) (int, error)
	// Partitions lists the monthly facts partitions (never the default one).
	Partitions(ctx context.Context) ([]Partition, error)
	// StreamPartition hands each fact of a partition to fn.
	StreamPartition(ctx context.Context, name string, fn func(ArchivedFact) error) error
	// DropPartition detaches and drops a partition.
	DropPartition(ctx context.Context, name string) error
	// DeleteEvaluations deletes up to batch evaluations slotted before before whose
	// notifications are all older than keepNotes (a cascade would delete them early), and
	// returns how many.
	DeleteEvaluations(ctx context.Context, before, keepNotes time.Time, batch int) (int64, error)
	// DeleteNotifications deletes up to batch notifications created before before.
	DeleteNotifications(ctx context.Context, before time.Time, batch int) (int64, error)
	// CountDue counts the evaluations and notifications past their cutoffs.
	CountDue(ctx context.Context, evaluationsBefore, notificationsBefore time.Time) (int64, int64, error)
}

// Archiver writes a partition's facts somewhere safe before it is dropped.
type Archiver interface {
	Archive(ctx context.Context, p Partition, facts func(emit func(ArchivedFact) error) error) (ArchiveManifest, error)
}

// Retention enforces how long history is kept.
type Retention struct {
	store   RetentionStore
	archive Archiver // nil: partitions are dropped without an archive
	cfg     RetentionConfig
	now     func() time.Time
}

// NewRetention returns a Retention; archive may be nil.
func NewRetention(store RetentionStore, archive Archiver, cfg RetentionConfig, now func() time.Time) *Retention {
	return &Retention{store: store, archive: archive, cfg: cfg.orDefaults(), now: now}
}

// Run creates the coming partitions, archives (when configured) and drops the facts
// partitions past retention, and deletes old evaluations and notifications in batches of
// BatchSize, each its own short statement. A dry run changes nothing and reports the plan.
// progress, when set, is told after each step.
func (r *Retention) Run(ctx context.Context, dryRun bool, progress func(string)) (RetentionReport, error) {
	say := func(format string, args ...any) {
		if progress != nil {
			progress(fmt.Sprintf(format, args...))
		}
	}
	now := r.now().UTC()
	parts, err := r.store.Partitions(ctx)
	if err != nil {
		return RetentionReport{}, fmt.Errorf("list partitions: %w", err)
	}
	rep := RetentionReport{RetentionPlan: PlanRetention(now, r.cfg, parts), DryRun: dryRun}
	if dryRun {
		rep.EvaluationsDue, rep.NotesDue, err = r.store.CountDue(ctx, rep.EvaluationsBefore, rep.NotificationsBefore)
		return rep, err
	}
	if rep.PartitionsCreated, err = r.store.EnsurePartitions(ctx, now, r.cfg.FuturePartitions); err != nil {
		return rep, fmt.Errorf("create partitions: %w", err)
	}
	say("created %d future partitions", rep.PartitionsCreated)
	for _, p := range rep.Drop {
		if r.archive != nil {
			m, err := r.archive.Archive(ctx, p, func(emit func(ArchivedFact) error) error {
				return r.store.StreamPartition(ctx, p.Name, emit)
			})
			if err != nil {
				return rep, fmt.Errorf("archive %s (not dropped): %w", p.Name, err)
			}
			rep.Archived = append(rep.Archived, m)
			say("archived %s: %d facts to %s", p.Name, m.Rows, m.File)
		}
		if err := r.store.DropPartition(ctx, p.Name); err != nil {
			return rep, fmt.Errorf("drop %s: %w", p.Name, err)
		}
		rep.Dropped = append(rep.Dropped, p)
		say("dropped %s", p.Name)
	}
	for {
		n, err := r.store.DeleteNotifications(ctx, rep.NotificationsBefore, r.cfg.BatchSize)
		if err != nil {
			return rep, fmt.Errorf("delete notifications: %w", err)
		}
		rep.NotificationsDeleted += n
		if n < int64(r.cfg.BatchSize) {
			break
		}
		say("deleted %d notifications so far", rep.NotificationsDeleted)
	}
	for {
		n, err := r.store.DeleteEvaluations(ctx, rep.EvaluationsBefore, rep.NotificationsBefore, r.cfg.BatchSize)
		if err != nil {
			return rep, fmt.Errorf("delete evaluations: %w", err)
		}
		rep.EvaluationsDeleted += n
		if n < int64(r.cfg.BatchSize) {
			break
		}
		say("deleted %d evaluations so far", rep.EvaluationsDeleted)
	}
	say("deleted %d notifications and %d evaluations", rep.NotificationsDeleted, rep.EvaluationsDeleted)
	return rep, ctx.Err()
}

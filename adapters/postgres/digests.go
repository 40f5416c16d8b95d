package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigilhq/vigil/domain/app"
	"github.com/vigilhq/vigil/domain/event"
	"github.com/vigilhq/vigil/streams"
)

var _ app.DigestStore = (*NotificationStore)(nil)

// errNoDigest rolls back a digest with nothing in it.
var errNoDigest = errors.New("nothing to digest")

// DigestCandidates implements app.DigestStore.
func (s *NotificationStore) DigestCandidates(ctx context.Context, limit int) ([]app.DigestCandidate, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT p.user_id::text, p.recipient, u.timezone, u.digest_hour,
		       coalesce((SELECT max(d.digest_day)::text FROM notifications d
		                 WHERE d.kind = 'digest' AND d.user_id = p.user_id AND d.recipient = p.recipient), '')
		FROM (SELECT DISTINCT user_id, recipient FROM notifications WHERE status = 'digest_pending' LIMIT $1) p
		JOIN users u ON u.id = p.user_id`, limit)
	if err != nil {
		return nil, fmt.Errorf("digest candidates: %w", translate(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (app.DigestCandidate, error) {
		var c app.DigestCandidate
		return c, r.Scan(&c.UserID, &c.Recipient, &c.Timezone, &c.Hour, &c.LastDay)
	})
	if err != nil {
		return nil, fmt.Errorf("digest candidates: %w", translate(err))
	}
	return out, nil
}

// CreateDigest implements app.DigestStore. The digest's id and the unique (user,
// recipient, day) index make a second scheduler's attempt a no-op.
func (s *NotificationStore) CreateDigest(ctx context.Context, d app.Digest, now time.Time) (bool, error) {
	err := InTx(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `
			INSERT INTO notifications (id, user_id, monitor_id, kind, channel, recipient, from_state, to_state, status,
			                           digest_day, created_at, updated_at)
			VALUES ($1, $2, NULL, 'digest', 'email', $3, 'unknown', 'unknown', 'pending', $4, $5, $5)
			ON CONFLICT DO NOTHING`, d.ID, d.UserID, d.Recipient, d.Day, now)
		if err != nil {
			return fmt.Errorf("insert digest: %w", translate(err))
		}
		if tag.RowsAffected() == 0 {
			return errNoDigest // made already, perhaps by another scheduler this very moment
		}
		tag, err = tx.Exec(ctx, `
			UPDATE notifications SET status = 'digested', digest_id = $1, updated_at = $5, next_attempt_at = NULL
			WHERE user_id = $2 AND recipient = $3 AND status = 'digest_pending' AND created_at < $4`,
			d.ID, d.UserID, d.Recipient, d.Cutoff, now)
		if err != nil {
			return fmt.Errorf("collect into digest: %w", translate(err))
		}
		if tag.RowsAffected() == 0 {
			return errNoDigest
		}
		return streams.AppendOutbox(ctx, tx, s.source, event.NotificationRequested{NotificationID: d.ID, UserID: d.UserID, At: now})
	})
	if errors.Is(err, errNoDigest) {
		return false, nil
	}
	return err == nil, err
}

// digestItems loads what a digest holds: each notification in it, oldest first per
// monitor, with the facts its evaluation saw.
func digestItems(ctx context.Context, tx pgx.Tx, digestID string) ([]app.DigestItem, error) {
	rows, err := tx.Query(ctx, `
		SELECT n.monitor_id::text, m.name, n.from_state, n.to_state, coalesce(e.finished_at, n.created_at),
		       coalesce(n.evaluation_id::text, ''), e.started_at,
		       ARRAY(SELECT f->>'name' FROM jsonb_array_elements(m.spec->'facts') f)
		FROM notifications n
		JOIN monitors m ON m.id = n.monitor_id
		LEFT JOIN evaluations e ON e.id = n.evaluation_id
		WHERE n.digest_id = $1
		ORDER BY lower(m.name), m.id, coalesce(e.finished_at, n.created_at)
		LIMIT 500`, digestID)
	if err != nil {
		return nil, fmt.Errorf("digest items: %w", translate(err))
	}
	type item struct {
		app.DigestItem
		evaluationID string
		startedAt    *time.Time
		keys         []string
	}
	items, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (item, error) {
		var it item
		err := r.Scan(&it.MonitorID, &it.MonitorName, &it.From, &it.To, &it.At, &it.evaluationID, &it.startedAt, &it.keys)
		return it, err
	})
	if err != nil {
		return nil, fmt.Errorf("digest items: %w", translate(err))
	}
	out := make([]app.DigestItem, 0, len(items))
	for _, it := range items {
		if it.evaluationID != "" && it.startedAt != nil {
			facts, err := factsOfEvaluation(ctx, tx, it.MonitorID, it.evaluationID, it.keys, *it.startedAt, it.At)
			if err != nil {
				return nil, err
			}
			it.Facts = facts
		}
		out = append(out, it.DigestItem)
	}
	return out, nil
}

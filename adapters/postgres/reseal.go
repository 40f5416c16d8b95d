package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Resealer re-encrypts secrets at rest with its current key; *keyring.Keyring satisfies it.
type Resealer interface {
	Sealer
	// SealedByCurrent reports whether sealed was sealed by the key that seals now.
	SealedByCurrent(sealed string) bool
}

// ResealReport is what a rotation of the webhook secrets found and did.
type ResealReport struct {
	Checked    int      `json:"checked"`    // webhook secrets looked at
	Current    int      `json:"current"`    // already sealed by the current key
	Resealed   int      `json:"resealed"`   // sealed again by it (or, in a dry run, to be)
	Unreadable []string `json:"unreadable"` // ids of actions whose secret no configured key opens
}

// ResealBatchDefault is how many actions one transaction of a rotation covers.
const ResealBatchDefault = 500

// ResealWebhookSecrets seals again, with box's current key, every webhook secret sealed by
// another one, so the old key can leave VIGIL_DATA_KEYS. It walks the actions in id order,
// a batch per transaction, and changes a secret only if it is still the value it read (an
// action edited meanwhile keeps its new secret). A secret that no configured key opens is
// left as it is and reported. With dry, it counts what it would do. progress follows each
// batch.
func ResealWebhookSecrets(ctx context.Context, pool *pgxpool.Pool, box Resealer, batch int, dry bool,
	progress func(ResealReport)) (ResealReport, error) {
	if batch <= 0 {
		batch = ResealBatchDefault
	}
	rep := ResealReport{Unreadable: []string{}}
	after := "00000000-0000-0000-0000-000000000000"
	for {
		type row struct{ id, sealed string }
		rows, err := pool.Query(ctx, `
			SELECT id::text, config->>'secret' FROM actions
			WHERE type = 'webhook' AND config ? 'secret' AND id > $1::uuid
			ORDER BY id LIMIT $2`, after, batch)
		if err != nil {
			return rep, fmt.Errorf("read webhook secrets: %w", translate(err))
		}
		list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
			var x row
			return x, r.Scan(&x.id, &x.sealed)
		})
		if err != nil {
			return rep, fmt.Errorf("read webhook secrets: %w", translate(err))
		}
		if len(list) == 0 {
			return rep, nil
		}
		err = InTx(ctx, pool, func(tx pgx.Tx) error {
			for _, r := range list {
				rep.Checked++
				if box.SealedByCurrent(r.sealed) {
					rep.Current++
					continue
				}
				plain, err := box.Open(r.sealed, []byte(r.id))
				if err != nil {
					rep.Unreadable = append(rep.Unreadable, r.id)
					continue
				}
				if dry {
					rep.Resealed++
					continue
				}
				again, err := box.Seal(plain, []byte(r.id))
				if err != nil {
					return fmt.Errorf("seal the secret of action %s: %w", r.id, err)
				}
				tag, err := tx.Exec(ctx, `
					UPDATE actions SET config = jsonb_set(config, '{secret}', to_jsonb($2::text))
					WHERE id = $1 AND config->>'secret' = $3`, r.id, again, r.sealed)
				if err != nil {
					return fmt.Errorf("store the secret of action %s: %w", r.id, translate(err))
				}
				if tag.RowsAffected() == 1 { // else the action got a new secret meanwhile, sealed by the current key
					rep.Resealed++
				}
			}
			return nil
		})
		if err != nil {
			return rep, err
		}
		after = list[len(list)-1].id
		if progress != nil {
			progress(rep)
		}
	}
}

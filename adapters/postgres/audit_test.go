package postgres_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/domain/account"
)

// TestAuditLogIsAppendOnly: ASVS 4.0.3 V7.3.3 (security logs protected from modification)
// and V7.3.4. The role the application connects as can add audit events but cannot
// change, delete or truncate them; deleting an account still clears it as the actor of its
// events, which is the one change the schema itself makes.
func TestAuditLogIsAppendOnly(t *testing.T) {
	t.Parallel()
	b := setupAccounts(t)
	ctx := context.Background()
	ann := b.createUser(t, "ann@example.com")
	require.NoError(t, b.audit.RecordAudit(ctx, account.AuditEvent{ID: newID(t), ActorID: ann.ID, Action: account.ActionLogin,
		Outcome: account.OutcomeSuccess, CreatedAt: b.now}))
	count := func() int {
		var n int
		require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM audit_log`).Scan(&n))
		return n
	}
	require.Equal(t, 1, count())

	for _, sql := range []string{
		`UPDATE audit_log SET outcome = 'failure'`,
		`UPDATE audit_log SET actor_user_id = NULL`, // only the foreign key's own action may
		`UPDATE audit_log SET metadata = '{"rewritten": true}'`,
		`DELETE FROM audit_log`,
		`TRUNCATE audit_log`,
	} {
		_, err := b.pool.Exec(ctx, sql)
		require.ErrorContains(t, err, "audit_log is append-only", sql)
	}
	var outcome string
	var actor *string
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT outcome, actor_user_id::text FROM audit_log`).Scan(&outcome, &actor))
	require.Equal(t, "success", outcome)
	require.NotNil(t, actor)

	// The account goes; its event stays, without an actor.
	_, err := b.pool.Exec(ctx, `DELETE FROM users WHERE id = $1`, ann.ID)
	require.NoError(t, err)
	require.Equal(t, 1, count())
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT outcome, actor_user_id::text FROM audit_log`).Scan(&outcome, &actor))
	require.Nil(t, actor)
	require.Equal(t, "success", outcome)
}

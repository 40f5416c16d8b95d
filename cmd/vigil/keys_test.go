package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/keyring"
	"github.com/vigilhq/vigil/adapters/postgres"
	"github.com/vigilhq/vigil/adapters/postgres/pgtest"
)

// TestKeysRotate: ASVS 4.0.3 V6.2.4 and V6.4.2 (keys can be rotated; secrets at rest are
// re-encrypted). `vigil keys rotate` seals every webhook secret again with the first key
// of VIGIL_DATA_KEYS, leaves the ones already sealed by it, says which ones no configured
// key opens (and fails, so the key is not removed), and a dry run changes nothing; after
// it, the old key can leave the configuration and every secret still opens.
func TestKeysRotate(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dbURL := pgtest.NewURL(t)
	pool, err := postgres.Open(ctx, postgres.PoolConfig{URL: dbURL, MaxConns: 2})
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	newKey := func(id string) (keyring.Key, string) {
		secret := make([]byte, keyring.KeySize)
		_, err := rand.Read(secret)
		require.NoError(t, err)
		return keyring.Key{ID: id, Secret: secret}, id + "=" + base64.StdEncoding.EncodeToString(secret)
	}
	oldKey, oldEnv := newKey("k2026")
	newerKey, newEnv := newKey("k2027")
	goneKey, _ := newKey("lost")
	var userID string
	require.NoError(t, pool.QueryRow(ctx, `INSERT INTO users (email, name, password_hash) VALUES ('ann@example.com', 'Ann', 'x') RETURNING id::text`).Scan(&userID))
	secrets := map[string]string{}
	insert := func(key keyring.Key, secret string) string {
		box, err := keyring.New([]keyring.Key{key})
		require.NoError(t, err)
		id := uuid.Must(uuid.NewV7()).String()
		sealed, err := box.Seal([]byte(secret), []byte(id))
		require.NoError(t, err)
		cfg, err := json.Marshal(map[string]string{"url": "https://hooks.example/" + id, "secret": sealed})
		require.NoError(t, err)
		_, err = pool.Exec(ctx, `INSERT INTO actions (id, user_id, name, type, config) VALUES ($1, $2, $3, 'webhook', $4)`,
			id, userID, "hook "+id[:8], cfg)
		require.NoError(t, err)
		secrets[id] = secret
		return id
	}
	for i := range 7 {
		insert(oldKey, fmt.Sprintf("whsec_old_%d", i))
	}
	insert(newerKey, "whsec_already_new")
	_, err = pool.Exec(ctx, `INSERT INTO actions (user_id, name, type, config) VALUES ($1, 'mail', 'email', '{"to":["ann@example.com"]}')`, userID)
	require.NoError(t, err)

	vigil := func(keys string, args ...string) (string, int) {
		env := map[string]string{"DATABASE_URL": dbURL, "VIGIL_DATA_KEYS": keys, "VIGIL_DATA_DIR": t.TempDir()}
		var out, errOut bytes.Buffer
		code := run(ctx, append([]string{"keys", "rotate"}, args...), func(k string) string { return env[k] }, &out, &errOut)
		return out.String() + errOut.String(), code
	}
	sealedBy := func() map[string]int {
		rows, err := pool.Query(ctx, `SELECT config->>'secret' FROM actions WHERE type = 'webhook'`)
		require.NoError(t, err)
		defer rows.Close()
		by := map[string]int{}
		for rows.Next() {
			var s string
			require.NoError(t, rows.Scan(&s))
			by[keyring.KeyID(s)]++
		}
		return by
	}

	out, code := vigil(newEnv+","+oldEnv, "-dry-run")
	require.Zero(t, code, out)
	require.Contains(t, out, `"checked":8,"current":1,"resealed":7`)
	require.Equal(t, map[string]int{"k2026": 7, "k2027": 1}, sealedBy(), "a dry run changes nothing")

	out, code = vigil(newEnv + "," + oldEnv)
	require.Zero(t, code, out)
	require.Contains(t, out, `"resealed":7`)
	require.Equal(t, map[string]int{"k2027": 8}, sealedBy())
	out, code = vigil(newEnv + "," + oldEnv)
	require.Zero(t, code, out)
	require.Contains(t, out, `"checked":8,"current":8,"resealed":0`, "a second run has nothing to do")

	// The old key can go: every secret opens with the new one alone, in its own row only.
	only, err := keyring.New([]keyring.Key{newerKey})
	require.NoError(t, err)
	store := postgres.NewActionStore(pool, only)
	for id, want := range secrets {
		got, err := store.WebhookSecret(ctx, userID, id)
		require.NoError(t, err, id)
		require.Equal(t, want, got)
	}

	// A secret no configured key opens is reported, kept, and fails the run.
	lost := insert(goneKey, "whsec_lost")
	out, code = vigil(newEnv)
	require.NotZero(t, code)
	require.Contains(t, out, lost)
	require.Equal(t, map[string]int{"k2027": 8, "lost": 1}, sealedBy())
}

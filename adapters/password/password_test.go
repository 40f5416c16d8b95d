package password_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/vigilhq/vigil/adapters/password"
)

func newHasher(t *testing.T) *password.Hasher {
	t.Helper()
	h, err := password.New(password.CostMin)
	require.NoError(t, err)
	return h
}

func TestHashAndCompare(t *testing.T) {
	t.Parallel()
	h := newHasher(t)
	hash, err := h.Hash("correct horse battery staple")
	require.NoError(t, err)
	require.NotContains(t, hash, "correct horse")

	ok, err := h.Compare(hash, "correct horse battery staple")
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = h.Compare(hash, "correct horse battery stapl")
	require.NoError(t, err)
	require.False(t, ok)

	again, err := h.Hash("correct horse battery staple")
	require.NoError(t, err)
	require.NotEqual(t, hash, again, "hashes are salted")
}

// bcrypt reads only 72 bytes; the SHA-256 pre-hash keeps the rest of the password.
func TestLongPasswordsDifferingAfterByte72DoNotMatch(t *testing.T) {
	t.Parallel()
	h := newHasher(t)
	common := strings.Repeat("a", 90)
	p1, p2 := common+"1111111111", common+"2222222222"
	require.Len(t, p1, 100)
	require.Len(t, p2, 100)

	hash1, err := h.Hash(p1)
	require.NoError(t, err)
	ok, err := h.Compare(hash1, p2)
	require.NoError(t, err)
	require.False(t, ok, "passwords differing after byte 72 must not match")
	ok, err = h.Compare(hash1, p1)
	require.NoError(t, err)
	require.True(t, ok)

	// Plain bcrypt would have accepted it: that is the bug the pre-hash avoids.
	plain, err := bcrypt.GenerateFromPassword([]byte(p1[:72]), bcrypt.MinCost)
	require.NoError(t, err)
	require.NoError(t, bcrypt.CompareHashAndPassword(plain, []byte(p1[:72])))
}

func TestPlainBcryptHashes(t *testing.T) {
	t.Parallel()
	h := newHasher(t)
	plain, err := bcrypt.GenerateFromPassword([]byte("seeded admin password"), bcrypt.MinCost)
	require.NoError(t, err)
	ok, err := h.Compare(string(plain), "seeded admin password")
	require.NoError(t, err)
	require.True(t, ok, "hashes written by plain bcrypt (vigil seed) still work")

	long := strings.Repeat("b", 72)
	plainLong, err := bcrypt.GenerateFromPassword([]byte(long), bcrypt.MinCost)
	require.NoError(t, err)
	ok, err = h.Compare(string(plainLong), long+"anything after byte 72")
	require.NoError(t, err)
	require.False(t, ok, "a plain hash never accepts input bcrypt would truncate")
}

func TestMalformedHash(t *testing.T) {
	t.Parallel()
	_, err := newHasher(t).Compare("not a hash", "whatever password")
	require.Error(t, err)
}

func TestCostLimits(t *testing.T) {
	t.Parallel()
	h, err := password.New(0)
	require.NoError(t, err)
	require.Equal(t, password.CostDefault, h.Cost())
	for _, bad := range []int{4, 9, 17, 31} {
		_, err := password.New(bad)
		require.Error(t, err, "cost %d", bad)
	}
	hash, err := newHasher(t).Hash("some long password")
	require.NoError(t, err)
	cost, err := bcrypt.Cost([]byte(strings.TrimPrefix(hash, "$sha256b64$")))
	require.NoError(t, err)
	require.Equal(t, password.CostMin, cost)
}

package streams

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestBackoffDelay(t *testing.T) {
	t.Parallel()
	low := func() float64 { return 0 }
	mid := func() float64 { return 0.5 }
	high := func() float64 { return 0.999999 }
	tests := []struct {
		deliveries uint64
		want       time.Duration
	}{
		{0, time.Second}, {1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second},
		{7, time.Minute}, // 64s, capped
		{100, time.Minute},
	}
	for _, tt := range tests {
		got := backoffDelay(time.Second, time.Minute, tt.deliveries, mid)
		require.Equal(t, tt.want, got, "deliveries %d", tt.deliveries)
		require.Equal(t, tt.want*8/10, backoffDelay(time.Second, time.Minute, tt.deliveries, low))
		require.InDelta(t, float64(tt.want)*1.2, float64(backoffDelay(time.Second, time.Minute, tt.deliveries, high)), float64(time.Millisecond))
	}
}

func TestErrorKinds(t *testing.T) {
	t.Parallel()
	base := errors.New("boom")
	p := Permanent(base)
	require.True(t, IsPermanent(p))
	require.True(t, IsPermanent(fmtWrap(p)))
	require.ErrorIs(t, p, base)
	require.False(t, IsPermanent(base))

	r := Retry(base, 3*time.Second)
	require.False(t, IsPermanent(r))
	require.ErrorIs(t, r, base)
	after, ok := retryAfter(fmtWrap(r))
	require.True(t, ok)
	require.Equal(t, 3*time.Second, after)
	_, ok = retryAfter(base)
	require.False(t, ok)
}

func fmtWrap(err error) error { return errors.Join(errors.New("context"), err) }

func TestTruncate(t *testing.T) {
	t.Parallel()
	require.Equal(t, "abc", truncate("abc", 5))
	require.Equal(t, "ab", truncate("abc", 2))
	require.Equal(t, "a", truncate("aé", 2), "never split a rune")
}

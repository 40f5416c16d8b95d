package streams_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/streams"
)

type observed struct {
	mu       sync.Mutex
	outcomes []string
}

func (o *observed) ObserveMessage(stream, consumer, outcome string, _ time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.outcomes = append(o.outcomes, stream+"/"+consumer+":"+outcome)
}

func (o *observed) list() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.outcomes...)
}

// TestRunObservesOutcomes checks that every delivery is reported once with how it ended.
func TestRunObservesOutcomes(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	b := setup(t, streams.TopologyConfig{})
	obs := &observed{}
	rec := &recorder{decide: func(n int) error {
		switch n {
		case 1:
			return errors.New("transient")
		case 2:
			return nil
		}
		return streams.Permanent(errors.New("bad"))
	}}
	b.run(t, rec.handle, streams.RunConfig{BackoffBase: 10 * time.Millisecond, Observer: obs})
	pub := streams.NewPublisher(b.js, "vigil/test")
	require.NoError(t, pub.Publish(ctx, monitorCreated()))
	require.Eventually(t, func() bool { return len(obs.list()) == 2 }, 5*time.Second, 10*time.Millisecond)
	require.NoError(t, pub.Publish(ctx, monitorCreated()))
	require.Eventually(t, func() bool { return len(obs.list()) == 3 }, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, []string{"MONITORS/scheduler:retry", "MONITORS/scheduler:ack", "MONITORS/scheduler:dead"}, obs.list())
}

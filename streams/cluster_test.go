package streams_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/streams"
	"github.com/vigilhq/vigil/streams/natstest"
)

func TestTopologyOnACluster(t *testing.T) {
	t.Parallel()
	c := natstest.StartCluster(t, 3)
	_, js := natstest.Connect(t, c.URLs())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := time.Now()
	require.NoError(t, streams.EnsureTopology(ctx, js, streams.TopologyConfig{Replicas: 3}))
	t.Logf("topology in %s", time.Since(start))
}

func TestTopologyOnAClusterConcurrently(t *testing.T) {
	t.Parallel()
	c := natstest.StartCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	errs := make(chan error, 5)
	start := time.Now()
	for range 5 {
		_, js := natstest.Connect(t, c.URLs())
		go func() { errs <- streams.EnsureTopology(ctx, js, streams.TopologyConfig{Replicas: 3}) }()
	}
	for range 5 {
		require.NoError(t, <-errs)
	}
	t.Logf("topology in %s", time.Since(start))
}

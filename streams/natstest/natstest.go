// Package natstest starts an embedded NATS server with JetStream for tests.
package natstest

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/vigilhq/vigil/streams"
)

// Start runs an embedded NATS server with JetStream on a random port, storing data in a
// temporary directory, and shuts it down when the test ends. It returns the client URL.
func Start(t testing.TB) (url string, srv *server.Server) {
	t.Helper()
	srv, err := streams.StartEmbedded(streams.EmbeddedConfig{
		Port:     -1,
		StoreDir: t.TempDir(),
		Logger:   zerolog.Nop(),
	})
	if err != nil {
		t.Fatalf("natstest: %v", err)
	}
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	return srv.ClientURL(), srv
}

// Connect dials url with streams.Connect and closes the connection when the test ends.
func Connect(t testing.TB, url string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, js, err := streams.Connect(url, t.Name())
	if err != nil {
		t.Fatalf("natstest: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc, js
}

// StartWithTopology starts a server, connects to it and creates Vigil's streams and consumers
// with cfg. It returns the client URL and a JetStream context.
func StartWithTopology(t testing.TB, cfg streams.TopologyConfig) (url string, js jetstream.JetStream) {
	t.Helper()
	url, _ = Start(t)
	_, js = Connect(t, url)
	if err := streams.EnsureTopology(context.Background(), js, cfg); err != nil {
		t.Fatalf("natstest: %v", err)
	}
	return url, js
}

// Cluster is a JetStream cluster of embedded servers on loopback, for tests of the
// distributed engine. Nodes can be killed and restarted on the same ports and stores.
type Cluster struct {
	t       testing.TB
	mu      sync.Mutex
	nodes   []*server.Server
	configs []streams.EmbeddedConfig
}

// StartCluster starts n clustered servers and waits until JetStream has a meta leader.
// They are shut down when the test ends.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	c := &Cluster{t: t, nodes: make([]*server.Server, n), configs: make([]streams.EmbeddedConfig, n)}
	routes := make([]string, n)
	ports := make([]int, n)
	for i := range n {
		ports[i] = freePort(t)
		routes[i] = fmt.Sprintf("nats-route://127.0.0.1:%d", freePort(t))
	}
	for i := range n {
		var routePort int
		fmt.Sscanf(routes[i], "nats-route://127.0.0.1:%d", &routePort)
		c.configs[i] = streams.EmbeddedConfig{Name: fmt.Sprintf("node-%d", i), Port: ports[i], StoreDir: t.TempDir(), Logger: zerolog.Nop(),
			Cluster: &streams.EmbeddedCluster{Name: "vigil-test", Port: routePort, Routes: routes}}
	}
	// Start all at once: each waits for the others' routes to elect a meta leader.
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.nodes[i], errs[i] = streams.StartEmbedded(c.configs[i])
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("natstest: %v", err)
		}
	}
	t.Cleanup(func() {
		for i := range n {
			c.Kill(i)
		}
	})
	_, js := Connect(t, c.URLs())
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := js.AccountInfo(ctx)
		cancel()
		if err == nil {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("natstest: the cluster has no JetStream meta leader: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// URLs returns the client URLs of every node, comma-separated, as NATS_URL takes them.
func (c *Cluster) URLs() string {
	urls := make([]string, len(c.configs))
	for i, cfg := range c.configs {
		urls[i] = fmt.Sprintf("nats://127.0.0.1:%d", cfg.Port)
	}
	return strings.Join(urls, ",")
}

// Kill shuts node i down, as a crash of its machine would (its store stays).
func (c *Cluster) Kill(i int) {
	c.mu.Lock()
	srv := c.nodes[i]
	c.nodes[i] = nil
	c.mu.Unlock()
	if srv != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
	}
}

// Restart starts node i again on its ports and store.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	srv, err := streams.StartEmbedded(c.configs[i])
	if err != nil {
		c.t.Fatalf("natstest: restart node %d: %v", i, err)
	}
	c.mu.Lock()
	c.nodes[i] = srv
	c.mu.Unlock()
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("natstest: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

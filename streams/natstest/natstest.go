// Package natstest starts an embedded NATS server with JetStream for tests.
package natstest

import (
	"context"
	"testing"

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

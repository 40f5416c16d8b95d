package streams

import (
	"cmp"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// Embedded server and client defaults.
const (
	// EmbeddedHostDefault keeps an embedded server private to the machine unless asked.
	EmbeddedHostDefault = "127.0.0.1"
	// EmbeddedReadyTimeout is how long StartEmbedded waits for the server to accept clients.
	EmbeddedReadyTimeout = 10 * time.Second
	// ReconnectWaitDefault is the pause between reconnect attempts of Connect.
	ReconnectWaitDefault = time.Second
)

// EmbeddedConfig configures StartEmbedded.
type EmbeddedConfig struct {
	// Host to listen on (default EmbeddedHostDefault).
	Host string
	// Port to listen on: -1 picks a random free port, 0 the NATS default 4222.
	Port int
	// StoreDir is where JetStream keeps its data; required.
	StoreDir string
	Logger   zerolog.Logger
	// Name names the server (default "vigil-embedded"); servers of one cluster need
	// distinct names.
	Name string
	// Cluster, when set, makes the server one node of a JetStream cluster.
	Cluster *EmbeddedCluster
	// LazySync turns off the fsync on every write, for measuring what it costs (vigil bench
	// pipeline -nats-lazy-sync): JetStream then syncs every two minutes, and an operating
	// system crash can lose messages it acknowledged. Never for real use.
	LazySync bool
}

// EmbeddedCluster joins an embedded server to a cluster (tests of the distributed engine).
type EmbeddedCluster struct {
	Name   string   // the cluster's name, the same on every node
	Host   string   // route listen host (default EmbeddedHostDefault)
	Port   int      // this node's route port
	Routes []string // nats-route://host:port of every node, this one included
}

// StartEmbedded starts a NATS server with JetStream in this process, storing data in
// cfg.StoreDir with an fsync on every write (the default lazy fsync can lose acknowledged
// messages on a crash), and returns it once it accepts connections. Stop it with Shutdown and
// WaitForShutdown. Its client URL is srv.ClientURL().
func StartEmbedded(cfg EmbeddedConfig) (*server.Server, error) {
	if cfg.StoreDir == "" {
		return nil, errors.New("start embedded nats: StoreDir is required")
	}
	host := cfg.Host
	if host == "" {
		host = EmbeddedHostDefault
	}
	name := cfg.Name
	if name == "" {
		name = "vigil-embedded"
	}
	opts := &server.Options{
		ServerName: name,
		Host:       host,
		Port:       cfg.Port,
		JetStream:  true,
		StoreDir:   cfg.StoreDir,
		SyncAlways: !cfg.LazySync,
		NoSigs:     true,
	}
	if c := cfg.Cluster; c != nil {
		opts.Cluster = server.ClusterOpts{Name: c.Name, Host: cmp.Or(c.Host, host), Port: c.Port}
		opts.Routes = server.RoutesFromStr(strings.Join(c.Routes, ","))
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("start embedded nats: %w", err)
	}
	srv.SetLoggerV2(natsLogger{cfg.Logger.With().Str("component", "nats").Logger()}, false, false, false)
	go srv.Start()
	if !srv.ReadyForConnections(EmbeddedReadyTimeout) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("start embedded nats on %s:%d: not ready after %s", host, cfg.Port, EmbeddedReadyTimeout)
	}
	return srv, nil
}

// Connect dials NATS at url as name, reconnecting forever every ReconnectWaitDefault, and
// returns the connection and a JetStream context on it. Close the connection when done.
func Connect(url, name string) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := nats.Connect(url,
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(ReconnectWaitDefault),
	)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to nats %s: %w", url, err)
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(PublishTimeoutDefault))
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("jetstream on %s: %w", url, err)
	}
	return nc, js, nil
}

// natsLogger sends the server's log lines to zerolog.
type natsLogger struct{ log zerolog.Logger }

func (l natsLogger) Noticef(format string, v ...any) { l.log.Info().Msgf(format, v...) }
func (l natsLogger) Warnf(format string, v ...any)   { l.log.Warn().Msgf(format, v...) }
func (l natsLogger) Fatalf(format string, v ...any)  { l.log.Error().Msgf(format, v...) }
func (l natsLogger) Errorf(format string, v ...any)  { l.log.Error().Msgf(format, v...) }
func (l natsLogger) Debugf(format string, v ...any)  { l.log.Debug().Msgf(format, v...) }
func (l natsLogger) Tracef(format string, v ...any)  { l.log.Trace().Msgf(format, v...) }

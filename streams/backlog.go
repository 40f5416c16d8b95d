package streams

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// Backlog is one durable consumer's backlog.
type Backlog struct {
	Stream, Consumer string
	Pending          uint64 // messages not yet delivered: the consumer's lag
	AckPending       uint64 // delivered, not yet acknowledged
	Redelivered      uint64 // delivered more than once, not yet acknowledged
}

// Backlogs reads the backlog of every durable consumer of the topology, for the metrics.
// A consumer that does not exist (yet) is left out.
func Backlogs(ctx context.Context, js jetstream.JetStream) ([]Backlog, error) {
	var out []Backlog
	for _, c := range Consumers() {
		cons, err := js.Consumer(ctx, c.Stream, c.Name)
		if err != nil {
			if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
				continue
			}
			return out, fmt.Errorf("consumer %s on %s: %w", c.Name, c.Stream, err)
		}
		info, err := cons.Info(ctx)
		if err != nil {
			return out, fmt.Errorf("consumer %s on %s: %w", c.Name, c.Stream, err)
		}
		out = append(out, Backlog{Stream: c.Stream, Consumer: c.Name, Pending: info.NumPending,
			AckPending: uint64(max(info.NumAckPending, 0)), Redelivered: uint64(max(info.NumRedelivered, 0))})
	}
	return out, nil
}

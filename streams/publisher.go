package streams

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigilhq/vigil/domain/event"
)

// PublishTimeoutDefault bounds PublishAll and the relay's batches when the context has no
// deadline of its own.
const PublishTimeoutDefault = 10 * time.Second

// Publisher publishes domain events to JetStream as CloudEvents, always with Nats-Msg-Id so
// JetStream drops duplicates. It is safe for concurrent use.
type Publisher struct {
	js     jetstream.JetStream
	source string
}

// NewPublisher returns a publisher whose messages name source (e.g. "vigil/scheduler") as
// their CloudEvents source.
func NewPublisher(js jetstream.JetStream, source string) *Publisher {
	return &Publisher{js: js, source: source}
}

// Publish publishes one event and waits for the stream's ack.
func (p *Publisher) Publish(ctx context.Context, ev event.Event) error {
	m, err := NewMsg(ctx, ev, p.source)
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	return p.PublishMsg(ctx, m)
}

// PublishMsg publishes a prepared message (the outbox relay's path) and waits for the
// stream's ack. The message must carry a Nats-Msg-Id header.
func (p *Publisher) PublishMsg(ctx context.Context, m *nats.Msg) error {
	id := m.Header.Get(HeaderMsgID)
	if id == "" {
		return fmt.Errorf("publish %s: missing %s header", m.Subject, HeaderMsgID)
	}
	if _, err := p.js.PublishMsg(ctx, m, jetstream.WithMsgID(id)); err != nil {
		return fmt.Errorf("publish %s %s: %w", m.Subject, id, err)
	}
	return nil
}

// PublishAll publishes the events asynchronously, waits for every ack and returns the first
// error. When ctx has no deadline, PublishTimeoutDefault bounds the wait.
func (p *Publisher) PublishAll(ctx context.Context, evs []event.Event) error {
	msgs := make([]*nats.Msg, 0, len(evs))
	for _, ev := range evs {
		m, err := NewMsg(ctx, ev, p.source)
		if err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		msgs = append(msgs, m)
	}
	return firstError(p.publishMsgs(ctx, msgs))
}

func firstError(errs []error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// publishMsgs publishes msgs asynchronously, in order, and waits for every ack. It returns one
// error per message (nil when the stream acknowledged it).
func (p *Publisher) publishMsgs(ctx context.Context, msgs []*nats.Msg) []error {
	errs := make([]error, len(msgs))
	if len(msgs) == 0 {
		return errs
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, PublishTimeoutDefault)
		defer cancel()
	}
	futures := make([]jetstream.PubAckFuture, len(msgs))
	for i, m := range msgs {
		id := m.Header.Get(HeaderMsgID)
		if id == "" {
			errs[i] = fmt.Errorf("publish %s: missing %s header", m.Subject, HeaderMsgID)
			continue
		}
		f, err := p.js.PublishMsgAsync(m, jetstream.WithMsgID(id))
		if err != nil {
			errs[i] = fmt.Errorf("publish %s %s: %w", m.Subject, id, err)
			continue
		}
		futures[i] = f
	}
	for i, f := range futures {
		if f == nil {
			continue
		}
		select {
		case <-f.Ok():
		case err := <-f.Err():
			errs[i] = fmt.Errorf("publish %s %s: %w", msgs[i].Subject, msgs[i].Header.Get(HeaderMsgID), err)
		case <-ctx.Done():
			errs[i] = fmt.Errorf("publish %s %s: wait for ack: %w", msgs[i].Subject, msgs[i].Header.Get(HeaderMsgID), ctx.Err())
		}
	}
	return errs
}

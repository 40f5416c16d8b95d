package streams

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigilhq/vigil/domain/event"
)

// CloudEvents 1.0 binary-mode header names, and the other headers Vigil sets.
const (
	HeaderSpecVersion = "ce-specversion"
	HeaderID          = "ce-id"
	HeaderType        = "ce-type"
	HeaderSource      = "ce-source"
	HeaderSubject     = "ce-subject"
	HeaderTime        = "ce-time"
	HeaderContentType = "content-type"
	HeaderTraceparent = "traceparent"
	HeaderMsgID       = jetstream.MsgIDHeader // Nats-Msg-Id

	// SpecVersion is the CloudEvents version of every Vigil message.
	SpecVersion = "1.0"
	// ContentTypeJSON is the content type of every Vigil message body.
	ContentTypeJSON = "application/json"
)

// Envelope is a decoded CloudEvents message: its attributes and JSON data.
type Envelope struct {
	ID          string
	Type        string
	Source      string
	Subject     string
	Time        time.Time
	Data        []byte
	Traceparent string
}

// NewMsg builds the CloudEvents binary-mode NATS message for ev, published by source (the
// publishing role, e.g. "vigil/scheduler"). The body is json.Marshal(ev); Nats-Msg-Id is the
// event id so JetStream drops duplicates.
func NewMsg(ctx context.Context, ev event.Event, source string) (*nats.Msg, error) {
	subject, err := Subject(ev)
	if err != nil {
		return nil, err
	}
	h, err := ceHeaders(ctx, ev, source)
	if err != nil {
		return nil, err
	}
	data, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encode %s %s: %w", ev.EventType(), ev.EventID(), err)
	}
	m := nats.NewMsg(subject)
	m.Data = data
	for k, v := range h {
		m.Header.Set(k, v)
	}
	return m, nil
}

// ceHeaders returns the message headers of ev as a flat map (also stored in the outbox).
func ceHeaders(ctx context.Context, ev event.Event, source string) (map[string]string, error) {
	id := ev.EventID()
	if id == "" {
		return nil, fmt.Errorf("event %s has no id", ev.EventType())
	}
	h := map[string]string{
		HeaderSpecVersion: SpecVersion,
		HeaderID:          id,
		HeaderType:        ev.EventType(),
		HeaderSource:      source,
		HeaderSubject:     ev.AggregateID(),
		HeaderContentType: ContentTypeJSON,
		HeaderMsgID:       id,
	}
	if t := ev.OccurredAt(); !t.IsZero() {
		h[HeaderTime] = t.UTC().Format(time.RFC3339Nano)
	}
	if tp := Traceparent(ctx); tp != "" {
		h[HeaderTraceparent] = tp
	}
	return h, nil
}

// DecodeEnvelope reads a CloudEvents binary-mode message. It fails when ce-id or ce-type is
// missing or ce-time is not RFC 3339.
func DecodeEnvelope(h nats.Header, data []byte) (Envelope, error) {
	env := Envelope{
		ID:          h.Get(HeaderID),
		Type:        h.Get(HeaderType),
		Source:      h.Get(HeaderSource),
		Subject:     h.Get(HeaderSubject),
		Data:        data,
		Traceparent: h.Get(HeaderTraceparent),
	}
	var errs []error
	if env.ID == "" {
		errs = append(errs, errors.New("missing "+HeaderID))
	}
	if env.Type == "" {
		errs = append(errs, errors.New("missing "+HeaderType))
	}
	if s := h.Get(HeaderTime); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			errs = append(errs, fmt.Errorf("bad %s: %w", HeaderTime, err))
		}
		env.Time = t
	}
	if err := errors.Join(errs...); err != nil {
		return Envelope{}, fmt.Errorf("decode envelope: %w", err)
	}
	return env, nil
}

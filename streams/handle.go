package streams

import (
	"context"

	"github.com/vigilhq/vigil/domain"
)

// Decoded is a message with its data decoded into a T.
type Decoded[T any] struct {
	Message
	Data T
}

// Handle returns a Handler that decodes each message's data into a T and calls fn with it.
// A message whose data is not a T is dead-lettered. fn's error settles the message through
// Settle.
func Handle[T any](fn func(ctx context.Context, m Decoded[T]) error) Handler {
	return func(ctx context.Context, m Message) error {
		d := Decoded[T]{Message: m}
		if err := m.Decode(&d.Data); err != nil {
			return Permanent(err)
		}
		return Settle(fn(ctx, d))
	}
}

// HandleBatch returns a BatchHandler that decodes every message's data into a T and calls
// fn with the batch. A batch holding a message whose data is not a T fails as Permanent, so
// the runner splits it until that message is dead-lettered alone. fn's error settles the
// batch through SettleBatch.
func HandleBatch[T any](fn func(ctx context.Context, ms []Decoded[T]) error) BatchHandler {
	return func(ctx context.Context, ms []Message) error {
		ds := make([]Decoded[T], len(ms))
		for i, m := range ms {
			ds[i].Message = m
			if err := m.Decode(&ds[i].Data); err != nil {
				return Permanent(err)
			}
		}
		return SettleBatch(fn(ctx, ds))
	}
}

// Settle maps a use case's error on one message to how the message is settled, in one place
// for every consumer:
//
//	nil, ENOTFOUND        -> ack (what the message is about is gone: nothing left to do)
//	EINVALID              -> Permanent: no redelivery can fix it; dead-lettered
//	Retry, Permanent      -> as they say
//	anything else         -> redelivered with backoff
func Settle(err error) error {
	if err == nil || IsPermanent(err) {
		return err
	}
	if _, ok := retryAfter(err); ok {
		return err
	}
	switch domain.ErrorCode(err) {
	case domain.ENOTFOUND:
		return nil
	case domain.EINVALID:
		return Permanent(err)
	}
	return err
}

// SettleBatch maps a use case's error on a whole batch like Settle, except that ENOTFOUND
// is not an ack: a batch use case settles the messages whose subject is gone itself, and an
// ENOTFOUND for the whole batch would ack the others unhandled.
func SettleBatch(err error) error {
	if err != nil && !IsPermanent(err) && domain.ErrorCode(err) == domain.EINVALID {
		if _, ok := retryAfter(err); !ok {
			return Permanent(err)
		}
	}
	return err
}

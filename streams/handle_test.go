package streams_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/event"
	"github.com/vigilhq/vigil/streams"
)

func TestSettle(t *testing.T) {
	t.Parallel()
	invalid := fmt.Errorf("record: %w", &domain.Error{Code: domain.EINVALID, Message: "bad spec"})
	notFound := fmt.Errorf("load monitor: %w", domain.ErrNotFound)
	plain := errors.New("connection reset")
	retry := streams.Retry(plain, time.Second)
	for _, tc := range []struct {
		name            string
		err             error
		single, batch   error // nil: ack
		permanent, same bool  // for the single settle: Permanent, or err unchanged
	}{
		{name: "nil"},
		{name: "not found acks one message", err: notFound, single: nil, batch: notFound},
		{name: "invalid is permanent", err: invalid, permanent: true},
		{name: "plain error backs off", err: plain, single: plain, batch: plain, same: true},
		{name: "retry stays retry", err: retry, single: retry, batch: retry, same: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, gotBatch := streams.Settle(tc.err), streams.SettleBatch(tc.err)
			switch {
			case tc.permanent:
				require.True(t, streams.IsPermanent(got))
				require.True(t, streams.IsPermanent(gotBatch))
				require.ErrorIs(t, got, tc.err)
			default:
				require.Equal(t, tc.single, got)
				require.Equal(t, tc.batch, gotBatch)
			}
		})
	}
}

func TestHandleDecodes(t *testing.T) {
	t.Parallel()
	ev := monitorCreated()
	env := envelopeOf(t, ev)
	var got event.MonitorCreated
	h := streams.Handle(func(_ context.Context, m streams.Decoded[event.MonitorCreated]) error {
		got = m.Data
		return nil
	})
	err := h(context.Background(), streams.Message{Envelope: env})
	require.NoError(t, err)
	require.Equal(t, ev.MonitorID, got.MonitorID)

	env.Data = []byte(`{"monitor_id": 7}`)
	err = h(context.Background(), streams.Message{Envelope: env})
	require.True(t, streams.IsPermanent(err), "data that is not the type is dead-lettered: %v", err)

	hb := streams.HandleBatch(func(context.Context, []streams.Decoded[event.MonitorCreated]) error { return nil })
	good := envelopeOf(t, ev)
	err = hb(context.Background(), []streams.Message{{Envelope: good}, {Envelope: env}})
	require.True(t, streams.IsPermanent(err), "a batch with undecodable data fails so it is split: %v", err)
}

// envelopeOf is the envelope a consumer sees for ev.
func envelopeOf(t *testing.T, ev event.Event) streams.Envelope {
	t.Helper()
	msg, err := streams.NewMsg(context.Background(), ev, "vigil/test")
	require.NoError(t, err)
	env, err := streams.DecodeEnvelope(msg.Header, msg.Data)
	require.NoError(t, err)
	return env
}

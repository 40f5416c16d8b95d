package streams

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// DeadReasonTimedOut marks a message whose last allowed delivery was never acknowledged:
// the process handling it died or hung. The max-deliveries advisory reports it.
const DeadReasonTimedOut = "timed_out"

// DeadLetter is one message in DEADLETTER.
type DeadLetter struct {
	Seq        uint64    // its sequence in DEADLETTER
	Time       time.Time // when it was dead-lettered
	Stream     string    // the stream it came from
	Consumer   string    // the consumer that gave up on it
	Subject    string    // its original subject
	StreamSeq  uint64    // its sequence in Stream
	Deliveries uint64
	Reason     string // DeadReasonPermanent, DeadReasonMaxDeliver or DeadReasonTimedOut
	Error      string
	EventID    string
	EventType  string
	Header     nats.Header
	Data       []byte
}

// DeadLetterFilter selects dead letters; zero fields select everything.
type DeadLetterFilter struct {
	Stream string    // only those from this stream
	Since  time.Time // only those dead-lettered at or after
	Seq    uint64    // only this one
	Limit  int       // at most this many, oldest first
}

// DeadLetters lists, shows, replays and purges DEADLETTER, for operators.
type DeadLetters struct {
	js jetstream.JetStream
}

// NewDeadLetters returns the dead letters of js.
func NewDeadLetters(js jetstream.JetStream) *DeadLetters { return &DeadLetters{js: js} }

// List returns the dead letters f selects, oldest first.
func (d *DeadLetters) List(ctx context.Context, f DeadLetterFilter) ([]DeadLetter, error) {
	if f.Seq != 0 {
		dl, err := d.Get(ctx, f.Seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		if f.Stream != "" && dl.Stream != f.Stream {
			return nil, nil
		}
		return []DeadLetter{dl}, nil
	}
	s, err := d.js.Stream(ctx, StreamDeadLetter)
	if err != nil {
		return nil, fmt.Errorf("dead letters: %w", err)
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{"vigil.dead.>"}}
	if f.Stream != "" {
		cfg.FilterSubjects = []string{"vigil.dead." + f.Stream + ".>"}
	}
	if !f.Since.IsZero() {
		since := f.Since
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &since
	}
	cons, err := s.OrderedConsumer(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("dead letters: %w", err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("dead letters: %w", err)
	}
	// Fetch exactly what is there, so no fetch waits for messages that will not come.
	left := int(min(info.NumPending, math.MaxInt32)) // #nosec G115 -- bounded just before
	if f.Limit > 0 {
		left = min(left, f.Limit)
	}
	var out []DeadLetter
	for left > 0 {
		batch := min(left, 100)
		msgs, err := cons.Fetch(batch, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return nil, fmt.Errorf("dead letters: %w", err)
		}
		n := 0
		for msg := range msgs.Messages() {
			n++
			md, err := msg.Metadata()
			if err != nil {
				return nil, fmt.Errorf("dead letters: %w", err)
			}
			out = append(out, deadLetterOf(md.Sequence.Stream, md.Timestamp, msg.Subject(), msg.Headers(), msg.Data()))
		}
		if err := msgs.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return nil, fmt.Errorf("dead letters: %w", err)
		}
		if n == 0 {
			break // deleted meanwhile
		}
		left -= n
	}
	return out, nil
}

// Get returns the dead letter with sequence seq (jetstream.ErrMsgNotFound when there is none).
func (d *DeadLetters) Get(ctx context.Context, seq uint64) (DeadLetter, error) {
	s, err := d.js.Stream(ctx, StreamDeadLetter)
	if err != nil {
		return DeadLetter{}, fmt.Errorf("dead letters: %w", err)
	}
	raw, err := s.GetMsg(ctx, seq)
	if err != nil {
		return DeadLetter{}, fmt.Errorf("dead letter %d: %w", seq, err)
	}
	return deadLetterOf(raw.Sequence, raw.Time, raw.Subject, raw.Header, raw.Data), nil
}

// Replay publishes each dead letter f selects again to its original subject, with its
// original headers and a new message id (so JetStream does not drop it as a duplicate), and
// then deletes it from DEADLETTER. Consumers are idempotent, so a message that had in fact
// been handled changes nothing. It returns how many it replayed.
func (d *DeadLetters) Replay(ctx context.Context, f DeadLetterFilter) (int, error) {
	return d.remove(ctx, f, func(dl DeadLetter) error {
		h := nats.Header{}
		for k, vs := range dl.Header {
			if strings.HasPrefix(k, "Vigil-Dead-") || k == HeaderMsgID {
				continue
			}
			h[k] = vs
		}
		id := dl.EventID + ":replay:" + strconv.FormatUint(dl.Seq, 10)
		h.Set(HeaderMsgID, id)
		opts := []jetstream.PublishOpt{jetstream.WithMsgID(id)}
		if dl.Stream != "" {
			opts = append(opts, jetstream.WithExpectStream(dl.Stream))
		}
		if _, err := d.js.PublishMsg(ctx, &nats.Msg{Subject: dl.Subject, Header: h, Data: dl.Data}, opts...); err != nil {
			return fmt.Errorf("replay dead letter %d to %s: %w", dl.Seq, dl.Subject, err)
		}
		return nil
	})
}

// Purge deletes the dead letters f selects and returns how many.
func (d *DeadLetters) Purge(ctx context.Context, f DeadLetterFilter) (int, error) {
	return d.remove(ctx, f, func(DeadLetter) error { return nil })
}

// remove runs before on each dead letter f selects and, when it succeeds, deletes the dead
// letter; it returns how many it deleted.
func (d *DeadLetters) remove(ctx context.Context, f DeadLetterFilter, before func(DeadLetter) error) (int, error) {
	dls, err := d.List(ctx, f)
	if err != nil {
		return 0, err
	}
	s, err := d.js.Stream(ctx, StreamDeadLetter)
	if err != nil {
		return 0, fmt.Errorf("dead letters: %w", err)
	}
	for i, dl := range dls {
		if err := before(dl); err != nil {
			return i, err
		}
		if err := s.DeleteMsg(ctx, dl.Seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return i, fmt.Errorf("delete dead letter %d: %w", dl.Seq, err)
		}
	}
	return len(dls), nil
}

// deadLetterOf reads a DEADLETTER message.
func deadLetterOf(seq uint64, at time.Time, subject string, h nats.Header, data []byte) DeadLetter {
	dl := DeadLetter{Seq: seq, Time: at, Subject: h.Get(HeaderDeadSubject), Reason: h.Get(HeaderDeadReason),
		Error: h.Get(HeaderDeadError), EventID: h.Get(HeaderID), EventType: h.Get(HeaderType), Header: h, Data: data}
	dl.StreamSeq, _ = strconv.ParseUint(h.Get(HeaderDeadStreamSeq), 10, 64)
	dl.Deliveries, _ = strconv.ParseUint(h.Get(HeaderDeadDeliveries), 10, 64)
	// vigil.dead.<STREAM>.<consumer>
	if parts := strings.SplitN(strings.TrimPrefix(subject, "vigil.dead."), ".", 2); len(parts) == 2 {
		dl.Stream, dl.Consumer = parts[0], parts[1]
	}
	return dl
}

// maxDeliveriesAdvisory is what JetStream publishes when a message reached its consumer's
// MaxDeliver without being acknowledged.
type maxDeliveriesAdvisory struct {
	Stream     string `json:"stream"`
	Consumer   string `json:"consumer"`
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries uint64 `json:"deliveries"`
}

// AdvisoryMaxDeliveries is the subject of JetStream's max-deliveries advisories.
const AdvisoryMaxDeliveries = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.>"

// WatchMaxDeliveries copies to DEADLETTER every message of Vigil's streams whose last
// allowed delivery was never acknowledged (the process died or hung): the runner cannot,
// as nobody is left to see the failure. It runs until ctx ends. Several processes may watch
// at once: the copies have the runner's message id, so each is stored once.
func WatchMaxDeliveries(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, log zerolog.Logger) error {
	log = log.With().Str("component", "dead_letter_watch").Logger()
	advisories := make(chan *nats.Msg, 256)
	sub, err := nc.ChanSubscribe(AdvisoryMaxDeliveries, advisories)
	if err != nil {
		return fmt.Errorf("watch max deliveries: %w", err)
	}
	defer sub.Unsubscribe() //nolint:errcheck // on the way out
	for {
		select {
		case <-ctx.Done():
			return nil
		case m := <-advisories:
			var a maxDeliveriesAdvisory
			if err := json.Unmarshal(m.Data, &a); err != nil || a.Stream == "" || a.Stream == StreamDeadLetter {
				continue
			}
			if err := copyTimedOut(ctx, js, a); err != nil && ctx.Err() == nil {
				log.Error().Err(err).Str("stream", a.Stream).Str("consumer", a.Consumer).Uint64("stream_seq", a.StreamSeq).
					Msg("copy a message whose deliveries ran out to DEADLETTER")
			} else if err == nil {
				log.Warn().Str("stream", a.Stream).Str("consumer", a.Consumer).Uint64("stream_seq", a.StreamSeq).
					Msg("message dead-lettered: its last delivery was never acknowledged")
			}
		}
	}
}

func copyTimedOut(ctx context.Context, js jetstream.JetStream, a maxDeliveriesAdvisory) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, a.Stream)
	if err != nil {
		return err
	}
	raw, err := s.GetMsg(ctx, a.StreamSeq)
	if err != nil {
		return err
	}
	dead := deadLetterMsg(raw.Header, raw.Data, a.Stream, a.Consumer, raw.Subject, a.StreamSeq, a.Deliveries,
		DeadReasonTimedOut, "The last allowed delivery was never acknowledged: the process handling it died or hung.")
	_, err = js.PublishMsg(ctx, dead, jetstream.WithMsgID(dead.Header.Get(HeaderMsgID)), jetstream.WithExpectStream(StreamDeadLetter))
	return err
}

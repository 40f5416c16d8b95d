package streams

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Stream names. They are frozen: data lives under them.
const (
	// StreamMonitors holds monitor lifecycle events on vigil.monitors.>.
	StreamMonitors = "MONITORS"
	// StreamEvaluations holds due and completed evaluations on vigil.evaluations.>.
	StreamEvaluations = "EVALUATIONS"
	// StreamStates holds monitor state changes on vigil.states.>.
	StreamStates = "STATES"
	// StreamNotifications holds notification requests on vigil.notifications.>.
	StreamNotifications = "NOTIFICATIONS"
	// StreamDeadLetter holds copies of messages consumers gave up on, on vigil.dead.>.
	StreamDeadLetter = "DEADLETTER"
)

// Durable consumer names. They are frozen: renaming a durable replays its stream.
const (
	// ConsumerScheduler reads MONITORS, filter vigil.monitors.>.
	ConsumerScheduler = "scheduler"
	// ConsumerEvaluator reads EVALUATIONS, filter vigil.evaluations.due.>.
	ConsumerEvaluator = "evaluator"
	// ConsumerRecorder reads EVALUATIONS, filter vigil.evaluations.completed.>.
	ConsumerRecorder = "recorder"
	// ConsumerMatcher reads STATES, filter vigil.states.changed.>.
	ConsumerMatcher = "matcher"
	// ConsumerMailer reads NOTIFICATIONS, filter vigil.notifications.email.>.
	ConsumerMailer = "mailer"
	// ConsumerWebhooks reads NOTIFICATIONS, filter vigil.notifications.webhook.>.
	ConsumerWebhooks = "webhooks"
)

// Topology defaults, used for TopologyConfig fields left zero.
const (
	// ReplicasDefault is the stream replica count for a single server.
	ReplicasDefault = 1
	// MaxAgeDefault is how long streams keep messages for replay.
	MaxAgeDefault = 7 * 24 * time.Hour
	// DuplicateWindowDefault is how long JetStream remembers message ids to drop duplicates.
	DuplicateWindowDefault = 2 * time.Minute
	// ConsumerMaxDeliverDefault is how many times a message is delivered before it is
	// dead-lettered.
	ConsumerMaxDeliverDefault = 8
	// ConsumerMaxAckPendingDefault bounds the unacknowledged messages of one consumer.
	ConsumerMaxAckPendingDefault = 1000
	// AckWaitDefault is how long a consumer waits for an ack before redelivering.
	AckWaitDefault = 30 * time.Second
	// AckWaitEvaluator is the evaluator's ack wait: AI calls are slow.
	AckWaitEvaluator = 60 * time.Second
)

// TopologyConfig tunes EnsureTopology. Zero values take the ...Default constants.
type TopologyConfig struct {
	Replicas        int
	MaxAge          time.Duration
	DuplicateWindow time.Duration
	// MaxDeliver overrides ConsumerMaxDeliverDefault (tests use a small value).
	MaxDeliver int
}

func (c TopologyConfig) withDefaults() TopologyConfig {
	if c.Replicas <= 0 {
		c.Replicas = ReplicasDefault
	}
	if c.MaxAge <= 0 {
		c.MaxAge = MaxAgeDefault
	}
	if c.DuplicateWindow <= 0 {
		c.DuplicateWindow = DuplicateWindowDefault
	}
	if c.MaxDeliver <= 0 {
		c.MaxDeliver = ConsumerMaxDeliverDefault
	}
	return c
}

// StreamSpec describes one stream of the topology.
type StreamSpec struct {
	Name        string
	Subjects    []string
	Description string
}

// ConsumerSpec describes one durable pull consumer of the topology.
type ConsumerSpec struct {
	Stream        string
	Name          string
	FilterSubject string
	AckWait       time.Duration
}

// Streams returns the streams EnsureTopology creates.
func Streams() []StreamSpec {
	return []StreamSpec{
		{StreamMonitors, []string{"vigil.monitors.>"}, "Monitor created, updated and deleted events."},
		{StreamEvaluations, []string{"vigil.evaluations.>"}, "Evaluations due and completed."},
		{StreamStates, []string{"vigil.states.>"}, "Monitor state changes."},
		{StreamNotifications, []string{"vigil.notifications.>"}, "Notifications to deliver."},
		{StreamDeadLetter, []string{"vigil.dead.>"}, "Messages consumers gave up on, per stream and consumer."},
	}
}

// Consumers returns the durable pull consumers EnsureTopology creates.
func Consumers() []ConsumerSpec {
	return []ConsumerSpec{
		{StreamMonitors, ConsumerScheduler, "vigil.monitors.>", AckWaitDefault},
		{StreamEvaluations, ConsumerEvaluator, "vigil.evaluations.due.>", AckWaitEvaluator},
		{StreamEvaluations, ConsumerRecorder, "vigil.evaluations.completed.>", AckWaitDefault},
		{StreamStates, ConsumerMatcher, "vigil.states.changed.>", AckWaitDefault},
		{StreamNotifications, ConsumerMailer, "vigil.notifications.email.>", AckWaitDefault},
		{StreamNotifications, ConsumerWebhooks, "vigil.notifications.webhook.>", AckWaitDefault},
	}
}

// DeadLetterSubject is the subject on DEADLETTER that receives the dead letters of one
// stream's consumer: vigil.dead.<stream>.<consumer>.
func DeadLetterSubject(stream, consumer string) string {
	return "vigil.dead." + stream + "." + consumer
}

// EnsureTopology creates or updates every stream and durable pull consumer Vigil uses. It is
// idempotent and safe to run at every start-up, from several processes at once.
func EnsureTopology(ctx context.Context, js jetstream.JetStream, cfg TopologyConfig) error {
	cfg = cfg.withDefaults()
	for _, s := range Streams() {
		want := jetstream.StreamConfig{
			Name:        s.Name,
			Description: s.Description,
			Subjects:    s.Subjects,
			Retention:   jetstream.LimitsPolicy,
			Discard:     jetstream.DiscardOld,
			Storage:     jetstream.FileStorage,
			Replicas:    cfg.Replicas,
			MaxAge:      cfg.MaxAge,
			Duplicates:  cfg.DuplicateWindow,
			// Publishers send what they have for one stream as one atomic batch,
			// which the server stores with one disk flush (Publisher).
			AllowAtomicPublish: true,
		}
		err := retryRequest(ctx, func(ctx context.Context) error {
			// A stream as wanted is left alone: an update rewrites the server's store
			// configuration, which raced (in nats-server) with other processes creating
			// their consumers at the same start-up.
			if st, err := js.Stream(ctx, s.Name); err == nil && streamAsWanted(st.CachedInfo().Config, want) {
				return nil
			}
			_, err := js.CreateOrUpdateStream(ctx, want)
			return err
		})
		if err != nil {
			return fmt.Errorf("ensure stream %s: %w", s.Name, err)
		}
	}
	for _, c := range Consumers() {
		want := jetstream.ConsumerConfig{
			Durable:       c.Name,
			FilterSubject: c.FilterSubject,
			AckPolicy:     jetstream.AckExplicitPolicy,
			DeliverPolicy: jetstream.DeliverAllPolicy,
			AckWait:       c.AckWait,
			MaxDeliver:    cfg.MaxDeliver,
			MaxAckPending: ConsumerMaxAckPendingDefault,
		}
		err := retryRequest(ctx, func(ctx context.Context) error {
			if cons, err := js.Consumer(ctx, c.Stream, c.Name); err == nil && consumerAsWanted(cons.CachedInfo().Config, want) {
				return nil
			}
			_, err := js.CreateOrUpdateConsumer(ctx, c.Stream, want)
			return err
		})
		if err != nil {
			return fmt.Errorf("ensure consumer %s on %s: %w", c.Name, c.Stream, err)
		}
	}
	return nil
}

// streamAsWanted reports whether a stream has the settings EnsureTopology sets.
func streamAsWanted(have, want jetstream.StreamConfig) bool {
	return have.Description == want.Description && slices.Equal(have.Subjects, want.Subjects) && have.Retention == want.Retention &&
		have.Discard == want.Discard && have.Storage == want.Storage && have.Replicas == want.Replicas && have.MaxAge == want.MaxAge &&
		have.Duplicates == want.Duplicates && have.AllowAtomicPublish == want.AllowAtomicPublish
}

// consumerAsWanted reports whether a consumer has the settings EnsureTopology sets.
func consumerAsWanted(have, want jetstream.ConsumerConfig) bool {
	return have.FilterSubject == want.FilterSubject && have.AckPolicy == want.AckPolicy && have.DeliverPolicy == want.DeliverPolicy &&
		have.AckWait == want.AckWait && have.MaxDeliver == want.MaxDeliver && have.MaxAckPending == want.MaxAckPending
}

// topologyRequestTimeout bounds one attempt of a start-up request: creating or updating a
// stream or consumer, or looking a consumer up.
const topologyRequestTimeout = 3 * time.Second

// retryRequest runs fn with a timeout per attempt until it succeeds or ctx ends. On a
// cluster, several processes declaring the same stream at once can see a request go
// unanswered while the meta leader settles the first; the next attempt finds it there.
func retryRequest(ctx context.Context, fn func(context.Context) error) error {
	bo := newBackoff(2 * time.Second)
	for {
		actx, cancel := context.WithTimeout(ctx, topologyRequestTimeout)
		err := fn(actx)
		cancel()
		if err == nil || ctx.Err() != nil {
			return err
		}
		if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) &&
			!errors.Is(err, nats.ErrTimeout) && !errors.Is(err, jetstream.ErrNoHeartbeat) && !isClusterSettling(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(bo.NextBackOff()):
		}
	}
}

// isClusterSettling reports JetStream API errors a cluster answers while it elects leaders.
func isClusterSettling(err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	// 503: no meta leader, or not enough peers yet; 10058: another process created the
	// stream meanwhile, with the same settings.
	return apiErr.Code == 503 || apiErr.ErrorCode == jetstream.JSErrCodeStreamNameInUse ||
		apiErr.ErrorCode == jetstream.JSErrCodeConsumerExists || apiErr.ErrorCode == jetstream.JSErrCodeConsumerAlreadyExists
}

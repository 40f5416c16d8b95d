// Package streams owns everything Vigil does with NATS JetStream: subjects, the stream and
// consumer topology as code, the CloudEvents 1.0 envelope (binary mode), the publisher, the
// consumer runner that turns handler errors into acks, dead letters, the transactional outbox
// relay and the embedded server used by `vigil all`, `vigil nats` and tests.
//
// Delivery is at least once everywhere: publishes carry Nats-Msg-Id (the event id) so JetStream
// drops duplicates inside the stream's duplicate window, and consumers must be idempotent and
// tolerate replays, because streams keep messages by age so operators can replay them.
//
// Handlers decide acks through the error they return:
//
//	nil                 -> Ack (DoubleAck when RunConfig.DoubleAck)
//	Retry(err, after)   -> NakWithDelay(after)
//	Permanent(err)      -> copy to DEADLETTER, then Term
//	any other error     -> NakWithDelay(exponential backoff by delivery count)
//
// and a failure on the last delivery the consumer allows is copied to DEADLETTER and terminated.
package streams

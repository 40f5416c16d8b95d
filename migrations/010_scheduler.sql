-- The scheduler claims a slot and commits before it publishes, so no row lock waits on
-- NATS. Until JetStream has stored the slot's EvaluationDue, slot_claimed_at says when the
-- slot was claimed; a sweep publishes such slots again (their event ids are deterministic,
-- so JetStream keeps one).
ALTER TABLE monitors ADD COLUMN slot_claimed_at timestamptz;
CREATE INDEX monitors_slot_unpublished_idx ON monitors (slot_claimed_at) WHERE slot_claimed_at IS NOT NULL;

---- create above / drop below ----

DROP INDEX monitors_slot_unpublished_idx;
ALTER TABLE monitors DROP COLUMN slot_claimed_at;

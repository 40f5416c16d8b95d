-- The scheduler claims a slot and commits before it publishes, so no row lock waits on
-- NATS. Until JetStream has stored the slot's EvaluationDue, slot_claimed_at says when the
-- slot was claimed; a sweep publishes such slots again (their event ids are deterministic,
-- so JetStream keeps one).
ALTER TABLE monitors ADD COLUMN slot_claimed_at timestamptz;
CREATE INDEX monitors_slot_unpublished_idx ON monitors (slot_claimed_at) WHERE slot_claimed_at IS NOT NULL;
-- last_success: what the newest successful evaluation found (source hash, state, facts),
-- written by the recorder and carried in EvaluationDue, so an evaluation of an unchanged
-- source reuses it without reading Postgres or calling the AI. Filled from the next
-- evaluation on.
ALTER TABLE monitors ADD COLUMN last_success jsonb;

---- create above / drop below ----

ALTER TABLE monitors DROP COLUMN last_success;
DROP INDEX monitors_slot_unpublished_idx;
ALTER TABLE monitors DROP COLUMN slot_claimed_at;

-- Slots the scheduler has claimed whose EvaluationDue JetStream has not yet stored, in a
-- narrow table of their own: marking a slot published then deletes a small row, instead of
-- writing a new version of the wide monitor row and of each of its indexes, which halved
-- the rate at which a million due monitors could be claimed. A newer claim of the same
-- monitor replaces its row.
CREATE TABLE monitor_unpublished_slots (
  monitor_id uuid PRIMARY KEY REFERENCES monitors (id) ON DELETE CASCADE,
  slot       timestamptz NOT NULL,
  claimed_at timestamptz NOT NULL
);
INSERT INTO monitor_unpublished_slots (monitor_id, slot, claimed_at)
  SELECT id, last_scheduled_for, slot_claimed_at FROM monitors
  WHERE slot_claimed_at IS NOT NULL AND last_scheduled_for IS NOT NULL;
DROP INDEX monitors_slot_unpublished_idx;
ALTER TABLE monitors DROP COLUMN slot_claimed_at;

---- create above / drop below ----

ALTER TABLE monitors ADD COLUMN slot_claimed_at timestamptz;
CREATE INDEX monitors_slot_unpublished_idx ON monitors (slot_claimed_at) WHERE slot_claimed_at IS NOT NULL;
UPDATE monitors m SET slot_claimed_at = s.claimed_at
  FROM monitor_unpublished_slots s WHERE s.monitor_id = m.id AND s.slot = m.last_scheduled_for;
DROP TABLE monitor_unpublished_slots;

-- Self-repairing extraction. auto_repair: apply a verified selector repair instead of only
-- proposing it. extraction_misses: evaluations in a row that missed a fact found before on a
-- changed source. repair: the newest repair, applied or proposed, as shown to the owner.
ALTER TABLE monitors ADD COLUMN auto_repair boolean NOT NULL DEFAULT false;
ALTER TABLE monitors ADD COLUMN extraction_misses int NOT NULL DEFAULT 0 CHECK (extraction_misses >= 0);
ALTER TABLE monitors ADD COLUMN repair jsonb;
-- extraction_version: the version at which what is extracted last changed (spec, source, way
-- of reading); only a success since then makes a missing fact a miss. Existing monitors start
-- at their current version, so each needs one success first.
ALTER TABLE monitors ADD COLUMN extraction_version bigint NOT NULL DEFAULT 1;
UPDATE monitors SET extraction_version = version;
-- An evaluation keeps the miss it was (the fact, its last good evidence, the page's text)
-- and the repair tried for it: the monitor's history shows what changed and why.
ALTER TABLE evaluations ADD COLUMN miss jsonb;
ALTER TABLE evaluations ADD COLUMN repair jsonb;
-- extraction_broken: the owner is told a fact is no longer found, once per run of misses.
ALTER TABLE notifications DROP CONSTRAINT notifications_kind_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_kind_check
  CHECK (kind IN ('state_changed', 'monitor_failing', 'digest', 'webhook_disabled', 'extraction_broken'));
CREATE UNIQUE INDEX notifications_broken_evaluation_key ON notifications (evaluation_id) WHERE kind = 'extraction_broken';

---- create above / drop below ----

DELETE FROM notifications WHERE kind = 'extraction_broken';
DROP INDEX notifications_broken_evaluation_key;
ALTER TABLE notifications DROP CONSTRAINT notifications_kind_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_kind_check CHECK (kind IN ('state_changed', 'monitor_failing', 'digest', 'webhook_disabled'));
ALTER TABLE evaluations DROP COLUMN repair;
ALTER TABLE evaluations DROP COLUMN miss;
ALTER TABLE monitors DROP COLUMN extraction_version;
ALTER TABLE monitors DROP COLUMN repair;
ALTER TABLE monitors DROP COLUMN extraction_misses;
ALTER TABLE monitors DROP COLUMN auto_repair;

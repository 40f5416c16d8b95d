-- Daily digests are notifications too, so they are retried, recorded and shown like any
-- other: kind 'digest', with no monitor, holding the notifications whose digest_id is its id.
ALTER TABLE notifications ALTER COLUMN monitor_id DROP NOT NULL;
ALTER TABLE notifications ADD CONSTRAINT notifications_monitor_required CHECK (kind = 'digest' OR monitor_id IS NOT NULL);
ALTER TABLE notifications DROP CONSTRAINT notifications_kind_check;
-- webhook_disabled: the owner is told a webhook answered 410 Gone and was turned off.
ALTER TABLE notifications ADD CONSTRAINT notifications_kind_check CHECK (kind IN ('state_changed', 'monitor_failing', 'digest', 'webhook_disabled'));
-- digest_day: the recipient's local day a digest is for; one digest per recipient and day.
ALTER TABLE notifications ADD COLUMN digest_day date;
ALTER TABLE notifications ADD CONSTRAINT notifications_digest_day_required CHECK ((kind = 'digest') = (digest_day IS NOT NULL));
CREATE UNIQUE INDEX notifications_digest_day_key ON notifications (user_id, recipient, digest_day) WHERE kind = 'digest';
CREATE INDEX notifications_digest_idx ON notifications (digest_id) WHERE digest_id IS NOT NULL;

---- create above / drop below ----

UPDATE notifications SET status = 'digest_pending', digest_id = NULL WHERE status = 'digested';
DELETE FROM notifications WHERE kind IN ('digest', 'webhook_disabled');
DROP INDEX notifications_digest_idx;
DROP INDEX notifications_digest_day_key;
ALTER TABLE notifications DROP CONSTRAINT notifications_digest_day_required;
ALTER TABLE notifications DROP COLUMN digest_day;
ALTER TABLE notifications DROP CONSTRAINT notifications_kind_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_kind_check CHECK (kind IN ('state_changed', 'monitor_failing'));
ALTER TABLE notifications DROP CONSTRAINT notifications_monitor_required;
ALTER TABLE notifications ALTER COLUMN monitor_id SET NOT NULL;

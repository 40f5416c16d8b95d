-- Deliveries that are never lost: each notification knows when it is next owed an attempt,
-- and every attempt is kept with its outcome.

-- next_attempt_at: when the sweeper requests the notification (again). A new notification
-- is requested by its own event at once; the default is the safety net should that event be
-- lost, and retries move it along the schedule.
ALTER TABLE notifications ADD COLUMN next_attempt_at timestamptz DEFAULT now() + interval '2 minutes';
UPDATE notifications SET next_attempt_at = updated_at WHERE status IN ('pending', 'sending');
UPDATE notifications SET next_attempt_at = NULL WHERE status NOT IN ('pending', 'sending');
CREATE INDEX notifications_due_idx ON notifications (next_attempt_at) WHERE status IN ('pending', 'sending');

CREATE TABLE notification_attempts (
  id              uuid PRIMARY KEY DEFAULT uuid_generate_v7(),
  notification_id uuid NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
  attempt         integer NOT NULL CHECK (attempt >= 1),
  started_at      timestamptz NOT NULL,
  finished_at     timestamptz NOT NULL,
  outcome         text NOT NULL CHECK (outcome IN ('delivered', 'retry', 'failed', 'gone')),
  -- code: the SMTP reply code or HTTP status; NULL when no answer came.
  code            integer,
  detail          text NOT NULL DEFAULT '' CHECK (char_length(detail) <= 1000),
  CONSTRAINT notification_attempts_number_key UNIQUE (notification_id, attempt)
);

-- A webhook whose endpoint answered 410 Gone is turned off, with the reason.
ALTER TABLE actions ADD COLUMN disabled_reason text;

---- create above / drop below ----

ALTER TABLE actions DROP COLUMN disabled_reason;
DROP TABLE notification_attempts;
DROP INDEX notifications_due_idx;
ALTER TABLE notifications DROP COLUMN next_attempt_at;

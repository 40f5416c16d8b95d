-- Actions and triggers that users manage through the API.

-- Each user has one default email action (to the account's own address): the one a new
-- monitor's trigger uses when the request names none.
ALTER TABLE actions ADD COLUMN is_default boolean NOT NULL DEFAULT false;
CREATE UNIQUE INDEX actions_default_key ON actions (user_id) WHERE is_default;

-- Email actions list their recipients in config.to, an array. Earlier rows had no list
-- (the owner's own address) or one address as a string.
UPDATE actions a SET config = jsonb_set(a.config, '{to}',
    CASE jsonb_typeof(a.config->'to') WHEN 'string' THEN jsonb_build_array(a.config->'to')
         ELSE jsonb_build_array(u.email) END)
FROM users u
WHERE u.id = a.user_id AND a.type = 'email' AND jsonb_typeof(a.config->'to') IS DISTINCT FROM 'array';
UPDATE actions SET is_default = true WHERE id IN (
  SELECT DISTINCT ON (user_id) id FROM actions WHERE type = 'email' ORDER BY user_id, created_at, id);
INSERT INTO actions (user_id, name, type, config, is_default)
SELECT u.id, 'Email me', 'email', jsonb_build_object('to', jsonb_build_array(u.email)), true
FROM users u WHERE NOT EXISTS (SELECT 1 FROM actions a WHERE a.user_id = u.id AND a.is_default);

-- email_recipients: addresses other than the account's own that a user asked to mail. An
-- address receives nothing until its owner follows the link mailed to it (confirmed_at).
CREATE TABLE email_recipients (
  user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  email        text NOT NULL CHECK (email = lower(email)),
  requested_at timestamptz NOT NULL DEFAULT now(),
  confirmed_at timestamptz,
  created_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, email)
);
CREATE INDEX email_recipients_requested_idx ON email_recipients (user_id, requested_at);

-- An email action with several recipients makes one delivery per address, so each has its
-- own status, suppression and bounce.
ALTER TABLE notifications DROP CONSTRAINT notifications_trigger_evaluation_key;
ALTER TABLE notifications ADD CONSTRAINT notifications_trigger_evaluation_recipient_key
  UNIQUE (trigger_id, evaluation_id, recipient);

---- create above / drop below ----

DELETE FROM notifications n USING notifications o
WHERE n.trigger_id = o.trigger_id AND n.evaluation_id = o.evaluation_id AND n.id > o.id;
ALTER TABLE notifications DROP CONSTRAINT notifications_trigger_evaluation_recipient_key;
ALTER TABLE notifications ADD CONSTRAINT notifications_trigger_evaluation_key UNIQUE (trigger_id, evaluation_id);
DROP TABLE email_recipients;
DROP INDEX actions_default_key;
ALTER TABLE actions DROP COLUMN is_default;

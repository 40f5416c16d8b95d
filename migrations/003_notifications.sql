-- Actions, the triggers that link them to monitors, and each delivery they cause.

CREATE TABLE actions (
  id         uuid PRIMARY KEY DEFAULT uuid_generate_v7(),
  user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  name       text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
  type       text NOT NULL CHECK (type IN ('email', 'webhook')),
  -- config holds the channel settings; secrets inside it are encrypted by the application.
  config     jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(config) = 'object'),
  enabled    boolean NOT NULL DEFAULT true,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX actions_user_idx ON actions (user_id, created_at);

CREATE TABLE triggers (
  id               uuid PRIMARY KEY DEFAULT uuid_generate_v7(),
  monitor_id       uuid NOT NULL REFERENCES monitors (id) ON DELETE CASCADE,
  action_id        uuid NOT NULL REFERENCES actions (id) ON DELETE CASCADE,
  condition        text NOT NULL CHECK (condition IN ('state_change', 'becomes_active', 'becomes_inactive')),
  frequency        text NOT NULL DEFAULT 'every_time' CHECK (frequency IN ('once', 'every_time', 'daily_digest')),
  cooldown_seconds integer NOT NULL DEFAULT 0 CHECK (cooldown_seconds >= 0),
  enabled          boolean NOT NULL DEFAULT true,
  fired_count      integer NOT NULL DEFAULT 0 CHECK (fired_count >= 0),
  last_fired_at    timestamptz,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT triggers_monitor_action_condition_key UNIQUE (monitor_id, action_id, condition)
);
CREATE INDEX triggers_action_idx ON triggers (action_id);

-- notifications: one row per delivery. A deleted trigger or action keeps its delivery
-- history (set null); a deleted monitor or evaluation takes its deliveries with it.
CREATE TABLE notifications (
  id                  uuid PRIMARY KEY DEFAULT uuid_generate_v7(),
  user_id             uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  monitor_id          uuid NOT NULL REFERENCES monitors (id) ON DELETE CASCADE,
  trigger_id          uuid REFERENCES triggers (id) ON DELETE SET NULL,
  action_id           uuid REFERENCES actions (id) ON DELETE SET NULL,
  evaluation_id       uuid REFERENCES evaluations (id) ON DELETE CASCADE,
  -- kind: a trigger firing on a state change, or the owner told that a monitor keeps failing.
  kind                text NOT NULL DEFAULT 'state_changed' CHECK (kind IN ('state_changed', 'monitor_failing')),
  channel             text NOT NULL DEFAULT 'email' CHECK (channel IN ('email', 'webhook')),
  recipient           text NOT NULL,
  from_state          text NOT NULL CHECK (from_state IN ('unknown', 'active', 'inactive')),
  to_state            text NOT NULL CHECK (to_state IN ('unknown', 'active', 'inactive')),
  status              text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sending', 'sent', 'delivered',
                        'bounced', 'complained', 'failed', 'suppressed', 'digest_pending', 'digested')),
  attempts            integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  last_error          text,
  provider_message_id text,
  digest_id           uuid,
  sent_at             timestamptz,
  created_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now(),
  -- A trigger fires at most once per evaluation, however often StateChanged is redelivered.
  CONSTRAINT notifications_trigger_evaluation_key UNIQUE (trigger_id, evaluation_id)
);
-- One "monitor is failing" email per evaluation that put the monitor in error.
CREATE UNIQUE INDEX notifications_failing_evaluation_key ON notifications (evaluation_id) WHERE kind = 'monitor_failing';
CREATE INDEX notifications_monitor_idx ON notifications (monitor_id, created_at DESC);
CREATE INDEX notifications_evaluation_idx ON notifications (evaluation_id);
CREATE INDEX notifications_action_idx ON notifications (action_id);
CREATE INDEX notifications_user_idx ON notifications (user_id, created_at DESC);
CREATE INDEX notifications_digest_pending_idx ON notifications (user_id) WHERE status = 'digest_pending';

CREATE TABLE email_suppressions (
  email      text PRIMARY KEY CHECK (email = lower(email)),
  reason     text NOT NULL CHECK (reason IN ('bounce', 'complaint', 'unsubscribe', 'manual')),
  detail     text,
  created_at timestamptz NOT NULL DEFAULT now()
);

---- create above / drop below ----

DROP TABLE email_suppressions;
DROP TABLE notifications;
DROP TABLE triggers;
DROP TABLE actions;

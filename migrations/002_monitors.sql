-- Monitors, their evaluation history and the facts time series.

CREATE TABLE monitors (
  id                     uuid PRIMARY KEY DEFAULT uuid_generate_v7(),
  user_id                uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  name                   text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
  prompt                 text NOT NULL CHECK (char_length(prompt) BETWEEN 3 AND 2000),
  kind                   text NOT NULL CHECK (kind IN ('current_state', 'historical_change')),
  spec                   jsonb NOT NULL,
  source_url             text CHECK (source_url ~ '^https?://'),
  source_format          text NOT NULL DEFAULT 'auto' CHECK (source_format IN ('auto', 'json', 'html', 'text')),
  interval_seconds       integer NOT NULL CHECK (interval_seconds BETWEEN 1 AND 2592000),
  cron                   text,
  timezone               text NOT NULL DEFAULT 'UTC',
  status                 text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused', 'error')),
  state                  text NOT NULL DEFAULT 'unknown' CHECK (state IN ('unknown', 'active', 'inactive')),
  state_changed_at       timestamptz,
  last_evaluated_at      timestamptz,
  -- last_evaluation_for is the slot (scheduled_for) of the newest evaluation applied to state;
  -- older evaluations arriving late are kept as history but never move the state back.
  last_evaluation_for    timestamptz,
  last_scheduled_for     timestamptz,
  next_run_at            timestamptz NOT NULL,
  consecutive_failures   integer NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0),
  last_error             text,
  classified_by_provider text,
  classified_by_model    text,
  version                bigint NOT NULL DEFAULT 1 CHECK (version >= 1),
  created_at             timestamptz NOT NULL DEFAULT now(),
  updated_at             timestamptz NOT NULL DEFAULT now()
);
-- The scheduler's hot path: due active monitors in next_run_at order.
CREATE INDEX monitors_due_idx ON monitors (next_run_at) WHERE status = 'active';
-- A user's monitors, newest first (keyset pagination on created_at, id).
CREATE INDEX monitors_user_created_idx ON monitors (user_id, created_at DESC, id DESC);

CREATE TABLE evaluations (
  id             uuid PRIMARY KEY DEFAULT uuid_generate_v7(),
  monitor_id     uuid NOT NULL REFERENCES monitors (id) ON DELETE CASCADE,
  scheduled_for  timestamptz NOT NULL,
  started_at     timestamptz,
  finished_at    timestamptz,
  status         text NOT NULL CHECK (status IN ('succeeded', 'failed', 'abstained')),
  state          text NOT NULL DEFAULT 'unknown' CHECK (state IN ('unknown', 'active', 'inactive')),
  previous_state text CHECK (previous_state IN ('unknown', 'active', 'inactive')),
  changed        boolean NOT NULL DEFAULT false,
  explanation    text NOT NULL DEFAULT '',
  provider       text,
  model          text,
  input_tokens   integer NOT NULL DEFAULT 0 CHECK (input_tokens >= 0),
  output_tokens  integer NOT NULL DEFAULT 0 CHECK (output_tokens >= 0),
  cost           numeric(14, 8) NOT NULL DEFAULT 0 CHECK (cost >= 0),
  latency_ms     integer NOT NULL DEFAULT 0 CHECK (latency_ms >= 0),
  error          text,
  attempt        integer NOT NULL DEFAULT 1 CHECK (attempt >= 1),
  source_hash    text,
  -- monitor_version is the monitor's version the evaluation ran with; facts_reused says the
  -- source was unchanged since the previous evaluation of that version, so its facts were
  -- reused without calling the AI.
  monitor_version bigint NOT NULL DEFAULT 1,
  facts_reused   boolean NOT NULL DEFAULT false,
  created_at     timestamptz NOT NULL DEFAULT now(),
  -- One evaluation per slot: a redelivered EvaluationCompleted is a no-op.
  -- Its index also serves a monitor's history, newest first (backward scan).
  CONSTRAINT evaluations_monitor_slot_key UNIQUE (monitor_id, scheduled_for)
);
-- State transitions only (history filtered by changed=true).
CREATE INDEX evaluations_monitor_changes_idx ON evaluations (monitor_id, scheduled_for DESC) WHERE changed;

-- facts is the time series. Range-partitioned by month so retention drops whole partitions.
-- evaluation_id is a soft reference: evaluations are only ever deleted with their monitor,
-- which cascades here, and a second cascading key would need another index on the largest table.
CREATE TABLE facts (
  id            uuid NOT NULL DEFAULT uuid_generate_v7(),
  monitor_id    uuid NOT NULL REFERENCES monitors (id) ON DELETE CASCADE,
  evaluation_id uuid,
  key           text NOT NULL CHECK (char_length(key) BETWEEN 1 AND 100),
  value_number  double precision,
  value_text    text,
  value_bool    boolean,
  unit          text NOT NULL DEFAULT '',
  observed_at   timestamptz NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT facts_one_value CHECK (num_nonnulls(value_number, value_text, value_bool) = 1),
  PRIMARY KEY (id, observed_at)
) PARTITION BY RANGE (observed_at);
-- Facts of one monitor/key over a time range, and the latest fact per key; covers the value.
CREATE INDEX facts_monitor_key_time_idx ON facts (monitor_id, key, observed_at DESC)
  INCLUDE (value_number, value_text, value_bool, unit);

-- The default partition catches rows outside every monthly partition, so a missed
-- ensure_facts_partitions never loses data; the next call moves them into their month.
CREATE TABLE facts_default PARTITION OF facts DEFAULT;

-- ensure_facts_partitions creates the monthly partitions (UTC months) from the month of
-- start_month for the given number of months, and returns how many it created. Idempotent;
-- the application calls it at start-up and daily. A new partition is built beside the table,
-- filled with any rows of its month that had landed in facts_default, then attached: ATTACH
-- takes a lighter lock than CREATE ... PARTITION OF and cannot fail on those strays.
CREATE FUNCTION ensure_facts_partitions(start_month date, months integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  m date := date_trunc('month', start_month)::date;
  created integer := 0;
  part text;
  lo timestamptz;
  hi timestamptz;
BEGIN
  FOR i IN 0 .. months - 1 LOOP
    part := format('facts_y%sm%s', to_char(m, 'YYYY'), to_char(m, 'MM'));
    lo := m::timestamp AT TIME ZONE 'UTC';
    hi := (m + interval '1 month')::timestamp AT TIME ZONE 'UTC';
    IF to_regclass(part) IS NULL THEN
      EXECUTE format('CREATE TABLE %I (LIKE facts INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
      EXECUTE format('WITH moved AS (DELETE FROM facts_default WHERE observed_at >= %L AND observed_at < %L RETURNING *)
                      INSERT INTO %I SELECT * FROM moved', lo, hi, part);
      EXECUTE format('ALTER TABLE facts ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', part, lo, hi);
      created := created + 1;
    END IF;
    m := (m + interval '1 month')::date;
  END LOOP;
  RETURN created;
END
$$;

SELECT ensure_facts_partitions((now() - interval '1 month')::date, 4);

---- create above / drop below ----

DROP FUNCTION ensure_facts_partitions(date, integer);
DROP TABLE facts;
DROP TABLE evaluations;
DROP TABLE monitors;

-- Two reads that must stay fast however cold the cache:
--
-- fact_latest keeps the newest fact of each monitor and key, so a monitor's latest facts
-- (its detail and /facts/latest) read one small row per key instead of probing each key's
-- index in the newest partitions and the heap behind it for the evidence. A statement
-- trigger folds every INSERT or COPY into facts in, in the same transaction, whatever wrote
-- them: a late fact older than the one kept changes nothing.
--
-- The evaluations' slot index carries the columns statistics read, so a month of a
-- monitor's evaluations is a range of one index, not a heap page per evaluation (a
-- monitor's evaluations are spread among every other monitor's).
CREATE TABLE fact_latest (
  monitor_id   uuid NOT NULL REFERENCES monitors (id) ON DELETE CASCADE,
  key          text NOT NULL,
  value_number double precision,
  value_text   text,
  value_bool   boolean,
  unit         text NOT NULL DEFAULT '',
  observed_at  timestamptz NOT NULL,
  evidence     text,
  confidence   real,
  PRIMARY KEY (monitor_id, key)
);

CREATE FUNCTION fold_fact_latest() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO fact_latest AS l (monitor_id, key, value_number, value_text, value_bool, unit, observed_at, evidence, confidence)
  SELECT DISTINCT ON (monitor_id, key) monitor_id, key, value_number, value_text, value_bool, unit, observed_at, evidence, confidence
  FROM new_facts
  ORDER BY monitor_id, key, observed_at DESC -- also a fixed lock order between two writers
  ON CONFLICT (monitor_id, key) DO UPDATE SET
    value_number = EXCLUDED.value_number, value_text = EXCLUDED.value_text, value_bool = EXCLUDED.value_bool,
    unit = EXCLUDED.unit, observed_at = EXCLUDED.observed_at, evidence = EXCLUDED.evidence, confidence = EXCLUDED.confidence
  WHERE EXCLUDED.observed_at >= l.observed_at;
  RETURN NULL;
END
$$;
CREATE TRIGGER facts_fold_latest AFTER INSERT ON facts REFERENCING NEW TABLE AS new_facts
  FOR EACH STATEMENT EXECUTE FUNCTION fold_fact_latest();

-- The facts already stored: one walk of the (monitor, key, newest first) index.
INSERT INTO fact_latest (monitor_id, key, value_number, value_text, value_bool, unit, observed_at, evidence, confidence)
SELECT DISTINCT ON (monitor_id, key) monitor_id, key, value_number, value_text, value_bool, unit, observed_at, evidence, confidence
FROM facts ORDER BY monitor_id, key, observed_at DESC;

-- The same unique slot, now covering. Built inside the migration's transaction, so writes
-- to evaluations wait for it once, at deploy.
CREATE UNIQUE INDEX evaluations_monitor_slot_covering ON evaluations (monitor_id, scheduled_for)
  INCLUDE (status, changed, facts_reused, input_tokens, output_tokens, cost, latency_ms, fetch_ms);
ALTER TABLE evaluations DROP CONSTRAINT evaluations_monitor_slot_key;
ALTER TABLE evaluations ADD CONSTRAINT evaluations_monitor_slot_key UNIQUE USING INDEX evaluations_monitor_slot_covering;

---- create above / drop below ----

CREATE UNIQUE INDEX evaluations_monitor_slot_narrow ON evaluations (monitor_id, scheduled_for);
ALTER TABLE evaluations DROP CONSTRAINT evaluations_monitor_slot_key;
ALTER TABLE evaluations ADD CONSTRAINT evaluations_monitor_slot_key UNIQUE USING INDEX evaluations_monitor_slot_narrow;
DROP TRIGGER facts_fold_latest ON facts;
DROP FUNCTION fold_fact_latest();
DROP TABLE fact_latest;

-- Hourly rollups of the numeric facts, so series of an hour and coarser read one row per
-- monitor, key and hour instead of every observation. A statement trigger folds each
-- INSERT or COPY into them, in the same transaction, whatever wrote the facts and however
-- late or out of order they arrive: count and sum add up, min and max widen, and first and
-- last are kept with their times so an earlier or later fact replaces them. Retention
-- deletes the rollups of the partitions it drops. first and last are the value of the
-- earliest and latest observation: min and max of [epoch, value] pairs (float8 keeps the
-- microseconds) hold one small array per group, where array_agg would hold every value.
CREATE TABLE fact_rollups_hourly (
  monitor_id uuid NOT NULL REFERENCES monitors (id) ON DELETE CASCADE,
  key        text NOT NULL,
  hour       timestamptz NOT NULL,
  n          bigint NOT NULL,
  sum        double precision NOT NULL,
  min        double precision NOT NULL,
  max        double precision NOT NULL,
  first      double precision NOT NULL,
  first_at   timestamptz NOT NULL,
  last       double precision NOT NULL,
  last_at    timestamptz NOT NULL,
  PRIMARY KEY (monitor_id, key, hour)
);
CREATE INDEX fact_rollups_hour_idx ON fact_rollups_hourly (hour);

CREATE FUNCTION fold_fact_rollups() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO fact_rollups_hourly AS r (monitor_id, key, hour, n, sum, min, max, first, first_at, last, last_at)
  SELECT monitor_id, key, date_trunc('hour', observed_at, 'UTC'), count(*), sum(value_number), min(value_number), max(value_number),
         (min(ARRAY[extract(epoch FROM observed_at)::float8, value_number]))[2], min(observed_at),
         (max(ARRAY[extract(epoch FROM observed_at)::float8, value_number]))[2], max(observed_at)
  FROM new_facts WHERE value_number IS NOT NULL
  GROUP BY 1, 2, 3
  ORDER BY 1, 2, 3 -- a fixed order: two writers never wait on each other's rows in turn
  ON CONFLICT (monitor_id, key, hour) DO UPDATE SET
    n = r.n + EXCLUDED.n, sum = r.sum + EXCLUDED.sum, min = least(r.min, EXCLUDED.min), max = greatest(r.max, EXCLUDED.max),
    first = CASE WHEN EXCLUDED.first_at < r.first_at THEN EXCLUDED.first ELSE r.first END,
    first_at = least(r.first_at, EXCLUDED.first_at),
    last = CASE WHEN EXCLUDED.last_at > r.last_at THEN EXCLUDED.last ELSE r.last END,
    last_at = greatest(r.last_at, EXCLUDED.last_at);
  RETURN NULL;
END
$$;
CREATE TRIGGER facts_fold_rollups AFTER INSERT ON facts REFERENCING NEW TABLE AS new_facts
  FOR EACH STATEMENT EXECUTE FUNCTION fold_fact_rollups();

-- The facts already stored.
INSERT INTO fact_rollups_hourly (monitor_id, key, hour, n, sum, min, max, first, first_at, last, last_at)
SELECT monitor_id, key, date_trunc('hour', observed_at, 'UTC'), count(*), sum(value_number), min(value_number), max(value_number),
       (min(ARRAY[extract(epoch FROM observed_at)::float8, value_number]))[2], min(observed_at),
       (max(ARRAY[extract(epoch FROM observed_at)::float8, value_number]))[2], max(observed_at)
FROM facts WHERE value_number IS NOT NULL GROUP BY 1, 2, 3;

---- create above / drop below ----

DROP TRIGGER facts_fold_rollups ON facts;
DROP FUNCTION fold_fact_rollups();
DROP TABLE fact_rollups_hourly;

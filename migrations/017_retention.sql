-- Retention deletes old evaluations and notifications in small batches by age: these
-- indexes find each batch without reading the tables. maintenance_runs lets one replica
-- of the scheduler run a daily job: the first to insert the day's row runs it.
CREATE INDEX evaluations_scheduled_idx ON evaluations (scheduled_for);
CREATE INDEX notifications_created_idx ON notifications (created_at);
CREATE TABLE maintenance_runs (
  job         text NOT NULL,
  day         date NOT NULL,
  started_at  timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  report      jsonb,
  PRIMARY KEY (job, day)
);

---- create above / drop below ----

DROP TABLE maintenance_runs;
DROP INDEX notifications_created_idx;
DROP INDEX evaluations_scheduled_idx;

-- How long an evaluation waited for its source (fetch or render), for a monitor's statistics;
-- NULL for evaluations recorded before it was kept, and those that reused a shared fetch.
ALTER TABLE evaluations ADD COLUMN fetch_ms integer;

---- create above / drop below ----

ALTER TABLE evaluations DROP COLUMN fetch_ms;

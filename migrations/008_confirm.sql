-- confirm: how many evaluations in a row must agree before a monitor's state flips, so a
-- flapping source does not alert on every wobble. pending_state and pending_count are the
-- disagreeing streak so far.
ALTER TABLE monitors
  ADD COLUMN confirm smallint NOT NULL DEFAULT 1 CHECK (confirm BETWEEN 1 AND 10),
  ADD COLUMN pending_state text CHECK (pending_state IN ('active', 'inactive')),
  ADD COLUMN pending_count smallint NOT NULL DEFAULT 0 CHECK (pending_count >= 0);

---- create above / drop below ----

ALTER TABLE monitors DROP COLUMN pending_count, DROP COLUMN pending_state, DROP COLUMN confirm;

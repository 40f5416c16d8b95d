-- Rate-limit counters shared by every API process (package adapters/ratelimit): one row
-- per rule and caller, a fixed window anchored at the window's first hit. UNLOGGED: no
-- WAL for a table written on every request; after a crash or failover it starts empty,
-- which only forgives the limits for one window.

CREATE UNLOGGED TABLE rate_limits (
  -- "<rule name>:<hash of the caller key>", fixed length whatever the caller sends.
  key          text PRIMARY KEY,
  window_start timestamptz NOT NULL,
  window_end   timestamptz NOT NULL CHECK (window_end > window_start),
  -- Hits in the window, saturating at the rule's limit + 1 (limit + 1 means "denied");
  -- 0 after every hit was refunded.
  count        integer NOT NULL CHECK (count >= 0)
) WITH (fillfactor = 70); -- room on each page for HOT updates of count
-- Cleanup deletes windows that ended long ago. window_end changes only when a window
-- restarts, so most updates stay HOT despite this index.
CREATE INDEX rate_limits_window_end_idx ON rate_limits (window_end);

---- create above / drop below ----

DROP TABLE rate_limits;

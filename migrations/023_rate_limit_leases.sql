-- granted is how many hits the last reservation of a row admitted: a process that takes a
-- lease of several hits at once (ratelimit.Leases) learns its share from it, since a row's
-- count alone does not say what it was before.
ALTER TABLE rate_limits ADD COLUMN granted integer NOT NULL DEFAULT 0;

---- create above / drop below ----

ALTER TABLE rate_limits DROP COLUMN granted;

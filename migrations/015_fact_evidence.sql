-- Each fact keeps the passage of the source it was read from (the recorder caps it at 300
-- characters) and how sure the extraction was, for history, the monitor's detail and
-- exports. Facts stored before have neither. No CHECK: validating one would read every
-- partition of the largest table, and the recorder is the only writer.
ALTER TABLE facts ADD COLUMN evidence text;
ALTER TABLE facts ADD COLUMN confidence real;

---- create above / drop below ----

ALTER TABLE facts DROP COLUMN confidence;
ALTER TABLE facts DROP COLUMN evidence;

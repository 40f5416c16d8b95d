-- Feeds are a source format of their own: a monitor can say its source is RSS or Atom.
ALTER TABLE monitors DROP CONSTRAINT monitors_source_format_check;
ALTER TABLE monitors ADD CONSTRAINT monitors_source_format_check
  CHECK (source_format IN ('auto', 'json', 'html', 'text', 'rss'));

---- create above / drop below ----

UPDATE monitors SET source_format = 'auto' WHERE source_format = 'rss';
ALTER TABLE monitors DROP CONSTRAINT monitors_source_format_check;
ALTER TABLE monitors ADD CONSTRAINT monitors_source_format_check
  CHECK (source_format IN ('auto', 'json', 'html', 'text'));

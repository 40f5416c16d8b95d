-- A monitor can ask for its source to be read in a browser, for pages drawn by JavaScript.
ALTER TABLE monitors ADD COLUMN render boolean NOT NULL DEFAULT false;

---- create above / drop below ----

ALTER TABLE monitors DROP COLUMN render;

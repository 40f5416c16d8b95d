-- What an API key may do: read (GET and HEAD only), monitors (that, and changes to monitors
-- and their triggers), or full (everything but the account itself). Keys made before
-- scopes existed could do everything, so they stay full.
ALTER TABLE api_keys ADD COLUMN scope text NOT NULL DEFAULT 'full'
  CHECK (scope IN ('read', 'monitors', 'full'));

---- create above / drop below ----

ALTER TABLE api_keys DROP COLUMN scope;

-- Accounts: users and everything that authenticates or audits them.

-- uuid_generate_v7 returns a time-ordered UUIDv7 (RFC 9562). The application
-- normally supplies ids; this default keeps hand-written SQL and tools honest.
CREATE FUNCTION uuid_generate_v7() RETURNS uuid
LANGUAGE sql VOLATILE AS $$
  SELECT encode(
    set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
      PLACING substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
      FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid
$$;

CREATE TABLE users (
  id                    uuid PRIMARY KEY DEFAULT uuid_generate_v7(),
  email                 text NOT NULL CHECK (char_length(email) BETWEEN 3 AND 320 AND position('@' IN email) > 1),
  password_hash         text,
  google_issuer         text,
  google_subject        text,
  name                  text NOT NULL DEFAULT '' CHECK (char_length(name) <= 200),
  role                  text NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
  timezone              text NOT NULL DEFAULT 'UTC',
  email_verified_at     timestamptz,
  digest_hour           smallint NOT NULL DEFAULT 8 CHECK (digest_hour BETWEEN 0 AND 23),
  notifications_enabled boolean NOT NULL DEFAULT true,
  unsubscribed_at       timestamptz,
  disabled_at           timestamptz,
  last_login_at         timestamptz,
  created_at            timestamptz NOT NULL DEFAULT now(),
  updated_at            timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT users_google_identity_complete CHECK ((google_issuer IS NULL) = (google_subject IS NULL))
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));
CREATE UNIQUE INDEX users_google_identity_key ON users (google_issuer, google_subject) WHERE google_subject IS NOT NULL;

-- Refresh tokens rotate; a family is one login. Only hashes are stored.
CREATE TABLE refresh_tokens (
  id                uuid PRIMARY KEY DEFAULT uuid_generate_v7(),
  user_id           uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  family_id         uuid NOT NULL,
  parent_id         uuid REFERENCES refresh_tokens (id) ON DELETE SET NULL,
  token_hash        bytea NOT NULL,
  expires_at        timestamptz NOT NULL,
  family_expires_at timestamptz NOT NULL,
  used_at           timestamptz,
  revoked_at        timestamptz,
  ip                inet,
  user_agent        text,
  created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX refresh_tokens_hash_key ON refresh_tokens (token_hash);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_idx ON refresh_tokens (user_id);
CREATE INDEX refresh_tokens_parent_idx ON refresh_tokens (parent_id);

CREATE TABLE password_reset_tokens (
  id         uuid PRIMARY KEY DEFAULT uuid_generate_v7(),
  user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  token_hash bytea NOT NULL,
  expires_at timestamptz NOT NULL,
  used_at    timestamptz,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX password_reset_tokens_hash_key ON password_reset_tokens (token_hash);
CREATE INDEX password_reset_tokens_user_idx ON password_reset_tokens (user_id);

CREATE TABLE api_keys (
  id           uuid PRIMARY KEY DEFAULT uuid_generate_v7(),
  user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  name         text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
  prefix       text NOT NULL,
  key_hash     bytea NOT NULL,
  expires_at   timestamptz,
  last_used_at timestamptz,
  revoked_at   timestamptz,
  created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX api_keys_prefix_key ON api_keys (prefix);
CREATE UNIQUE INDEX api_keys_hash_key ON api_keys (key_hash);
CREATE INDEX api_keys_user_idx ON api_keys (user_id, created_at);

-- beta_allowlist holds whole addresses ("ann@example.com") and domains ("@example.com").
CREATE TABLE beta_allowlist (
  id         uuid PRIMARY KEY DEFAULT uuid_generate_v7(),
  pattern    text NOT NULL CHECK (pattern = lower(pattern) AND position('@' IN pattern) > 0),
  kind       text NOT NULL CHECK (kind IN ('email', 'domain')),
  added_by   uuid REFERENCES users (id) ON DELETE SET NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT beta_allowlist_kind_matches CHECK ((kind = 'domain') = (left(pattern, 1) = '@'))
);
CREATE UNIQUE INDEX beta_allowlist_pattern_key ON beta_allowlist (pattern);
CREATE INDEX beta_allowlist_added_by_idx ON beta_allowlist (added_by);

-- audit_log outlives the accounts it mentions: actor_user_id is set null on delete.
CREATE TABLE audit_log (
  id            uuid PRIMARY KEY DEFAULT uuid_generate_v7(),
  actor_user_id uuid REFERENCES users (id) ON DELETE SET NULL,
  action        text NOT NULL CHECK (char_length(action) BETWEEN 1 AND 100),
  target_type   text,
  target_id     text,
  ip            inet,
  user_agent    text,
  outcome       text NOT NULL CHECK (outcome IN ('success', 'failure')),
  metadata      jsonb NOT NULL DEFAULT '{}',
  created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_actor_idx ON audit_log (actor_user_id, created_at DESC);
CREATE INDEX audit_log_created_idx ON audit_log (created_at DESC);

---- create above / drop below ----

DROP TABLE audit_log;
DROP TABLE beta_allowlist;
DROP TABLE api_keys;
DROP TABLE password_reset_tokens;
DROP TABLE refresh_tokens;
DROP TABLE users;
DROP FUNCTION uuid_generate_v7();

-- Forgot-password requests wait here for the worker that looks the account up and mails the
-- link, so the request itself does the same work whether or not the email has an account.
CREATE TABLE password_reset_requests (
  id         uuid PRIMARY KEY,
  email      text NOT NULL CHECK (char_length(email) BETWEEN 1 AND 320),
  ip         inet,
  user_agent text,
  created_at timestamptz NOT NULL
);
CREATE INDEX password_reset_requests_created_idx ON password_reset_requests (created_at);

---- create above / drop below ----

DROP TABLE password_reset_requests;

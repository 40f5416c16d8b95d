-- The audit log is append-only: no role that uses it, the application's included, may
-- change or remove what it records. The one change allowed is the foreign key's own
-- ON DELETE SET NULL when an actor's account is deleted, recognised by running inside that
-- referential action (trigger depth above 1) and changing nothing but actor_user_id.
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND pg_trigger_depth() > 1
     AND OLD.actor_user_id IS NOT NULL AND NEW.actor_user_id IS NULL
     AND (NEW.id, NEW.action, NEW.target_type, NEW.target_id, NEW.ip, NEW.user_agent, NEW.outcome, NEW.metadata, NEW.created_at)
         IS NOT DISTINCT FROM
         (OLD.id, OLD.action, OLD.target_type, OLD.target_id, OLD.ip, OLD.user_agent, OLD.outcome, OLD.metadata, OLD.created_at) THEN
    RETURN NEW;
  END IF;
  RAISE EXCEPTION 'audit_log is append-only: % is not allowed', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

---- create above / drop below ----

DROP TRIGGER audit_log_no_truncate ON audit_log;
DROP TRIGGER audit_log_append_only ON audit_log;
DROP FUNCTION audit_log_append_only();

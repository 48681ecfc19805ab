-- A least-privilege login for the relay. It needs:
--   * REPLICATION: to open a replication connection and stream the slot (START_REPLICATION);
--     also what lets it create and drop its own logical slot.
--   * CONNECT on the database.
--   * USAGE on the outbox schema and SELECT on the outbox table only for `outbox-relay republish`,
--     which reads retained rows. Streaming needs neither: pgoutput decodes with the catalog, not with
--     the role's table privileges (docs/security.md; test/integration/ops.grants.test.ts).
-- It needs no INSERT/UPDATE/DELETE anywhere, and no superuser.
-- Replace the password, or better use a password from your secret store (ALTER ROLE ... PASSWORD).
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'outbox_relay') THEN
    CREATE ROLE outbox_relay WITH LOGIN REPLICATION PASSWORD 'change-me';
  END IF;
  EXECUTE format('GRANT CONNECT ON DATABASE %I TO outbox_relay', current_database());
END
$$;
-- For republish:
GRANT USAGE ON SCHEMA public TO outbox_relay;
GRANT SELECT ON public.outbox TO outbox_relay;

-- Creating the publication needs ownership of the table (or superuser), so it is normally done by the
-- schema owner with sql/002_publication.sql. To let `outbox-relay setup` create it instead, make the
-- relay's role a member of the table owner's role, or run setup once as the owner.
-- pg_hba.conf must allow the role on replication connections, e.g.:
--   host  <dbname>  outbox_relay  10.0.0.0/8  scram-sha-256
-- (logical replication connections match the database name, not the `replication` keyword).

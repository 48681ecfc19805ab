-- The publication restricts the logical replication stream to the outbox table, and to INSERTs only:
-- updates, deletes and truncates of the outbox (cleanup jobs) never reach the relay.
-- `outbox-relay setup` runs the equivalent of this (and creates the slot); use this file when your
-- migrations own the schema. publish_via_partition_root: a partitioned outbox table's rows are published under
-- its own name, not its partitions' (no effect on a plain table).
-- Safe to run again (PostgreSQL has no CREATE PUBLICATION IF NOT EXISTS): an existing publication is left as it
-- is; `outbox-relay publication show` shows what it publishes and which tables.
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_publication WHERE pubname = 'outbox_relay') THEN
    CREATE PUBLICATION outbox_relay FOR TABLE public.outbox WITH (publish = 'insert', publish_via_partition_root = true);
  END IF;
END
$$;

-- PostgreSQL 15+: an optional row filter keeps some rows out of the stream entirely, e.g.
--   CREATE PUBLICATION outbox_relay FOR TABLE public.outbox WHERE (aggregate_type <> 'internal') WITH (publish = 'insert', publish_via_partition_root = true);
-- Several outbox tables may share one publication:
--   ALTER PUBLICATION outbox_relay ADD TABLE billing.outbox;
--
-- The replication slot is created by `outbox-relay setup` (or `outbox-relay slot create`), equivalent to:
--   SELECT pg_create_logical_replication_slot('outbox_relay', 'pgoutput');

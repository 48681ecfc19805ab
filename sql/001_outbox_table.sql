-- The transactional outbox. Your service INSERTs one row per event in the same transaction as its
-- business change; outbox-relay reads the INSERTs from the WAL and produces them to Kafka.
--
-- Column names are the relay's defaults; rename them freely and tell the relay with the mapping
-- settings (see docs/configuration.md, `mapping.*`). Only INSERTs are relayed: a cleanup job may
-- DELETE or TRUNCATE old rows at any time (they are not needed once the relay confirmed them).
CREATE TABLE IF NOT EXISTS public.outbox (
  id             uuid        PRIMARY KEY,               -- event id: the Kafka key and the `id` header; consumers dedupe on it
  aggregate_type text        NOT NULL,                  -- e.g. 'order'; usable in the topic template (outbox.${aggregate_type})
  aggregate_id   text        NOT NULL,                  -- the entity the event is about; key by it for per-aggregate ordering
  event_type     text        NOT NULL,                  -- e.g. 'OrderPlaced'; sent as the `type` header
  payload        jsonb       NOT NULL,                  -- the Kafka value, forwarded as stored (text form), never re-serialised
  headers        jsonb       NOT NULL DEFAULT '{}',     -- extra Kafka headers: each top-level key becomes one header
  created_at     timestamptz NOT NULL DEFAULT now()     -- record timestamp only with mapping.timestamp=created_at; else the send time (commit time: header outbox-commit-time)
);

-- Rows are written once and never updated, so the table is append-only: no index other than the
-- primary key is needed, and autovacuum only has the cleanup job's deletes to deal with.

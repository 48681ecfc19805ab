-- Events without an outbox table: outbox_emit() writes a transactional logical message into the WAL. It
-- becomes visible to the relay only when the surrounding transaction commits (a rollback discards it), and
-- leaves nothing behind to vacuum or clean up. Enable it in the relay with messages.prefixes = outbox
-- (--messages-prefixes outbox); the publication is not involved, messages are per database.
--
-- The content is one line of JSON metadata, a newline, then the payload bytes, forwarded unchanged:
--   {"id": "...", "type": "...", "key": "...", "topic": null, "aggregate_type": "...", "aggregate_id": "...",
--    "headers": {...}, "content_type": "application/json"}\n<payload>
-- id: the `id` header (consumers dedupe on it); key: the Kafka key (defaults to the aggregate id, else the id:
-- per-aggregate order); topic: overrides the relay's messages.topic template; headers: extra record headers.
-- Returns the LSN of the message.
-- Binary payloads (protobuf, Avro): the bytes follow the metadata line unchanged.
CREATE OR REPLACE FUNCTION public.outbox_emit_bytes(
  event_type     text,
  payload        bytea,
  aggregate_type text    DEFAULT NULL,
  aggregate_id   text    DEFAULT NULL,
  key            text    DEFAULT NULL,
  topic          text    DEFAULT NULL,
  headers        jsonb   DEFAULT '{}',
  id             uuid    DEFAULT gen_random_uuid(),
  prefix         text    DEFAULT 'outbox',
  content_type   text    DEFAULT 'application/octet-stream'
) RETURNS pg_lsn
LANGUAGE sql VOLATILE AS $$
  SELECT pg_logical_emit_message(
    true,
    prefix,
    convert_to(
      jsonb_build_object('id', id, 'type', event_type, 'key', coalesce(key, aggregate_id, id::text), 'topic', topic,
                         'aggregate_type', aggregate_type, 'aggregate_id', aggregate_id, 'headers', headers,
                         'content_type', content_type)::text || E'\n',
      'UTF8') || payload)
$$;

-- JSON payloads: the payload's text follows the metadata line.
CREATE OR REPLACE FUNCTION public.outbox_emit(
  event_type     text,
  payload        jsonb,
  aggregate_type text    DEFAULT NULL,
  aggregate_id   text    DEFAULT NULL,
  key            text    DEFAULT NULL,
  topic          text    DEFAULT NULL,
  headers        jsonb   DEFAULT '{}',
  id             uuid    DEFAULT gen_random_uuid(),
  prefix         text    DEFAULT 'outbox'
) RETURNS pg_lsn
LANGUAGE sql VOLATILE AS $$
  SELECT public.outbox_emit_bytes(event_type, convert_to(payload::text, 'UTF8'), aggregate_type, aggregate_id, key, topic,
                                  headers, id, prefix, 'application/json')
$$;

-- The relay's role needs nothing for this; the applications that emit need EXECUTE (granted to PUBLIC by default).

import * as z from 'zod/mini';
import { isLsn } from '../lsn.js';
import { GUARANTEES } from './guarantee-config.js';
import { formatReplayWindow, parseReplayWindow } from '../checkpoint/replay-window.js';
import { PRESETS, fromJson, tableSchemas } from './table-schemas.js';
import { formatDuration, formatSize, parseDuration, parseSize } from './units.js';
import { preprocess } from './zod.js';

/**
 * Every setting, once: its key in the config file, its environment variable, its flag, its type, default and
 * documentation. The loader, the CLI flags and the README's configuration reference are all derived from this
 * list, so they cannot drift apart.
 */
/**
 * What part of the relay a setting configures. Each command declares the groups it reads
 * (src/cli/command-settings.ts), and its --help offers exactly those settings as flags.
 */
export type SettingGroup =
  | 'postgres' // the connection
  | 'slot'
  | 'publication'
  | 'tables' // which outbox tables
  | 'mapping' // how a row becomes a record: columns, topics, routes, filters, envelope
  | 'messages' // logical messages (pg_logical_emit_message) besides the tables
  | 'start' // a one-off start position of the stream
  | 'heartbeat'
  | 'kafka' // connection and producer
  | 'delivery' // in-flight limits, batching, the guarantee, record retries, status reports, the receive timeout, the replay window
  | 'retry' // backoff while Kafka or PostgreSQL is unavailable
  | 'poison'
  | 'checkpoint'
  | 'shutdown'
  | 'http'
  | 'client' // a running relay's address
  | 'logging';

export interface Setting {
  key: string;
  env: string;
  flag: string;
  group: SettingGroup;
  /** Validates and converts a raw value (a string from env/flags, anything from a file). */
  schema: z.ZodMiniType;
  default?: unknown;
  /**
   * The default as help and the docs show it, only where there is no value of its own (it falls back to other
   * sources, or depends on another setting); a default value is shown as writtenValue writes it.
   */
  shownDefault?: string;
  doc: string;
  /** What the flag's value looks like in --help, e.g. `<url>`. */
  placeholder: string;
  secret?: boolean;
  /** Shown once valid, but not echoed when invalid: it may hold credentials that a later check refuses (kafka.producer). */
  unechoed?: boolean;
  /**
   * A flag's '' unsets it over the environment and the config file (resolveSettings): how a printed command says
   * that the relay left it unset, which an OUTBOX_RELAY_* variable where the command is pasted would otherwise set
   * (src/source/republish-command.ts). An empty variable stays unset, as for every setting without "" as a value.
   */
  clearable?: boolean;
  /** Former names, still accepted with a deprecation warning that names the current one. */
  deprecated?: { flag?: string; env?: string };
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_$]{0,62}$/;
const identifier = z.string().check(z.regex(IDENT, 'a PostgreSQL identifier: letters, digits, _ or $, starting with a letter or _, at most 63 characters'));
const optionalIdentifier = z.union([identifier, z.literal('')]);
const qualifiedTable = z.string().check(z.regex(/^([A-Za-z_][A-Za-z0-9_$]{0,62}\.)?[A-Za-z_][A-Za-z0-9_$]{0,62}$/, 'a table name, optionally schema-qualified: public.outbox'));
const text = z.string().check(z.minLength(1, 'a non-empty string'));
const bool = preprocess((v) => (typeof v === 'string' ? { true: true, false: false, '1': true, '0': false, yes: true, no: false }[v.toLowerCase()] ?? v : v), z.boolean({ error: 'true or false' }));
const int = (min: number, max: number) =>
  preprocess((v) => (typeof v === 'string' && /^\d+$/.test(v.trim()) ? Number(v) : v), z.number({ error: `a whole number from ${min} to ${max}` }).check(z.int(), z.minimum(min), z.maximum(max)));
/** How values of a schema are written by an operator, where that is not how they are held (ms, bytes). */
const WRITTEN_AS = new WeakMap<z.ZodMiniType, (value: never) => string>();
function writtenAs<S extends z.ZodMiniType, V>(schema: S, format: (value: V) => string): S {
  WRITTEN_AS.set(schema, format as (value: never) => string);
  return schema;
}
/** Node runs a timer of more than 2^31-1 ms (~24.8 days) after 1 ms: no duration may come near it. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** A number without its unit, from a flag, a variable or the file (a YAML `30`): refused, not read as milliseconds. */
const UNITLESS = /^\s*\d+(\.\d+)?\s*$/;
const durationForm = (input: unknown) =>
  typeof input === 'string' && UNITLESS.test(input) ? `a duration with its unit, such as ${input.trim()}s or ${input.trim()}ms (only 0 may go without)` : 'a duration such as 500ms, 30s, 5m or 1h';
const duration = (min: number, max = MAX_TIMER_MS) =>
  writtenAs(
    preprocess(
      // A file's number is handed on as the text it stands for, so that only 0 passes, as in a flag.
      (v) => (typeof v === 'string' ? (parseDuration(v) ?? v) : typeof v === 'number' && v !== 0 ? String(v) : v),
      z.number({ error: (issue) => durationForm(issue.input) }).check(z.int(), z.minimum(min, `at least ${min} ms`), z.maximum(max, `at most ${formatDuration(max)}`)),
    ),
    formatDuration,
  );
const size = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  writtenAs(
    preprocess(
      (v) => (typeof v === 'string' ? (parseSize(v) ?? v) : v),
      z.number({ error: 'a size such as 900KiB, 64MiB or 1GB' }).check(z.int(), z.minimum(min, `at least ${min} bytes`), z.maximum(max, `at most ${max} bytes`)),
    ),
    formatSize,
  );
/**
 * Comma-separated, or (env and flags) a JSON array, whose entries are taken as written: the only way to give one
 * holding a comma, or space at its ends, which a printed republish needs for such a filter glob.
 */
const list = preprocess((v) => {
  const parsed = fromJson(v);
  return typeof parsed === 'string' ? parsed.split(',').map((s) => s.trim()).filter(Boolean) : parsed;
}, z.array(text).check(z.minLength(1, 'at least one entry')));
const lsn = z.string().check(z.refine(isLsn, 'an LSN such as 0/16B3748'));
// PostgreSQL's own rule for slot names (ReplicationSlotValidateName); anything else it refuses only at creation.
const slotName = z.string().check(z.regex(/^[a-z0-9_]{1,63}$/, 'a replication slot name: lower-case letters, digits and _, at most 63 characters (PostgreSQL’s rule)'));
const brokerAddress = /^(\[[0-9A-Fa-f:.]+\]|[^\s:/,\[\]]+):([1-9]\d{0,4})$/;
const isBroker = (b: string) => brokerAddress.test(b) && Number(brokerAddress.exec(b)![2]) <= 65535;
const brokers = list.check(
  z.superRefine((entries, ctx) => {
    const bad = (entries as string[]).filter((b) => !isBroker(b));
    if (bad.length) ctx.addIssue({ code: 'custom', message: `host:port for every broker, with a port from 1 to 65535 (not ${bad.map((b) => JSON.stringify(b)).join(', ')})` });
  }),
);
// No user info: the relay's HTTP server has no authentication (fetch refuses a URL with it), and a password in it would be shown.
// Parsed too: one the regex lets through but fetch cannot parse (a port past 65535, a bad IPv6 literal) failed only
// in status's request, reported as PostgreSQL refusing the operation (PG_QUERY_FAILED, SQLSTATE ERR_INVALID_URL).
const HTTP_URL_FORM = 'an http(s) URL such as http://127.0.0.1:9464, without user or password';
const httpUrl = z.string().check(z.regex(/^https?:\/\/[^\s/@]+(\/\S*)?$/, HTTP_URL_FORM), z.refine((url) => URL.canParse(url), HTTP_URL_FORM));
/**
 * A URL pg reads as written: a postgres:// (or postgresql://, socket:) URL whose user info the URL parser finds.
 * Without a scheme, or with an unencoded #, ? or / in the password, the parser takes the password for a scheme, a
 * port, a query or a fragment: the relay would connect elsewhere, and the redaction would show it.
 */
export function isPostgresUrl(url: string): boolean {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return false;
  }
  if (!['postgres:', 'postgresql:', 'socket:'].includes(parsed.protocol)) return false;
  // libpq's reading: an @ before the first / ends the user info.
  return parsed.username !== '' || parsed.password !== '' || !/^[^/]*@/.test(url.slice(parsed.protocol.length).replace(/^\/\//, ''));
}
export const POSTGRES_URL_FORM = 'a URL such as postgres://user@host:5432/database (percent-encode special characters of the password: # ? / @ : %)';
const postgresUrl = text.check(z.refine(isPostgresUrl, POSTGRES_URL_FORM));
const enumOf = <const T extends string>(values: readonly [T, ...T[]]) => z.enum(values, { error: `one of: ${values.join(', ')}` });
const REPLAY_WINDOW_FORM = 'a duration such as 6h or 90m, or a WAL size such as 2GiB or 512MB (with its unit; a bare M is refused: minutes or megabytes?), or 0 for none';
// Written as text (a file's `0` is a number): a mapping in a config file is not a way to write it, and one that
// only looked like a parsed window reached the replay window's arithmetic unchecked.
const replayWindow = writtenAs(
  preprocess(
    (v) => (typeof v === 'string' ? (parseReplayWindow(v) ?? v) : v === 0 ? { kind: 'none' } : typeof v === 'object' && v !== null ? REPLAY_WINDOW_FORM : v),
    z.union(
      [
        z.object({ kind: z.literal('none') }),
        z.object({ kind: z.literal('duration'), ms: z.number().check(z.int(), z.minimum(1)) }),
        z.object({ kind: z.literal('size'), bytes: z.number().check(z.int(), z.minimum(1)) }),
      ],
      { error: REPLAY_WINDOW_FORM },
    ),
  ),
  formatReplayWindow,
);
const propertyValue = z.pipe(z.union([z.string(), z.number(), z.boolean()]), z.transform(String));
const producerProperties = preprocess(
  (v) => (typeof v === 'string' ? Object.fromEntries(v.split(',').filter((p) => p.trim()).map((p) => [p.split('=', 1)[0]!.trim(), p.includes('=') ? p.slice(p.indexOf('=') + 1).trim() : undefined])) : v),
  z.record(z.string().check(z.regex(/^[a-z][a-z0-9.]*$/, 'a librdkafka property name such as queue.buffering.max.kbytes')), propertyValue, { error: 'librdkafka properties: name=value,… (a mapping in the config file)' }),
);
const structured = tableSchemas({ identifier, optionalIdentifier, qualifiedTable, text, list });

/** A setting as declared: its key and schema kept as types, and whether it has a default (then it is never absent). */
type Declared<K extends string, S extends z.ZodMiniType, E extends Partial<Setting>> = Setting & { key: K; schema: S; defaulted: E extends { default: unknown } ? true : false };

function setting<const K extends string, S extends z.ZodMiniType, const E extends Partial<Setting> = {}>(key: K, group: SettingGroup, schema: S, doc: string, extra?: E): Declared<K, S, E> {
  const kebab = key.replace(/\./g, '-').replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
  const env = `OUTBOX_RELAY_${key.replace(/\./g, '_').replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
  return { key, group, schema, doc, env, flag: `--${kebab}`, placeholder: '<value>', ...extra } as Declared<K, S, E>;
}

export const SETTINGS = [
  // PostgreSQL connection: besides these, the standard DATABASE_URL and libpq PG* variables (PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD) apply.
  setting('postgres.url', 'postgres', postgresUrl, 'PostgreSQL connection URL (postgres:// or postgresql://; percent-encode special characters of the password) of the database that holds the outbox. Falls back to DATABASE_URL, then to the PG* variables.', {
    env: 'OUTBOX_RELAY_POSTGRES_URL',
    flag: '--postgres-url',
    placeholder: '<url>',
    secret: true,
    shownDefault: 'DATABASE_URL, else the PG* variables',
  }),
  setting('postgres.passwordFile', 'postgres', text, 'File whose content is the PostgreSQL password (a mounted secret); overrides a password in the URL.', { placeholder: '<path>' }),
  setting('postgres.sslmode', 'postgres', enumOf(['disable', 'prefer', 'require', 'verify-ca', 'verify-full']), 'TLS to PostgreSQL, as libpq: disable, prefer (TLS when the server offers it, else plain text), require (encrypt, no verification), verify-ca, verify-full. Set, it replaces an sslmode in the URL, which pg would read its own way (prefer, require and verify-ca as verify-full), and refuses sslrootcert, sslcert or sslkey there, which it would drop: postgres.sslCaFile gives the CA; a client certificate is read only from the URL, with the URL’s own sslmode.', {
    placeholder: '<mode>',
  }),
  setting('postgres.sslCaFile', 'postgres', text, 'CA certificate (PEM) that verify-ca/verify-full check the server against; refused with any other postgres.sslmode, which would not read it.', { placeholder: '<path>' }),
  setting('postgres.connectTimeout', 'postgres', duration(100, 10 * 60_000), 'How long one connection attempt may take, PostgreSQL\'s start-up answer included: a server that accepts the TCP connection and never answers (stopped but reachable), or a network path that drops packets, fails the attempt (PG_STREAM_FAILED: the session, the start position and a standby retry it as an outage, the heartbeat and the slot-lag probe at their next turn; an operator command exits with PG_CONNECT_FAILED). Also the margin of the relay\'s own bound on each query, see postgres.statementTimeout (at most 10m).', { default: 10_000, placeholder: '<duration>' }),
  setting(
    'postgres.statementTimeout',
    'postgres',
    duration(100, 24 * 3_600_000),
    'How long one SQL statement may run (statement_timeout) before PostgreSQL cancels it: catalog queries, slot and publication commands, republish reads, the heartbeat. Bounds a wait on a lock or on a long transaction (a new slot waits for every transaction open when it was asked for). Not the replication stream. The relay itself waits at most this plus postgres.connectTimeout for the answer to any query (the pre-flight checks, the heartbeat, the slot-lag probe, a standby\'s poll, the start position, operator commands): a server or network path that hangs fails the query (PG_STREAM_FAILED: the session, the start position and a standby retry it as an outage, the heartbeat and the slot-lag probe at their next turn; an operator command exits with PG_CONNECT_FAILED) instead of holding it silently for good (at most 24h).',
    { default: 2 * 60_000, placeholder: '<duration>' },
  ),

  setting('slot', 'slot', slotName, 'Logical replication slot the relay streams from (the pgoutput plugin). It records the confirmed position.', { default: 'outbox_relay', placeholder: '<name>' }),
  setting('publication', 'publication', identifier, 'Publication that limits the stream to the outbox table(s), insert-only.', { default: 'outbox_relay', placeholder: '<name>' }),
  setting('table', 'tables', qualifiedTable, 'The outbox table, optionally schema-qualified.', { default: 'public.outbox', placeholder: '<schema.table>' }),
  setting('mapping.id', 'mapping', identifier, 'Column holding the event id: the `id` header, and the key unless mapping.key says otherwise.', { default: 'id', placeholder: '<column>' }),
  setting('mapping.key', 'mapping', identifier, 'Column whose value becomes the Kafka key (default: the id column). Use the aggregate id column for per-aggregate ordering.', {
    placeholder: '<column>',
  }),
  setting('mapping.payload', 'mapping', identifier, 'Column forwarded as the record value, as stored (json/jsonb/text as UTF-8 text, bytea as bytes).', { default: 'payload', placeholder: '<column>' }),
  setting('mapping.nullPayload', 'mapping', enumOf(['poison', 'tombstone']), 'A row whose payload column is NULL: poison (RECORD_REQUIRED_NULL; delivery.onPoison applies), or tombstone (a record with a null value, which deletes its key from a compacted topic).', {
    default: 'poison',
    placeholder: '<poison|tombstone>',
  }),
  setting('mapping.type', 'mapping', optionalIdentifier, 'Column with the event type (header `type`); set to "" to leave it out.', { default: 'event_type', placeholder: '<column>' }),
  setting('mapping.aggregateType', 'mapping', optionalIdentifier, 'Column with the aggregate type (header `aggregate-type`); "" leaves it out.', { default: 'aggregate_type', placeholder: '<column>' }),
  setting('mapping.aggregateId', 'mapping', optionalIdentifier, 'Column with the aggregate id (header `aggregate-id`); "" leaves it out.', { default: 'aggregate_id', placeholder: '<column>' }),
  setting('mapping.headers', 'mapping', optionalIdentifier, 'Column (json, jsonb or text) holding a JSON object whose top-level keys become record headers, each value as stored (strings unquoted), except the names of the relay’s own headers; "" leaves it out.', { default: 'headers', placeholder: '<column>' }),
  setting('topic', 'mapping', text, 'Destination topic: a fixed name or a template with ${column} placeholders filled from the row.', {
    default: 'outbox.${aggregate_type}',
    placeholder: '<template>',
  }),
  setting('mapping.timestamp', 'mapping', optionalIdentifier, 'Column with the event time (timestamptz; a timestamp without time zone is read as UTC, so store UTC in it or use timestamptz): the Kafka record timestamp and, in the CloudEvents envelope mode, ce_time. "" leaves the record timestamp to the producer (the send time) and uses the commit time for ce_time.', { default: '', placeholder: '<column>' }),
  setting('preset', 'mapping', enumOf(PRESETS), 'Mapping defaults of a known outbox schema: debezium = Debezium EventRouter (id, aggregatetype, aggregateid, type, payload; topic outbox.event.${aggregatetype}; key = aggregate id). Explicit mapping.*/topic settings still win.', {
    default: 'none',
    placeholder: '<preset>',
  }),
  setting('routes', 'mapping', structured.routes, 'Per-event-type routing rules, first match wins, else the topic template: `Order*=orders,Payment*=payments`, or in the file a list of { type, aggregateType, topic } (globs; topic may be a template).', {
    placeholder: '<glob=topic,…>',
    clearable: true,
  }),
  setting('filter.includeTypes', 'mapping', list, 'Relay only events whose type matches one of these globs (comma-separated, or a JSON array: `["Order,Created","Invoice*"]` for a glob holding a comma); others are skipped but still confirmed.', { placeholder: '<glob,…>', clearable: true }),
  setting('filter.excludeTypes', 'mapping', list, 'Skip events whose type matches one of these globs.', { placeholder: '<glob,…>', clearable: true }),
  setting('filter.includeAggregateTypes', 'mapping', list, 'Relay only events whose aggregate type matches one of these globs.', { placeholder: '<glob,…>', clearable: true }),
  setting('filter.excludeAggregateTypes', 'mapping', list, 'Skip events whose aggregate type matches one of these globs.', { placeholder: '<glob,…>', clearable: true }),
  setting('tables', 'tables', structured.tables, 'Several outbox tables, each { table, preset, mapping, topic, routes, filter }; unset fields inherit the single-table settings. Replaces `table`. JSON in env and flags.', {
    placeholder: '<json>',
  }),
  setting('envelope.mode', 'mapping', enumOf(['none', 'cloudevents']), 'none, or cloudevents: CloudEvents 1.0 Kafka binary mode (ce_id, ce_type, ce_source, ce_specversion, ce_time, ce_subject headers; the value stays the payload).', {
    default: 'none',
    placeholder: '<mode>',
  }),
  setting('envelope.source', 'mapping', text, 'The CloudEvents source attribute (ce_source); default /<schema>/<table>, or /messages/<prefix> for logical messages.', { placeholder: '<uri-reference>', clearable: true }),
  setting('messages.prefixes', 'messages', list, 'Relay transactional pg_logical_emit_message() events with these prefixes (comma-separated; see sql/004_emit_event.sql). Unset: logical messages are not requested.', {
    placeholder: '<prefix,…>',
  }),
  setting('messages.topic', 'messages', text, 'Topic template for logical-message events without a topic of their own; placeholders: ${id}, ${type}, ${key}, ${aggregate_type}, ${aggregate_id}, ${prefix}.', {
    default: 'outbox.${aggregate_type}',
    placeholder: '<template>',
  }),
  setting('heartbeat.interval', 'heartbeat', duration(0, 24 * 3_600_000), 'Emit pg_logical_emit_message(false, heartbeat.prefix, \'\') this often on a normal connection, so the slot advances while only other databases write; 0 turns it off (at most 24h).', {
    default: 0,
    placeholder: '<duration>',
  }),
  setting('heartbeat.prefix', 'heartbeat', text, 'Prefix of the heartbeat messages (never relayed).', { default: 'outbox-relay-heartbeat', placeholder: '<prefix>' }),
  setting('startLsn', 'start', lsn, 'Start streaming at this LSN instead of the checkpoint or slot position: within the replay window (the slot cannot rewind below its confirmed position), or, with run only, forward to skip (replay refuses a position beyond the delivered one: OPERATION_REFUSED). A one-off: run honours it only as a flag and ignores it, with a warning, from the environment or a config file; replay takes it from anywhere.', {
    placeholder: '<lsn>',
    deprecated: { flag: '--from-lsn', env: 'OUTBOX_RELAY_FROM_LSN' },
  }),

  setting('kafka.brokers', 'kafka', brokers, 'Kafka bootstrap servers, comma-separated host:port.', { placeholder: '<host:port,…>' }),
  setting('kafka.clientId', 'kafka', text, 'Client id the producer reports to the brokers.', { default: 'outbox-relay', placeholder: '<id>' }),
  setting('kafka.client', 'kafka', enumOf(['rdkafka', 'kafkajs']), 'Kafka client library: rdkafka (librdkafka through @confluentinc/kafka-javascript, native, built at install time), or kafkajs (pure JavaScript fallback with documented limits; see docs/delivery-guarantees.md "Kafka clients").', {
    default: 'rdkafka',
    placeholder: '<client>',
  }),
  setting('kafka.compression', 'kafka', enumOf(['none', 'gzip', 'snappy', 'lz4', 'zstd']), 'Record batch compression. kafkajs supports only none and gzip; the others need kafka.client rdkafka.', { default: 'none', placeholder: '<codec>' }),
  // librdkafka takes it as socket.timeout.ms too, which it limits to 5 minutes.
  setting('kafka.requestTimeout', 'kafka', duration(100, 5 * 60_000), 'How long the broker may take to answer one request before the client gives up on it (request.timeout.ms; at most 5m).', {
    default: 30_000,
    placeholder: '<duration>',
  }),
  setting('kafka.deliveryTimeout', 'kafka', duration(1000, 60 * 60_000), 'How long a produce request may go unanswered, the client\'s internal retries included, before the relay treats the broker as unavailable: one warn line, /readyz 503, exit after retry.maxDuration. rdkafka keeps retrying the records meanwhile, in order (exactly-once: this is also message.timeout.ms, capped by delivery.transactionTimeout) (at most 1h).', {
    default: 30_000,
    placeholder: '<duration>',
  }),
  setting('kafka.linger', 'kafka', duration(0, 60_000), 'rdkafka: how long the producer waits for more records before sending a request (linger.ms; at most 1m, and shorter than kafka.deliveryTimeout and, with exactly-once, delivery.transactionTimeout); the relay hands batches over whole, so more mostly adds latency.', {
    default: 1,
    placeholder: '<duration>',
  }),
  setting('kafka.batchSize', 'kafka', size(1024, 2 ** 31 - 1), 'rdkafka: largest record batch per partition in one request (batch.size; below 2GiB).', { default: 1_000_000, placeholder: '<size>' }),
  setting('kafka.clientRack', 'kafka', text, 'rdkafka: the rack (availability zone) the relay runs in (client.rack); reported to the brokers.', { placeholder: '<rack>' }),
  setting('kafka.producer', 'kafka', producerProperties, 'rdkafka: further librdkafka producer properties, passed through as given: in the file a mapping under kafka.producer ({ "queue.buffering.max.kbytes": 65536 }), in env and flags `name=value,…`. Properties that would break the delivery guarantees (acks, enable.idempotence, transactional.id, max.in.flight outside 1 to 5, retries, delivery.report.only.error, …) are refused at start; so is a property librdkafka does not know, or a value it refuses (CONFIG_INVALID, exit 2; config check too), each named in one error with the other problems.', {
    placeholder: '<name=value,…>',
    unechoed: true,
  }),
  setting('kafka.ssl', 'kafka', bool, 'Connect to the brokers with TLS. kafka.sslCaFile turns it on too (config check shows true, implied by kafka.sslCaFile), and refuses an explicit false beside it.', { default: false, placeholder: '<bool>' }),
  setting('kafka.sslCaFile', 'kafka', text, 'CA certificate (PEM) for the brokers’ TLS certificates; implies kafka.ssl (refused beside an explicit kafka.ssl false).', { placeholder: '<path>' }),
  setting('kafka.saslMechanism', 'kafka', enumOf(['plain', 'scram-sha-256', 'scram-sha-512']), 'SASL authentication mechanism; it alone turns SASL on, so the SASL user and password are refused without it.', { placeholder: '<mechanism>' }),
  setting('kafka.saslUsername', 'kafka', text, 'SASL user name.', { placeholder: '<name>' }),
  setting('kafka.saslPassword', 'kafka', text, 'SASL password (prefer kafka.saslPasswordFile, which replaces it when both are given).', { placeholder: '<password>', secret: true }),
  setting('kafka.saslPasswordFile', 'kafka', text, 'File whose content is the SASL password (a mounted secret); replaces kafka.saslPassword, as postgres.passwordFile replaces a password in the URL.', { placeholder: '<path>' }),

  // Measured (docs/benchmarks.md, "Analysis"): 5,000 events / 2 MiB drain faster and with less CPU per
  // event than 20,000 / 8 MiB. A local broker acknowledges within milliseconds, so a few thousand events keep
  // four batches busy; every record in flight survives garbage collections until its acknowledgement, so a
  // larger window is mostly collector work (and memory: each byte is held by the JS record and by the client).
  setting('delivery.maxInFlightEvents', 'delivery', int(1, 10_000_000), 'Events handed to Kafka and not yet acknowledged, at most; when reached the relay stops reading the replication stream (the rest of the socket read under way still comes in: up to 64 KiB of WAL messages, a few hundred small events past the limit). Each holds about 1 KiB of JavaScript heap, and the window must fit in half the heap: with the bin’s heap flags (48 MiB old space) at most 30720; a larger one is refused at start with the larger heap to give node (NODE_OPTIONS in the image, node’s command line under the bin).', {
    default: 5_000,
    placeholder: '<n>',
  }),
  setting('delivery.maxInFlightBytes', 'delivery', size(1024), 'Bytes of unacknowledged records, at most (the same backpressure as maxInFlightEvents, with the same overrun of one socket read).', {
    default: 2 * 1024 * 1024,
    placeholder: '<size>',
  }),
  // A batch is also kept to half the window over the batches in flight (DeliveryEngine): measured in
  // docs/benchmarks.md ("Batches a share of the window").
  setting('delivery.batchMaxEvents', 'delivery', int(1, 1_000_000), 'Records per produce call, at most. A batch is also kept to half of delivery.maxInFlightEvents over the batches kept in flight (4 with kafka.client rdkafka and at-least-once, otherwise 1), so that a full window reopens with batches still in flight: 625 with rdkafka and the default window.', { default: 5000, placeholder: '<n>' }),
  // Measured (docs/benchmarks.md): with rdkafka a 1 ms window cost CPU and latency at 1k-5k events/s, since
  // librdkafka's linger.ms already gathers concurrent produce calls into one request; kafkajs sends one request
  // per call, and there it cut requests by 40 % and CPU per event by 12 %.
  setting('delivery.coalesce', 'delivery', duration(0, 60_000), 'How long a batch that is not full may wait for more events before it is produced: at low rates several source transactions then share one produce call (kafkajs: one request), for at most this much latency; 0 produces each socket read’s events at once. Default 0 with rdkafka, whose kafka.linger already gathers them into one request, 1ms with kafkajs (at most 1m).', {
    shownDefault: '0 (rdkafka), 1ms (kafkajs)',
    placeholder: '<duration>',
  }),
  setting('delivery.batchMaxBytes', 'delivery', size(1024), 'Bytes per produce call, at most; keep it under the broker’s message.max.bytes. Also kept to half of delivery.maxInFlightBytes over the batches in flight, as delivery.batchMaxEvents: 256KiB with rdkafka and the default window.', {
    default: 900 * 1024,
    placeholder: '<size>',
  }),
  setting('delivery.onPoison', 'poison', enumOf(['halt', 'dead-letter']), 'What to do with a record that cannot be produced (NULL required column, too large, missing topic) once its retries are spent: halt without confirming it, or dead-letter it and continue. A record Kafka refuses halts exactly-once once its retries are spent, whatever this says; at-most-once checks topics before the hand-off, and drops a record Kafka refuses at the hand-off (too large) with its batch (docs/event-shaping.md).', {
    default: 'halt',
    placeholder: '<policy>',
  }),
  setting('delivery.deadLetterTopic', 'poison', text, 'Dead-letter topic (delivery.onPoison=dead-letter): a name or a template with ${topic}: the original topic, or the source table (schema.table) or message prefix when the event had none. Not the events\' own topic (${topic} alone, or a name that topic, a table\'s topic, a route or messages.topic gives), and a legal name for every table and message prefix as ${topic}: refused otherwise.', {
    default: '${topic}.dlq',
    placeholder: '<template>',
  }),
  setting('retry.recordMaxAttempts', 'delivery', int(1, 1000), 'Attempts to produce a record Kafka rejected (too large, missing topic, invalid) before delivery.onPoison applies. A refused request of several records is the first attempt of each, which is then produced alone to find the refused one: that one is produced twice with 1 too (outbox-dlq-attempts 2). exactly-once: each attempt streams its transaction again from the checkpoint (a refused request and its records produced alone count as one), and the last halts; a request refused as its session ends counts as an attempt of each of its records, whose refused one the next session finds (one attempt more when that request spent its count). Counted by the running process: a restarted relay counts anew.', { default: 3, placeholder: '<n>' }),
  setting('retry.recordMaxDuration', 'delivery', duration(0, 24 * 3_600_000), 'Longest time spent retrying one rejected record before delivery.onPoison applies (at most 24h).', {
    default: 10_000,
    placeholder: '<duration>',
  }),
  setting('retry.initialDelay', 'retry', duration(1, 10 * 60_000), 'First delay before retrying Kafka or reconnecting to PostgreSQL; doubles per attempt, with jitter (at most 10m).', {
    default: 250,
    placeholder: '<duration>',
  }),
  setting('retry.maxDelay', 'retry', duration(1, 60 * 60_000), 'Longest delay between two attempts (at most 1h).', { default: 15_000, placeholder: '<duration>' }),
  setting('retry.maxDuration', 'retry', duration(1000, 7 * 24 * 3_600_000), 'Give up (exit 1, so the orchestrator restarts the relay) after the broker or PostgreSQL has been unreachable this long (at most 168h, 7 days).', {
    default: 30 * 60_000,
    placeholder: '<duration>',
  }),
  setting('statusInterval', 'delivery', duration(50, 10 * 60_000), 'How often the confirmed position is reported to PostgreSQL (also keeps the walsender from timing out: at most half the server\'s wal_sender_timeout is used, with a warn line; at most 10m).', {
    default: 1000,
    placeholder: '<duration>',
  }),
  setting('postgres.receiveTimeout', 'delivery', duration(0, 24 * 3_600_000), 'How long the replication connection may carry nothing from PostgreSQL, not even a keepalive, while the relay reads it, before the relay drops it and reconnects (PG_STREAM_FAILED), like PostgreSQL\'s wal_receiver_timeout: it catches a server, walsender or network path that hangs with the connection open. After half of it the relay asks the server for a reply; time with the in-flight window full (nothing read) does not count. At least the server\'s wal_sender_timeout is used, with an info line: a walsender replaying a large transaction of tables outside the publication is silent for up to half of it (before PostgreSQL 15, possibly until it is through: raise this then). 0 turns it off (at most 24h).', {
    default: 60_000,
    placeholder: '<duration>',
  }),
  setting('shutdownGrace', 'shutdown', duration(0, 24 * 3_600_000), 'On SIGTERM, how long to wait for the open source transaction to be read to its commit and in-flight events to be acknowledged before exiting (at most 24h).', {
    default: 25_000,
    placeholder: '<duration>',
  }),
  setting('delivery.guarantee', 'delivery', enumOf(GUARANTEES), 'at-least-once: confirm after Kafka acknowledged (duplicates possible after a crash); exactly-once: Kafka transactions with a checkpoint, for read_committed consumers; at-most-once: confirm on hand-off, no retries (lossy). See docs/delivery-guarantees.md.', {
    default: 'at-least-once',
    deprecated: { flag: '--delivery', env: 'OUTBOX_RELAY_DELIVERY' },
    placeholder: '<guarantee>',
  }),
  setting('delivery.transactionTimeout', 'delivery', duration(1000, 15 * 60_000), 'exactly-once: the Kafka transaction timeout. A source transaction that takes longer to stream is aborted by the broker and streamed again once (a second time halts); it must not exceed the brokers\' transaction.max.timeout.ms (at most 15m, the brokers\' default cap).', {
    default: 60_000,
    placeholder: '<duration>',
  }),
  setting('checkpoint.topic', 'checkpoint', text, 'Compacted topic holding the delivered position per slot (key = slot name); created with cleanup.policy=compact if missing. A legal topic name that no event topic (topic, routes, messages.topic, delivery.deadLetterTopic) names.', {
    default: 'outbox-relay.checkpoints',
    placeholder: '<topic>',
  }),
  setting('replayWindow', 'delivery', replayWindow, 'Keep the slot this far behind the delivered checkpoint (a duration such as 6h or 90m, or WAL such as 2GiB or 512MB; a bare M is refused, minutes or megabytes), so that replay --start-lsn can go back that far; PostgreSQL keeps that much more WAL on disk. Recorded in the checkpoint: later runs and replays keep it until it is set again (0 releases it).', {
    placeholder: '<duration|size>',
  }),

  setting('http.port', 'http', int(0, 65535), 'Port of the health and metrics endpoints (/healthz, /readyz, /metrics); 0 turns the server off.', { default: 9464, placeholder: '<port>' }),
  setting('http.host', 'http', text, 'Address the HTTP server listens on. The default, ::, is every address, IPv4 and IPv6 alike (one dual-stack socket; 0.0.0.0 on a kernel without IPv6), so probes and scrapes reach it on IPv4-only, dual-stack and IPv6-only clusters; 0.0.0.0 is every IPv4 address only.', { default: '::', placeholder: '<address>' }),
  setting('relayUrl', 'client', httpUrl, 'Base URL of the running relay’s HTTP server, without user or password; `outbox-relay status` reads its /readyz there. Unset: the relay’s own address on this host, from http.port and http.host (127.0.0.1 for 0.0.0.0 or ::) as `health` reads them.', {
    default: 'http://127.0.0.1:9464',
    placeholder: '<url>',
  }),
  setting('log.level', 'logging', enumOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']), 'Log level (JSON lines on stdout). fatal and silent write error lines too: every exit other than 0 writes one, with its code and fix.', { default: 'info', placeholder: '<level>' }),
];

export const SETTINGS_BY_KEY = new Map<string, Setting>(SETTINGS.map((s) => [s.key, s]));

/** A setting as a fix names it: its key (also the config file's), flag and environment variable. */
export function settingRef(key: string): string {
  const setting = SETTINGS_BY_KEY.get(key);
  return setting ? `${key} (${setting.flag} / ${setting.env})` : key;
}

type DeclaredSetting = (typeof SETTINGS)[number];

/**
 * The validated values by key, typed from the table: each setting's schema output, never absent when it has a
 * default. What the loader returns once every value passed its schema (load.ts), so the config derivation needs
 * no casts.
 */
export type SettingValues = {
  [S in DeclaredSetting as S['key']]: S['defaulted'] extends true ? z.output<S['schema']> : z.output<S['schema']> | undefined;
};

/** A valid value as an operator would write it (30s, not 30000; 2MiB, not 2097152); lists, maps and "" as JSON. */
/**
 * How a value is written by an operator, and shown: by config check, help and the docs alike, so the same value
 * reads the same in each (a hand-written default of 60s against config check's 1m did not).
 */
export function writtenValue(setting: Setting, value: unknown): string {
  const format = WRITTEN_AS.get(setting.schema);
  if (format) return format(value as never);
  return typeof value === 'string' && value !== '' ? value : JSON.stringify(value);
}

/** The default as the example config file writes it: durations and sizes in their unit, other values as they are (a YAML number, a boolean). */
export function writtenDefault(setting: Setting): unknown {
  return WRITTEN_AS.has(setting.schema) && setting.default !== undefined ? writtenValue(setting, setting.default) : setting.default;
}

import { readFileSync } from 'node:fs';
import type pg from 'pg';
import type { KafkaConfig, SASLOptions } from 'kafkajs';
import { applicationName } from '../instance.js';
import { parseLsn, type Lsn } from '../lsn.js';
import { ConfigError, readConfigFile, readEnv, resolveSettings, type Origin, type RawValues } from './load.js';
import { SETTINGS } from './settings.js';
import type { EventFilter, RouteRule } from './table-schemas.js';
import { tableMappings } from './tables.js';

export interface TableMapping {
  schema: string;
  table: string;
  /** Column names; `undefined` where the mapping leaves a field out. */
  columns: {
    id: string;
    key: string;
    payload: string;
    type?: string;
    aggregateType?: string;
    aggregateId?: string;
    headers?: string;
    timestamp?: string;
  };
  topic: string;
  /** Per-event-type routing, first match wins; `topic` when none matches. */
  routes?: RouteRule[];
  filter?: EventFilter;
  envelope: EnvelopeConfig;
}

export interface EnvelopeConfig {
  mode: 'none' | 'cloudevents';
  source?: string;
}

export type PoisonPolicy = 'halt' | 'dead-letter';

export interface RetryPolicy {
  initialDelayMs: number;
  maxDelayMs: number;
  maxDurationMs: number;
  /** Records Kafka rejected: attempts and time before the poison policy applies. */
  recordMaxAttempts: number;
  recordMaxDurationMs: number;
}

export interface RelayConfig {
  postgres: pg.ClientConfig;
  slot: string;
  publication: string;
  tables: TableMapping[];
  startLsn?: Lsn;
  kafka: KafkaConfig & { client: 'kafkajs' | 'rdkafka'; compression: 'none' | 'gzip' };
  delivery: { maxInFlightEvents: number; maxInFlightBytes: number; batchMaxEvents: number; batchMaxBytes: number; onPoison: PoisonPolicy; deadLetterTopic: string };
  /** Logical-message source: undefined when no prefix is configured (messages are then not requested). */
  messages?: { prefixes: string[]; topic: string; envelope: EnvelopeConfig };
  heartbeat: { intervalMs: number; prefix: string };
  retry: RetryPolicy;
  statusIntervalMs: number;
  shutdownGraceMs: number;
  http: { port: number; host: string };
  logLevel: string;
  /** Where each setting's value came from (for `config` output and error messages). */
  origins: Record<string, Origin>;
  /** Validated setting values by key; secrets included, so never print this: see redactedSettings. */
  values: Record<string, unknown>;
}

function readSecretFile(path: string, key: string): string {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch (err) {
    throw new ConfigError(`cannot read ${key} ${path}: ${(err as Error).message}`, 'mount the secret file or fix the path');
  }
}

function postgresConfig(v: Record<string, unknown>, env: NodeJS.ProcessEnv): pg.ClientConfig {
  const url = (v['postgres.url'] as string | undefined) ?? env.DATABASE_URL;
  const config: pg.ClientConfig = { connectionTimeoutMillis: v['postgres.connectTimeout'] as number, application_name: applicationName(v.slot as string) };
  const sslmode = v['postgres.sslmode'] as string | undefined;
  if (url) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      const source = v['postgres.url'] ? 'postgres.url (--postgres-url / OUTBOX_RELAY_POSTGRES_URL)' : 'DATABASE_URL';
      throw new ConfigError(`${source} is not a URL`, 'use postgres://user@host:5432/database (percent-encode special characters in the password)');
    }
    // pg lets sslmode in the URL override an explicit `ssl` object, so our setting must take it out.
    if (sslmode) for (const p of ['sslmode', 'sslrootcert', 'sslcert', 'sslkey']) parsed.searchParams.delete(p);
    config.connectionString = parsed.toString();
  }
  if (v['postgres.passwordFile']) config.password = readSecretFile(v['postgres.passwordFile'] as string, 'postgres.passwordFile');
  if (sslmode) {
    const ca = v['postgres.sslCaFile'] ? readSecretFile(v['postgres.sslCaFile'] as string, 'postgres.sslCaFile') : undefined;
    if (sslmode === 'disable') config.ssl = false;
    else if (sslmode === 'prefer' || sslmode === 'require') config.ssl = { rejectUnauthorized: false };
    else if (sslmode === 'verify-ca') config.ssl = { rejectUnauthorized: true, ca, checkServerIdentity: () => undefined };
    else config.ssl = { rejectUnauthorized: true, ca };
  }
  return config;
}

function kafkaConfig(v: Record<string, unknown>): RelayConfig['kafka'] {
  const caFile = v['kafka.sslCaFile'] as string | undefined;
  const ssl = caFile ? { ca: [readSecretFile(caFile, 'kafka.sslCaFile')] } : (v['kafka.ssl'] as boolean);
  const mechanism = v['kafka.saslMechanism'] as SASLOptions['mechanism'] | undefined;
  let sasl: SASLOptions | undefined;
  if (mechanism) {
    const username = v['kafka.saslUsername'] as string | undefined;
    const password = v['kafka.saslPasswordFile'] ? readSecretFile(v['kafka.saslPasswordFile'] as string, 'kafka.saslPasswordFile') : (v['kafka.saslPassword'] as string | undefined);
    if (!username || !password) {
      throw new ConfigError(`kafka.saslMechanism ${mechanism} needs a user name and a password`, 'set OUTBOX_RELAY_KAFKA_SASL_USERNAME and OUTBOX_RELAY_KAFKA_SASL_PASSWORD_FILE (or _PASSWORD)');
    }
    sasl = { mechanism, username, password } as SASLOptions;
  }
  return {
    brokers: (v['kafka.brokers'] as string[] | undefined) ?? [],
    clientId: v['kafka.clientId'] as string,
    client: v['kafka.client'] as 'kafkajs' | 'rdkafka',
    ssl,
    ...(sasl ? { sasl } : {}),
    compression: v['kafka.compression'] as 'none' | 'gzip',
  };
}

export interface LoadOptions {
  flags: RawValues;
  env?: NodeJS.ProcessEnv;
  /** --config; falls back to OUTBOX_RELAY_CONFIG. */
  configFile?: string;
  required?: string[];
}

/** The one validated configuration object, built at start-up before any connection opens. */
export function loadConfig(options: LoadOptions): RelayConfig {
  const env = options.env ?? process.env;
  const fileName = options.configFile ?? env.OUTBOX_RELAY_CONFIG;
  const resolved = resolveSettings({ file: fileName ? readConfigFile(fileName) : undefined, fileName, env: readEnv(env), flags: options.flags, required: options.required ?? [] });
  const v = resolved.values;
  const envelope: EnvelopeConfig = { mode: v['envelope.mode'] as EnvelopeConfig['mode'], source: v['envelope.source'] as string | undefined };
  const prefixes = v['messages.prefixes'] as string[] | undefined;
  return {
    postgres: postgresConfig(v, env),
    slot: v.slot as string,
    publication: v.publication as string,
    tables: tableMappings(v, resolved.origins, envelope),
    startLsn: v.startLsn ? parseLsn(v.startLsn as string) : undefined,
    kafka: kafkaConfig(v),
    delivery: {
      maxInFlightEvents: v['delivery.maxInFlightEvents'] as number,
      maxInFlightBytes: v['delivery.maxInFlightBytes'] as number,
      batchMaxEvents: v['delivery.batchMaxEvents'] as number,
      batchMaxBytes: v['delivery.batchMaxBytes'] as number,
      onPoison: v['delivery.onPoison'] as PoisonPolicy,
      deadLetterTopic: v['delivery.deadLetterTopic'] as string,
    },
    messages: prefixes ? { prefixes, topic: v['messages.topic'] as string, envelope } : undefined,
    heartbeat: { intervalMs: v['heartbeat.interval'] as number, prefix: v['heartbeat.prefix'] as string },
    retry: {
      initialDelayMs: v['retry.initialDelay'] as number,
      maxDelayMs: v['retry.maxDelay'] as number,
      maxDurationMs: v['retry.maxDuration'] as number,
      recordMaxAttempts: v['retry.recordMaxAttempts'] as number,
      recordMaxDurationMs: v['retry.recordMaxDuration'] as number,
    },
    statusIntervalMs: v.statusInterval as number,
    shutdownGraceMs: v.shutdownGrace as number,
    http: { port: v['http.port'] as number, host: v['http.host'] as string },
    logLevel: v['log.level'] as string,
    origins: resolved.origins,
    values: v,
  };
}

/** Settings with secrets masked: safe for logs and --json output. */
export function redactedSettings(config: RelayConfig): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const setting of SETTINGS) {
    const value = config.values[setting.key];
    if (value === undefined) continue;
    if (setting.key === 'postgres.url') out[setting.key] = redactUrl(value as string);
    else out[setting.key] = setting.secret ? '***' : value;
  }
  return out;
}

export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    for (const [k] of parsed.searchParams) if (/pass/i.test(k)) parsed.searchParams.set(k, '***');
    return parsed.toString();
  } catch {
    return '***';
  }
}

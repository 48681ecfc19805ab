import { readFileSync } from 'node:fs';
import type pg from 'pg';
import type { SASLOptions } from 'kafkajs';
import { applicationName } from '../instance.js';
import { parseLsn, type Lsn } from '../lsn.js';
import { compileTopicTemplate } from '../route/topic-template.js';
import { ConfigError, readConfigFile, readEnv, resolveSettings, type RawValues } from './load.js';
import { checkClientSupport, checkProducerProperties } from './producer-properties.js';
import { SETTINGS } from './settings.js';
import { tableMappings } from './tables.js';
import type { Compression, EnvelopeConfig, KafkaClient, KafkaSettings, PoisonPolicy, RelayConfig } from './types.js';

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
  const filePassword = v['postgres.passwordFile'] ? readSecretFile(v['postgres.passwordFile'] as string, 'postgres.passwordFile') : undefined;
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
    // pg lets every field of the URL (an empty password included) override the explicit `password`, so the
    // file's password goes into the URL, percent-encoded, in place of the URL's own.
    if (filePassword !== undefined) {
      parsed.searchParams.delete('password');
      parsed.password = encodeURIComponent(filePassword);
    }
    config.connectionString = parsed.toString();
  } else if (filePassword !== undefined) config.password = filePassword;
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
  const client = v['kafka.client'] as KafkaClient;
  const compression = v['kafka.compression'] as Compression;
  const producer = (v['kafka.producer'] as Record<string, string> | undefined) ?? {};
  const clientRack = v['kafka.clientRack'] as string | undefined;
  checkProducerProperties(producer);
  checkClientSupport(client, compression, producer, clientRack, v['delivery.guarantee'] as string);
  return {
    brokers: (v['kafka.brokers'] as string[] | undefined) ?? [],
    clientId: v['kafka.clientId'] as string,
    client,
    ssl,
    ...(sasl ? { sasl } : {}),
    compression,
    requestTimeoutMs: v['kafka.requestTimeout'] as number,
    deliveryTimeoutMs: v['kafka.deliveryTimeout'] as number,
    lingerMs: v['kafka.linger'] as number,
    batchSizeBytes: v['kafka.batchSize'] as number,
    clientRack,
    producer,
  };
}

export interface LoadOptions {
  flags: RawValues;
  env?: NodeJS.ProcessEnv;
  /** --config; falls back to OUTBOX_RELAY_CONFIG. */
  configFile?: string;
  required?: string[];
  /** Receives one line per former setting name in use (default: stderr). */
  warn?: (line: string) => void;
}

/** The one validated configuration object, built at start-up before any connection opens. */
export function loadConfig(options: LoadOptions): RelayConfig {
  const env = options.env ?? process.env;
  const fileName = options.configFile ?? env.OUTBOX_RELAY_CONFIG;
  const resolved = resolveSettings({ file: fileName ? readConfigFile(fileName) : undefined, fileName, env: readEnv(env, options.warn ?? ((line) => process.stderr.write(`${line}\n`))), flags: options.flags, required: options.required ?? [] });
  const v = resolved.values;
  const envelope: EnvelopeConfig = { mode: v['envelope.mode'] as EnvelopeConfig['mode'], source: v['envelope.source'] as string | undefined };
  const prefixes = v['messages.prefixes'] as string[] | undefined;
  // Compiled only for their checks, so that a template that can never be legal fails here, naming its setting.
  if (prefixes) compileTopicTemplate(v['messages.topic'] as string, 'messages.topic');
  if (v['delivery.onPoison'] === 'dead-letter') compileTopicTemplate(v['delivery.deadLetterTopic'] as string, 'delivery.deadLetterTopic');
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
      coalesceMs: v['delivery.coalesce'] as number,
      onPoison: v['delivery.onPoison'] as PoisonPolicy,
      deadLetterTopic: v['delivery.deadLetterTopic'] as string,
      transactionTimeoutMs: v['delivery.transactionTimeout'] as number,
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

import type pg from 'pg';
import type { KafkaConfig } from 'kafkajs';
import type { Lsn } from '../lsn.js';
import type { EventFilter, RouteRule } from './table-schemas.js';

/**
 * The validated configuration's types, in one module that imports no code of its own: every stage depends on
 * these, and loadConfig (relay-config.ts) builds them from the settings table.
 */

/** Where a setting's value came from. */
export type Origin = 'default' | 'file' | 'env' | 'flag';

/**
 * Where a value the relay uses came from: its setting's origin, the preset, which replaced the default, or another
 * setting that implies it (RelayConfig.impliedBy), which did too.
 */
export type EffectiveOrigin = Origin | 'preset' | 'implied';

export type KafkaClient = 'rdkafka' | 'kafkajs';
export type Compression = 'none' | 'gzip' | 'snappy' | 'lz4' | 'zstd';

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
  /** A NULL payload: a poison event (RECORD_REQUIRED_NULL), or a tombstone record when asked for. */
  nullPayload: 'poison' | 'tombstone';
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

/** Connection (kafkajs' shape, which both clients are built from) plus the producer settings. */
export type KafkaSettings = KafkaConfig & {
  client: KafkaClient;
  compression: Compression;
  requestTimeoutMs: number;
  deliveryTimeoutMs: number;
  lingerMs: number;
  batchSizeBytes: number;
  clientRack: string | undefined;
  /** Pass-through librdkafka producer properties, already checked against the deny-list. */
  producer: Record<string, string>;
};

export interface RelayConfig {
  postgres: pg.ClientConfig;
  slot: string;
  publication: string;
  tables: TableMapping[];
  startLsn?: Lsn;
  kafka: KafkaSettings;
  delivery: {
    maxInFlightEvents: number;
    maxInFlightBytes: number;
    batchMaxEvents: number;
    batchMaxBytes: number;
    /** A request that is not full waits this long for more events (0: sent at once). */
    coalesceMs: number;
    onPoison: PoisonPolicy;
    deadLetterTopic: string;
    /** exactly-once: the Kafka transaction timeout. */
    transactionTimeoutMs: number;
  };
  /** Logical-message source: undefined when no prefix is configured (messages are then not requested). */
  messages?: { prefixes: string[]; topic: string; envelope: EnvelopeConfig };
  heartbeat: { intervalMs: number; prefix: string };
  retry: RetryPolicy;
  statusIntervalMs: number;
  /** postgres.receiveTimeout: the replication connection's longest silence while read (0: unbounded). */
  receiveTimeoutMs: number;
  shutdownGraceMs: number;
  http: { port: number; host: string };
  logLevel: string;
  /** Where each setting's value came from (for `config` output and error messages); `preset` where the global preset replaced the default, `implied` where another setting did (impliedBy). */
  origins: Record<string, EffectiveOrigin>;
  /** The setting whose value implies each `implied` one's, by key: kafka.ssl's is kafka.sslCaFile when a CA file is given. */
  impliedBy: Record<string, string>;
  /** The former flag or variable a value was given under, by key (--from-lsn, OUTBOX_RELAY_DELIVERY): named as given. */
  formerNames: Record<string, string>;
  /**
   * Validated setting values by key, as the relay uses them: the global preset's where it replaced the default,
   * and an implied value where another setting turns one on (impliedBy). Secrets included, so never print this: see redactedSettings.
   */
  values: Record<string, unknown>;
}

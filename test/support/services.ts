import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Kafka, logLevel, type IHeaders } from 'kafkajs';
import pg from 'pg';
import { inject } from 'vitest';
import { repoRoot, waitUntil, type StackInfo } from '../../stack/index.js';

export function stack(): StackInfo {
  return inject('stack');
}

/** A lower-case identifier unique to this run: every test owns its database, slot, publication and topics. */
export function uniqueName(prefix: string): string {
  return `${prefix}_${randomBytes(4).toString('hex')}`;
}

export function pgUrl(database: string, base = stack().pgUrl): string {
  const url = new URL(base);
  url.pathname = `/${database}`;
  return url.toString();
}

export interface TestDatabase {
  name: string;
  url: string;
  query<T extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<T>>;
  close(): Promise<void>;
}

/** A fresh database with the outbox table from sql/ (and nothing else); `withOptions`: CREATE DATABASE options (an encoding, say). */
export async function createDatabase(prefix = 'db', base = stack().pgUrl, withOptions = ''): Promise<TestDatabase> {
  const name = uniqueName(prefix);
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name} ${withOptions}`);
  } finally {
    await admin.end();
  }
  const url = pgUrl(name, base);
  // UTF-8 whatever the database's encoding: the tests' strings are JavaScript strings.
  const pool = new pg.Pool({ connectionString: url, max: 8, client_encoding: 'UTF8' });
  pool.on('error', () => undefined);
  await pool.query(readFileSync(join(repoRoot, 'sql/001_outbox_table.sql'), 'utf8'));
  return {
    name,
    url,
    query: (text, values) => pool.query(text, values),
    close: () => pool.end(),
  };
}

export function kafkaClient(brokers = stack().brokers): Kafka {
  return new Kafka({ clientId: 'test', brokers, logLevel: logLevel.NOTHING });
}

/**
 * Once `brokers` serve transactions. A fresh broker creates __transaction_state at the first InitProducerId and
 * answers "Not coordinator" (or "coordinator loading") until that topic's leader is up: an exactly-once relay
 * retries that with a warn line, which failed a test asserting on the relay's warn lines under load. A file that
 * starts its own broker for exactly-once has the broker do it first, with a transaction of the test's own (kafkajs
 * retries those answers).
 */
export async function transactionsReady(brokers: string[]): Promise<void> {
  const kafka = new Kafka({ clientId: 'test', brokers, logLevel: logLevel.NOTHING, retry: { retries: 10 } });
  const producer = kafka.producer({ transactionalId: uniqueName('transactions-ready'), idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    const transaction = await producer.transaction();
    await transaction.abort();
  } finally {
    await producer.disconnect();
  }
}

/** Deletes `topic` and waits until the brokers no longer name it. */
export async function deleteTopic(topic: string, brokers = stack().brokers): Promise<void> {
  const admin = kafkaClient(brokers).admin();
  await admin.connect();
  try {
    await admin.deleteTopics({ topics: [topic] });
    await waitUntil(`${topic} gone`, async () => !(await admin.listTopics()).includes(topic), 30_000, 100);
  } finally {
    await admin.disconnect();
  }
}

export async function createTopic(topic: string, partitions = 1, brokers = stack().brokers, configEntries: { name: string; value: string }[] = [], replicationFactor?: number): Promise<void> {
  const admin = kafkaClient(brokers).admin();
  await admin.connect();
  try {
    await admin.createTopics({ topics: [{ topic, numPartitions: partitions, configEntries, ...(replicationFactor ? { replicationFactor } : {}) }], waitForLeaders: false });
    // Not kafkajs' waitForLeaders: on a cluster, a node the new topic has not reached yet answers
    // UNKNOWN_TOPIC_OR_PARTITION, which kafkajs throws instead of waiting.
    await waitUntil(
      `leaders for every partition of ${topic}`,
      async () => {
        const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
        return topics[0]!.partitions.length === partitions && topics[0]!.partitions.every((p) => p.leader >= 0);
      },
      30_000,
      100,
    );
  } finally {
    await admin.disconnect();
  }
}

export interface ConsumedRecord {
  topic: string;
  partition: number;
  offset: string;
  key: string | null;
  value: Buffer | null;
  headers: Record<string, string>;
  /** The headers as Kafka holds them, for byte-exact checks. */
  rawHeaders: IHeaders;
  /** Record timestamp, ms since the epoch. */
  timestamp: number;
}

function headersToStrings(headers: IHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers ?? {})) {
    if (v === undefined) continue;
    out[k] = Array.isArray(v) ? v.map(String).join(',') : v.toString();
  }
  return out;
}

/**
 * Reads a topic from the beginning until `expected` records arrived and every partition was read to the end
 * offset it had at that moment (or the timeout), then keeps reading for `settleMs` more so that unexpected extra
 * records (leaks) are seen too. A count alone is not enough: duplicates reach it before every distinct record was
 * read, which once made a kill loop with many re-sends look like 18k lost events. Without `expected` it reads to
 * the end offsets it finds first: for a topic no one produces to any more, where a count is not known (an
 * at-most-once run loses events, and waiting for them would only spend the timeout).
 */
export async function readTopic(
  topic: string,
  options: { expected?: number; timeoutMs?: number; settleMs?: number; brokers?: string[]; readCommitted?: boolean },
): Promise<ConsumedRecord[]> {
  const kafka = kafkaClient(options.brokers);
  const consumer = kafka.consumer({ groupId: uniqueName('reader'), readUncommitted: !options.readCommitted, maxWaitTimeInMs: 200 });
  const admin = kafka.admin();
  const records: ConsumedRecord[] = [];
  // Per partition, the last offset fetched, commit markers and aborted records included, from kafkajs's end-of-batch
  // event: a fetch that returned only a marker (or only aborted records) never reaches eachBatch, and a reader that
  // counted from eachBatch alone waited out its whole timeout for the marker of a commit that landed between its
  // fetch of the transaction's last record and its read of the end offsets (3 of 10 tries by hand).
  const readTo = new Map<number, number>();
  consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
    readTo.set(payload.partition, Math.max(readTo.get(payload.partition) ?? -1, Number(payload.lastOffset)));
  });
  // A group rebalance (the coordinator moving back after a broker restart, before this reader's offsets were
  // committed) makes kafkajs fetch records it already handed over. Those are the reader's repeats, not copies the
  // relay produced: a relay duplicate has its own offset. So each (partition, offset) counts once.
  const seen = new Set<string>();
  await Promise.all([consumer.connect(), admin.connect()]);
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachBatch: async ({ batch }) => {
        for (const message of batch.messages) {
          const at = `${batch.partition}:${message.offset}`;
          if (seen.has(at)) continue;
          seen.add(at);
          records.push({
            topic: batch.topic,
            partition: batch.partition,
            offset: message.offset,
            key: message.key ? message.key.toString() : null,
            value: message.value,
            headers: headersToStrings(message.headers),
            rawHeaders: message.headers ?? {},
            timestamp: Number(message.timestamp),
          });
        }
      },
    });
    let ends: { partition: number; high: string }[] | undefined;
    const readToEnd = async () => {
      if (records.length < (options.expected ?? 0)) return false;
      ends ??= await admin.fetchTopicOffsets(topic);
      return ends.every((p) => (readTo.get(p.partition) ?? -1) + 1 >= Number(p.high));
    };
    await waitUntil(`${options.expected ?? 'all'} records on ${topic}, read to its end`, readToEnd, options.timeoutMs ?? 60_000).catch(() => undefined);
    await new Promise((r) => setTimeout(r, options.settleMs ?? 500));
  } finally {
    await Promise.all([consumer.disconnect(), admin.disconnect()]);
  }
  return records;
}

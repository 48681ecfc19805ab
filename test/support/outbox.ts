import { readFileSync } from 'node:fs';
import { waitUntil } from '../../stack/index.js';
import { randomUUID } from 'node:crypto';
import { formatLsn, parseLsn } from '../../src/lsn.js';
import { createTopic, stack, uniqueName, type TestDatabase } from './services.js';

export interface OutboxSetup {
  slot: string;
  publication: string;
  topic: string;
  /** CLI flags that point a relay at this database, slot, publication, topic and the test broker. */
  args: string[];
}

/** Publication (of `table`, public.outbox by default), slot and a topic of this test's own; the relay's flags to use them. */
export async function setupOutbox(db: TestDatabase, options: { partitions?: number; brokers?: string[]; extraArgs?: string[]; table?: string } = {}): Promise<OutboxSetup> {
  const slot = uniqueName('slot');
  const publication = uniqueName('pub');
  const topic = uniqueName('topic');
  await db.query(`CREATE PUBLICATION ${publication} FOR TABLE ${options.table ?? 'outbox'} WITH (publish = 'insert')`);
  await db.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [slot]);
  const brokers = options.brokers ?? stack().brokers;
  await createTopic(topic, options.partitions ?? 1, brokers);
  return {
    slot,
    publication,
    topic,
    args: [
      'run',
      '--postgres-url', db.url,
      '--slot', slot,
      '--publication', publication,
      '--topic', topic,
      '--kafka-brokers', brokers.join(','),
      '--status-interval', '200ms',
      ...(options.extraArgs ?? []),
    ],
  };
}

export interface Inserted {
  id: string;
  aggregateId: string;
}

/** Inserts `count` events in one transaction; returns their ids in insertion order. */
export async function insertEvents(db: TestDatabase, count: number, options: { aggregateId?: string; payload?: (i: number) => string } = {}): Promise<Inserted[]> {
  const rows = Array.from({ length: count }, (_, i) => ({ id: randomUUID(), aggregateId: options.aggregateId ?? `agg-${i % 10}`, payload: options.payload?.(i) ?? JSON.stringify({ n: i }) }));
  if (count === 0) return [];
  await db.query(
    `INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, payload)
     SELECT u.id, 'order', u.agg, 'OrderPlaced', u.payload::jsonb FROM unnest($1::uuid[], $2::text[], $3::text[]) AS u(id, agg, payload)`,
    [rows.map((r) => r.id), rows.map((r) => r.aggregateId), rows.map((r) => r.payload)],
  );
  return rows.map(({ id, aggregateId }) => ({ id, aggregateId }));
}

export async function slotConfirmedLsn(db: TestDatabase, slot: string): Promise<bigint> {
  const { rows } = await db.query<{ lsn: string | null }>('SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1', [slot]);
  return rows[0]?.lsn ? parseLsn(rows[0].lsn) : 0n;
}

/** The pid of the walsender streaming from the slot, or null while no one does. */
export async function slotActivePid(db: TestDatabase, slot: string): Promise<number | null> {
  const { rows } = await db.query<{ pid: number | null }>('SELECT active_pid AS pid FROM pg_replication_slots WHERE slot_name = $1', [slot]);
  return rows[0]?.pid ?? null;
}

export async function currentWalLsn(db: TestDatabase): Promise<bigint> {
  const { rows } = await db.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
  return parseLsn(rows[0]!.lsn);
}

/**
 * Where the commit record of transaction `xid` starts, read from the WAL after `from` (pg_walinspect). A slot
 * confirmed at or below it replays the transaction; only a confirmation past it would skip the transaction.
 */
export async function commitRecordLsn(db: TestDatabase, xid: string, from: bigint): Promise<bigint> {
  await db.query('CREATE EXTENSION IF NOT EXISTS pg_walinspect');
  const { rows } = await db.query<{ lsn: string }>(
    `SELECT start_lsn::text AS lsn FROM pg_get_wal_records_info($1::pg_lsn, pg_current_wal_flush_lsn())
     WHERE resource_manager = 'Transaction' AND record_type = 'COMMIT' AND xid::text = $2`,
    [formatLsn(from), xid],
  );
  if (rows.length !== 1) throw new Error(`expected one commit record of xid ${xid} after ${formatLsn(from)}, found ${rows.length}`);
  return parseLsn(rows[0]!.lsn);
}

/**
 * Every outbox id committed after `from`, with the end LSN of its transaction's commit record (pg_walinspect):
 * the position a relay confirms once that transaction is delivered.
 */
export async function committedIdsWithEndLsn(db: TestDatabase, from: bigint): Promise<{ id: string; endLsn: bigint }[]> {
  await db.query('CREATE EXTENSION IF NOT EXISTS pg_walinspect');
  const { rows } = await db.query<{ id: string; lsn: string }>(
    `SELECT o.id::text AS id, c.end_lsn::text AS lsn
     FROM outbox o
     JOIN pg_get_wal_records_info($1::pg_lsn, pg_current_wal_flush_lsn()) c
       ON c.resource_manager = 'Transaction' AND c.record_type = 'COMMIT' AND c.xid::text = o.xmin::text`,
    [formatLsn(from)],
  );
  return rows.map((r) => ({ id: r.id, endLsn: parseLsn(r.lsn) }));
}

/** Duplicate count and missing ids of a delivery, compared with what was committed. */
export function compareDelivery(committed: string[], delivered: (string | null)[]): { missing: string[]; duplicates: number; unexpected: number } {
  const seen = new Map<string, number>();
  for (const key of delivered) if (key !== null) seen.set(key, (seen.get(key) ?? 0) + 1);
  const committedSet = new Set(committed);
  const missing = committed.filter((id) => !seen.has(id));
  let duplicates = 0;
  let unexpected = 0;
  for (const [key, n] of seen) {
    if (!committedSet.has(key)) unexpected += n;
    else duplicates += n - 1;
  }
  return { missing, duplicates, unexpected };
}

/** The ground truth: every id committed to the outbox (rows are never deleted in these tests). */
export async function committedIds(db: TestDatabase): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>('SELECT id::text FROM outbox');
  return rows.map((r) => r.id);
}

export interface Writers {
  /** Stops the writers and waits for their last transaction. */
  stop(): Promise<void>;
  readonly commits: number;
}

/**
 * `count` concurrent writers, each committing transactions of 1–`maxRows` events until stopped. A failed
 * transaction (server restarting) is retried after a pause; what really committed is read back with committedIds().
 */
export function startWriters(db: TestDatabase, count: number, maxRows = 5, pauseMs = 5): Writers {
  let running = true;
  let commits = 0;
  const loops = Array.from({ length: count }, async (_, w) => {
    let t = 0;
    while (running) {
      try {
        await insertEvents(db, 1 + (t++ % maxRows), { aggregateId: `writer-${w}` });
        commits++;
      } catch {
        await new Promise((r) => setTimeout(r, 200));
      }
      await new Promise((r) => setTimeout(r, pauseMs));
    }
  });
  return {
    async stop() {
      running = false;
      await Promise.all(loops);
    },
    get commits() {
      return commits;
    },
  };
}

/** Peak resident memory (VmHWM) of a process, in MiB. */
export function peakRssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  return Math.round(kb / 1024);
}

/**
 * Waits until the slot confirmed everything written so far: every committed event is then in Kafka. Read the
 * topic after this, not by counting records: with duplicates a count can be reached before the tail arrived.
 */
export async function waitForConfirmedAll(db: TestDatabase, slot: string, timeoutMs = 120_000): Promise<void> {
  const target = await currentWalLsn(db);
  await waitUntil('the slot to confirm everything written', async () => (await slotConfirmedLsn(db, slot)) >= target, timeoutMs, 200);
}

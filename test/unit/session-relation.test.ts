import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { AckTracker } from '../../src/checkpoint/ack-tracker.js';
import { loadConfig } from '../../src/config/relay-config.js';
import type { Lsn } from '../../src/lsn.js';
import { RepeatedLines } from '../../src/outage-log.js';
import { Session } from '../../src/pipeline/session.js';
import type { OutboxEvent } from '../../src/route/event.js';
import type { Delivery } from '../../src/sink/delivery.js';
import { beginMessage, commitMessage, insertMessage, logicalMessage, relationMessage } from '../support/pgoutput-messages.js';

const silent = pino({ level: 'silent' });

const COLUMNS = ['id', 'aggregate_type', 'aggregate_id', 'event_type', 'payload', 'headers'];
/** The XLogData header before each pgoutput message (positions and send time unused here). */
const XLOG_HEADER = Buffer.alloc(25);

describe('Session, Relation messages', () => {
  it('halts with SCHEMA_TABLE_RENAMED when a mapped table is renamed while streaming, before its next row and without confirming past it', async () => {
    const config = loadConfig({ env: {}, flags: { 'postgres.url': 'postgres://u@h/db', 'kafka.brokers': 'k:9092' }, required: [] });
    const pushed: OutboxEvent[] = [];
    const delivery = { push: (e: OutboxEvent) => (pushed.push(e), true), committed: () => undefined, endSession: () => undefined, whenIdle: async () => undefined } as unknown as Delivery;
    const session = new Session(config, delivery, silent, new RepeatedLines(silent), {}, () => undefined);
    // What start() would set up, without a connection: the tracker, and a stream that takes the final status.
    const reported: Lsn[] = [];
    const inner = session as unknown as { tracker: AckTracker; stream: unknown; onData(chunk: Buffer, at: number): void };
    inner.tracker = new AckTracker(0x100n);
    inner.stream = { pause: () => undefined, sendStatus: async (lsn: Lsn) => void reported.push(lsn), close: async () => undefined };
    const feed = (message: Buffer) => inner.onData(Buffer.concat([XLOG_HEADER, message]), XLOG_HEADER.length);

    feed(beginMessage(0x200n, 1));
    feed(relationMessage('outbox', COLUMNS));
    feed(insertMessage(['e-1', 'order', 'o-1', 'OrderPlaced', '{"a":1}', '{}']));
    feed(commitMessage(0x200n, 0x210n));
    inner.tracker.acknowledge(pushed[0]!.txn);
    expect(inner.tracker.confirmed).toBe(0x210n);

    // ALTER TABLE public.outbox RENAME TO outbox_v2: the same relation, still published (publications list OIDs).
    feed(beginMessage(0x300n, 2));
    feed(relationMessage('outbox_v2', COLUMNS));
    feed(insertMessage(['e-2', 'order', 'o-2', 'OrderPlaced', '{"a":2}', '{}']));
    feed(commitMessage(0x300n, 0x310n));

    const error = await session.ended;
    expect(error).toMatchObject({ code: 'SCHEMA_TABLE_RENAMED', details: { table: 'public.outbox', renamedTo: 'public.outbox_v2' } });
    expect(error!.hint).toContain('set table (or its tables entry) to public.outbox_v2');
    expect(pushed.map((e) => e.eventId)).toEqual(['e-1']);
    expect(inner.tracker.confirmed).toBe(0x210n);
    expect(reported.at(-1)).toBe(0x210n);
  });

  it("reports the rows the filters left out with their transaction's commit LSN, so a bounded replay counts only its range", async () => {
    const config = loadConfig({ env: {}, flags: { 'postgres.url': 'postgres://u@h/db', 'kafka.brokers': 'k:9092', 'filter.excludeTypes': 'Ignored' }, required: [] });
    const delivery = { push: () => true, committed: () => undefined, endSession: () => undefined, whenIdle: async () => undefined } as unknown as Delivery;
    const filtered: [string, number, Lsn][] = [];
    const session = new Session(config, delivery, silent, new RepeatedLines(silent), { filtered: (table, rows, commitLsn) => void filtered.push([table, rows, commitLsn]) }, () => undefined);
    const inner = session as unknown as { tracker: AckTracker; stream: unknown; onData(chunk: Buffer, at: number): void };
    inner.tracker = new AckTracker(0x100n);
    inner.stream = { pause: () => undefined, sendStatus: async () => undefined, close: async () => undefined };
    const feed = (message: Buffer) => inner.onData(Buffer.concat([XLOG_HEADER, message]), XLOG_HEADER.length);
    feed(beginMessage(0x200n, 1));
    feed(relationMessage('outbox', COLUMNS));
    feed(insertMessage(['e-1', 'order', 'o-1', 'Ignored', '{}', '{}']));
    feed(commitMessage(0x200n, 0x210n));
    expect(filtered).toEqual([['public.outbox', 1, 0x200n]]);
  });

  it('relays rows written before a rename, decoded under the old name, once table names the new one: the mapped table is known by its OID', async () => {
    // public.outbox renamed to outbox_v2 with a backlog, table set to public.outbox_v2: WAL from before the rename
    // still says "outbox". Before, no mapping matched that name and the rows were passed over and confirmed.
    const { pushed, tracker, row } = openedSession('public.outbox_v2', 0x1000n);
    row(0x200n, 'e-1', 'outbox');
    expect(pushed.map((e) => e.eventId)).toEqual(['e-1']);
    // Not confirmed until Kafka has it: passed over, it would have been confirmed at once.
    expect(tracker.confirmed).toBe(0x100n);
  });

  it('relays a renamed table\'s backlog when pgoutput announces its old name again (after an index, a column, ANALYZE…), without halting', async () => {
    // public.outbox renamed to outbox_v2 with a backlog, table set to public.outbox_v2. pgoutput sends the Relation
    // again after every invalidation of the table, still under the old name: before, the second one halted with
    // SCHEMA_TABLE_RENAMED "renamed to public.outbox", whose fix the next start refused (not published).
    const { session, pushed, row } = openedSession('public.outbox_v2', 0x1000n);
    row(0x200n, 'e-1', 'outbox');
    row(0x300n, 'e-2', 'outbox');
    row(0x400n, 'e-3', 'outbox_v2');
    expect(pushed.map((e) => [e.eventId, e.txn.commitLsn])).toEqual([['e-1', 0x200n], ['e-2', 0x300n], ['e-3', 0x400n]]);
    expect(await stillOpen(session)).toBe(true);
  });

  it('relays a backlog through every name the table had before pre-flight: renamed back and forth, moved to another schema and back', async () => {
    const { session, pushed, row } = openedSession('public.outbox', 0x1000n);
    row(0x200n, 'e-1', 'outbox');
    row(0x300n, 'e-2', 'outbox_tmp');
    row(0x400n, 'e-3', 'outbox', 'archive');
    row(0x500n, 'e-4', 'outbox');
    expect(pushed.map((e) => e.eventId)).toEqual(['e-1', 'e-2', 'e-3', 'e-4']);
    expect(await stillOpen(session)).toBe(true);
  });

  it('still halts with SCHEMA_TABLE_RENAMED on a backlog renamed away from the name the settings map, when another table has that name now', async () => {
    // public.outbox renamed to outbox_v2 while the relay was down, and a new public.outbox created: pre-flight maps
    // the new table's OID, not this one's. Rows written to outbox_v2 before the start would be passed over.
    const { session, pushed, row } = openedSession('public.outbox', 0x1000n, new Map());
    row(0x200n, 'e-1', 'outbox');
    row(0x300n, 'e-2', 'outbox_v2');
    const error = await session.ended;
    expect(error).toMatchObject({ code: 'SCHEMA_TABLE_RENAMED', details: { table: 'public.outbox', renamedTo: 'public.outbox_v2' } });
    expect(pushed.map((e) => e.eventId)).toEqual(['e-1']);
  });

  it('still halts with SCHEMA_TABLE_RENAMED for a rename committed after pre-flight, after a backlog under the same table', async () => {
    const { session, pushed, row } = openedSession('public.outbox', 0x250n);
    row(0x200n, 'e-1', 'outbox');
    row(0x300n, 'e-2', 'outbox_v2');
    const error = await session.ended;
    expect(error).toMatchObject({ code: 'SCHEMA_TABLE_RENAMED', details: { table: 'public.outbox', renamedTo: 'public.outbox_v2' } });
    expect(pushed.map((e) => e.eventId)).toEqual(['e-1']);
  });

  it('halts with PG_PROTOCOL on an Insert of a relation never announced, instead of passing over the row and confirming past it', async () => {
    const config = loadConfig({ env: {}, flags: { 'postgres.url': 'postgres://u@h/db', 'kafka.brokers': 'k:9092' }, required: [] });
    const pushed: OutboxEvent[] = [];
    const delivery = { push: (e: OutboxEvent) => (pushed.push(e), true), committed: () => undefined, endSession: () => undefined, whenIdle: async () => undefined } as unknown as Delivery;
    const session = new Session(config, delivery, silent, new RepeatedLines(silent), {}, () => undefined);
    const inner = session as unknown as { tracker: AckTracker; stream: unknown; onData(chunk: Buffer, at: number): void };
    inner.tracker = new AckTracker(0x100n);
    inner.stream = { pause: () => undefined, sendStatus: async () => undefined, close: async () => undefined };
    const feed = (message: Buffer) => inner.onData(Buffer.concat([XLOG_HEADER, message]), XLOG_HEADER.length);

    // pgoutput sends a Relation before a relation's first change on each connection: without it, the row's table is unknown.
    feed(beginMessage(0x200n, 1));
    feed(insertMessage(['e-1', 'order', 'o-1', 'OrderPlaced', '{"a":1}', '{}']));
    feed(commitMessage(0x200n, 0x210n));
    expect(inner.tracker.confirmed).toBe(0x100n);

    const error = await session.ended;
    expect(error).toMatchObject({ code: 'PG_PROTOCOL' });
    expect(error!.message).toContain('relation 16385');
  });
});

describe('Session, messages it cannot decode', () => {
  it('halts with PG_PROTOCOL naming the WAL position and xid on a Commit cut short, without confirming the transaction', async () => {
    const { session, pushed, tracker, feed } = openedSession('public.outbox', 0x1000n);
    feed(beginMessage(0x300n, 7), 0x2f0n);
    feed(relationMessage('outbox', COLUMNS), 0x2f8n);
    feed(insertMessage(['e-1', 'order', 'o-1', 'OrderPlaced', '{"a":1}', '{}']), 0x2f8n);
    feed(commitMessage(0x300n, 0x310n).subarray(0, 20), 0x300n);
    const error = await session.ended;
    // Before: INTERNAL "decoding failed: The value of "offset" is out of range…", with neither position nor xid.
    expect(error).toMatchObject({ code: 'PG_PROTOCOL', details: { walPosition: '0/300', xid: 7 } });
    expect(error!.message).toBe("pgoutput: Commit message ('C') ends before its fields: 20 bytes (WAL position 0/300, xid 7)");
    expect(pushed.map((e) => e.eventId)).toEqual(['e-1']);
    tracker.acknowledge(pushed[0]!.txn);
    expect(tracker.confirmed).toBe(0x100n);
  });

  it('halts with PG_PROTOCOL on a Begin cut short, outside any transaction', async () => {
    const { session, feed } = openedSession('public.outbox', 0x1000n);
    feed(beginMessage(0x300n, 7).subarray(0, 12), 0x2f0n);
    const error = await session.ended;
    expect(error).toMatchObject({ code: 'PG_PROTOCOL', details: { walPosition: '0/2F0' } });
    expect(error!.message).toBe("pgoutput: Begin message ('B') ends before its fields: 12 bytes (WAL position 0/2F0, outside a transaction)");
  });

  it('halts with PG_PROTOCOL on an Insert with fewer columns than its Relation message, instead of reading the missing ones as NULL', async () => {
    const { session, pushed, tracker, feed } = openedSession('public.outbox', 0x1000n);
    feed(beginMessage(0x300n, 7), 0x2f0n);
    feed(relationMessage('outbox', COLUMNS), 0x2f8n);
    // No headers column: before, the row was relayed as if it were NULL.
    feed(insertMessage(['e-1', 'order', 'o-1', 'OrderPlaced', '{"a":1}']), 0x2f8n);
    feed(commitMessage(0x300n, 0x310n), 0x300n);
    expect(pushed).toEqual([]);
    const error = await session.ended;
    expect(error).toMatchObject({ code: 'PG_PROTOCOL', details: { relationId: 0x4001, table: 'public.outbox', rowColumns: 5, relationColumns: 6, walPosition: '0/2F8', xid: 7 } });
    expect(error!.message).toBe('pgoutput: an Insert into public.outbox (relation 16385) has 5 columns, its Relation message 6 (WAL position 0/2F8, xid 7)');
    expect(tracker.confirmed).toBe(0x100n);
  });

  it('halts with PG_PROTOCOL on an Insert that comes with no transaction open, instead of passing over the row', async () => {
    const { session, pushed, tracker, row, feed } = openedSession('public.outbox', 0x1000n);
    row(0x200n, 'e-1', 'outbox');
    tracker.acknowledge(pushed[0]!.txn);
    // After the Commit of 0x200, an Insert without a Begin: before, dropped without a word.
    feed(insertMessage(['e-2', 'order', 'o-2', 'OrderPlaced', '{"a":2}', '{}']), 0x2f8n);
    expect(await stillOpen(session)).toBe(false);
    const error = await session.ended;
    expect(error).toMatchObject({ code: 'PG_PROTOCOL', details: { relationId: 0x4001, walPosition: '0/2F8' } });
    expect(error!.message).toBe('pgoutput: an Insert of relation 16385 (public.outbox) with no Begin before it (WAL position 0/2F8, outside a transaction)');
    expect(pushed.map((e) => e.eventId)).toEqual(['e-1']);
    expect(tracker.confirmed).toBe(0x210n);
  });

  it('halts with PG_PROTOCOL on a transactional logical message that comes with no transaction open, instead of passing it over', async () => {
    const { session, pushed, feed } = openedSession('public.outbox', 0x1000n, undefined, { 'messages.prefixes': 'outbox' });
    feed(logicalMessage('outbox', '{"id":"m-1"}\n{}', true, 0x2f8n), 0x2f8n);
    expect(await stillOpen(session)).toBe(false);
    const error = await session.ended;
    expect(error).toMatchObject({ code: 'PG_PROTOCOL', details: { prefix: 'outbox', walPosition: '0/2F8' } });
    expect(error!.message).toBe('pgoutput: a transactional Message (prefix "outbox") with no Begin before it (WAL position 0/2F8, outside a transaction)');
    expect(pushed).toEqual([]);
  });

  it('names the WAL position and xid of a Relation that lacks a mapped column (SCHEMA_COLUMN_MISSING)', async () => {
    const { session, feed } = openedSession('public.outbox', 0x1000n);
    feed(beginMessage(0x300n, 7), 0x2f0n);
    feed(relationMessage('outbox', COLUMNS.filter((c) => c !== 'payload')), 0x2f8n);
    const error = await session.ended;
    expect(error).toMatchObject({ code: 'SCHEMA_COLUMN_MISSING', details: { column: 'payload', walPosition: '0/2F8', xid: 7 } });
    expect(error!.message).toMatch(/ \(WAL position 0\/2F8, xid 7\)$/);
  });
});

/**
 * A session as start() leaves it, without a connection, mapping `table`; pre-flight found the table under relation
 * 0x4001 (relationMessage's; `tablesByOid` replaces what it found) and the WAL at `walEnd`. `row` feeds one transaction with one outbox row, announced
 * by a Relation message under the name the WAL has for the table then; `feed` one message. `flags` adds settings.
 */
function openedSession(table: string, walEnd: Lsn, tablesByOid?: Map<number, unknown>, flags: Record<string, string> = {}) {
  const config = loadConfig({ env: {}, flags: { 'postgres.url': 'postgres://u@h/db', 'kafka.brokers': 'k:9092', table, ...flags }, required: [] });
  const pushed: OutboxEvent[] = [];
  const delivery = { push: (e: OutboxEvent) => (pushed.push(e), true), committed: () => undefined, endSession: () => undefined, whenIdle: async () => undefined } as unknown as Delivery;
  const session = new Session(config, delivery, silent, new RepeatedLines(silent), {}, () => undefined);
  const inner = session as unknown as { tracker: AckTracker; stream: unknown; slot: unknown; onData(chunk: Buffer, at: number): void };
  inner.tracker = new AckTracker(0x100n);
  inner.stream = { pause: () => undefined, sendStatus: async () => undefined, close: async () => undefined };
  inner.slot = { confirmedFlush: 0x100n, walStatus: 'reserved', tablesByOid: tablesByOid ?? new Map([[0x4001, config.tables[0]!]]), walEnd };
  /** `walStart`: where the XLogData message starts in the WAL (errors name it). */
  const feed = (message: Buffer, walStart = 0n) => {
    const header = Buffer.alloc(XLOG_HEADER.length);
    header.writeBigUInt64BE(walStart, 1);
    inner.onData(Buffer.concat([header, message]), header.length);
  };
  const row = (commitLsn: Lsn, id: string, name: string, schema?: string) => {
    feed(beginMessage(commitLsn, Number(commitLsn)));
    feed(relationMessage(name, COLUMNS, schema));
    feed(insertMessage([id, 'order', 'o-1', 'OrderPlaced', '{"a":1}', '{}']));
    feed(commitMessage(commitLsn, commitLsn + 0x10n));
  };
  return { session, pushed, tracker: inner.tracker, row, feed };
}

/** The session has not ended (a halt ends it at once). */
async function stillOpen(session: Session): Promise<boolean> {
  return Promise.race([session.ended.then(() => false), new Promise<boolean>((resolve) => setImmediate(() => resolve(true)))]);
}

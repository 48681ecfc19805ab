import { EventEmitter } from 'node:events';
import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import { parseLsn } from '../../src/lsn.js';
import { advanceSlot } from '../../src/ops/slot-advance.js';

/**
 * An inactive pgoutput slot at 0/100 whose advisory lock `lockPid` holds (a relay starting), or nobody; with
 * `publication` false no publication exists, and the peek sends `peekNotices` first, as pg emits NoticeResponses.
 */
function fakeServer(lockPid: number | null, { publication = true, peekNotices = [] }: { publication?: boolean; peekNotices?: object[] } = {}): { client: pg.Client; statements: string[]; events: EventEmitter; parameters: (unknown[] | undefined)[] } {
  const events = new EventEmitter();
  const statements: string[] = [];
  const slot = {
    slot_name: 'outbox_relay', slot_type: 'logical', plugin: 'pgoutput', database: 'app', in_current_db: true, active: false, active_pid: null, held_by: null,
    confirmed_flush_lsn: '0/100', restart_lsn: '0/100', wal_status: 'reserved', safe_wal_size: null, lag_bytes: '256',
  };
  const answer = (sql: string) => {
    if (sql.includes('FROM pg_replication_slots')) return [slot];
    if (sql.includes('FROM pg_locks')) return lockPid === null ? [] : [{ pid: lockPid }];
    if (sql.includes('pg_current_wal_lsn')) return [{ lsn: '0/200' }];
    if (sql.includes('pg_replication_slot_advance')) return [{ lsn: '0/200' }];
    if (sql.includes('FROM pg_publication WHERE')) return publication ? [{ owner: 'admin', puballtables: false, pubviaroot: false, pubinsert: true }] : [];
    if (sql.includes('FROM pg_publication_tables')) return [{ schemaname: 'public', tablename: 'outbox', rowfilter: null }];
    if (sql.includes('to_regclass')) return [{ name: '"public"."outbox"', oid: '16400' }];
    if (sql.includes('pg_logical_slot_peek_binary_changes')) {
      for (const notice of peekNotices) events.emit('notice', notice);
      return [{ transactions: 0, events: 0 }];
    }
    throw new Error(`unexpected query: ${sql}`);
  };
  const query = (sql: string, values?: unknown[]) => {
    statements.push(sql);
    parameters.push(values);
    return Promise.resolve({ rows: answer(sql) });
  };
  const parameters: (unknown[] | undefined)[] = [];
  return { client: { query, on: events.on.bind(events), off: events.off.bind(events) } as unknown as pg.Client, statements, events, parameters };
}

const options = { slot: 'outbox_relay', republish: { publication: 'outbox_relay' }, tables: [{ schema: 'public', table: 'outbox' }], messagePrefixes: [], to: parseLsn('0/200'), confirmed: true };
const advanced = (statements: string[]) => statements.some((s) => s.includes('pg_replication_slot_advance'));

describe('slot advance: refused while the slot is in use', () => {
  it('a relay starting (holding the slot\'s lock, not streaming yet): PG_SLOT_ACTIVE naming its pid, as for an active slot; nothing advanced', async () => {
    const { client, statements } = fakeServer(4242);
    await expect(advanceSlot(client, options)).rejects.toMatchObject({ code: 'PG_SLOT_ACTIVE', message: 'replication slot "outbox_relay" is in use by backend pid 4242', details: { activePid: 4242 } });
    expect(advanced(statements)).toBe(false);
  });

  it('nobody holds it: advanced', async () => {
    const { client, statements } = fakeServer(null);
    expect(await advanceSlot(client, options)).toMatchObject({ confirmedFlushLsn: '0/200' });
    expect(advanced(statements)).toBe(true);
  });
});

describe('slot advance: the preview never counts without the publication (PostgreSQL 18 decodes without it, counting 0)', () => {
  const preview = { ...options, confirmed: false };
  const peeked = (statements: string[]) => statements.some((s) => s.includes('pg_logical_slot_peek_binary_changes'));
  const skippedNotice = {
    severity: 'WARNING',
    code: '55000',
    message: 'skipped loading publication "outbox_relay"',
    where: 'slot "outbox_relay", output plugin "pgoutput", in the change callback, associated LSN 0/180',
  };

  it('a publication that does not exist: not counted, saying so and to check --publication; nothing peeked, nothing advanced', async () => {
    // Before, on 18: "1 ... 0 transaction(s) with 0 outbox event(s) in it".
    const { client, statements } = fakeServer(null, { publication: false });
    await expect(advanceSlot(client, preview)).rejects.toMatchObject({
      code: 'CONFIRMATION_REQUIRED',
      message: expect.stringContaining('the events in it could not be counted (publication "outbox_relay" does not exist, and the count decodes the WAL with it: check --publication)'),
      details: { transactions: null, events: null },
    });
    expect(peeked(statements)).toBe(false);
    expect(advanced(statements)).toBe(false);
  });

  it('a publication that exists but is skipped in the range (WAL written while it was dropped): the warning makes it uncounted', async () => {
    const { client } = fakeServer(null, { peekNotices: [skippedNotice] });
    const error = (await advanceSlot(client, preview).catch((err: unknown) => err)) as { code: string; message: string; details: Record<string, unknown> };
    expect(error).toMatchObject({ code: 'CONFIRMATION_REQUIRED', details: { transactions: null, events: null } });
    expect(error.message).toContain('could not be counted (replication slot "outbox_relay" cannot stream past WAL written while publication "outbox_relay" did not exist: skipped loading publication "outbox_relay")');
  });

  it('other notices leave the count as it is, and the listener is removed afterwards', async () => {
    const { client, events } = fakeServer(null, { peekNotices: [{ ...skippedNotice, message: 'skipped loading publication "another"' }] });
    await expect(advanceSlot(client, preview)).rejects.toMatchObject({ details: { transactions: 0, events: 0 } });
    expect(events.listenerCount('notice')).toBe(0);
  });
});

describe('slot advance: the preview counts the outbox tables\' rows only', () => {
  it('an INSERT counts only when its relation is an outbox table: a publication may hold others, which the relay passes over', async () => {
    // Before: every INSERT the publication streams counted, 500 rows of another table in the poison
    // transaction made "1 transaction(s) with 501 outbox event(s)".
    const { client, statements, parameters } = fakeServer(null);
    await expect(advanceSlot(client, { ...options, confirmed: false })).rejects.toMatchObject({ code: 'CONFIRMATION_REQUIRED' });
    const peek = statements.findIndex((s) => s.includes('pg_logical_slot_peek_binary_changes'));
    expect(statements[peek]).toMatch(/WHEN 73 THEN get_byte\(data, 1\)/);
    expect(parameters[peek]).toContainEqual(['16400']);
  });
});

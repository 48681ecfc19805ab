import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import { dropSlot } from '../../src/ops/slot-drop.js';

/**
 * An inactive pgoutput slot whose advisory lock nobody holds at the first look, and a relay (pid 4242) that takes
 * it right after: a standby instance taking over, or a relay starting, between the two reads of dropSlot.
 */
function fakeServer(): { client: pg.Client; statements: string[] } {
  const statements: string[] = [];
  const slot = {
    slot_name: 'outbox_relay', slot_type: 'logical', plugin: 'pgoutput', database: 'app', in_current_db: true, active: false, active_pid: null, held_by: null,
    confirmed_flush_lsn: '0/100', restart_lsn: '0/100', wal_status: 'reserved', safe_wal_size: null, lag_bytes: '0',
  };
  let lockReads = 0;
  const answer = (sql: string) => {
    if (sql.includes('FROM pg_replication_slots')) return [slot];
    if (sql.includes('FROM pg_locks')) return lockReads++ === 0 ? [] : [{ pid: 4242 }];
    if (sql.includes('pg_terminate_backend')) return [{ pg_terminate_backend: true }];
    if (sql.includes('min(xact_start)')) return [{ oldest: null, hidden: false }];
    // The relay that took the lock holds the slot by now: object_in_use.
    if (sql.includes('pg_drop_replication_slot')) throw Object.assign(new Error('replication slot "outbox_relay" is active for PID 4242'), { code: '55006' });
    throw new Error(`unexpected query: ${sql}`);
  };
  const query = (sql: string) => {
    statements.push(sql);
    return Promise.resolve({ rows: answer(sql) });
  };
  return { client: { query } as unknown as pg.Client, statements };
}

describe('slot drop without --force', () => {
  it('never terminates a backend, also one that took the slot\'s lock after the first look', async () => {
    const { client, statements } = fakeServer();
    const outcome = await dropSlot(client, 'outbox_relay', { publication: 'outbox_relay' }, false).catch((err: unknown) => err);
    expect(statements.filter((s) => s.includes('pg_terminate_backend'))).toEqual([]);
    // It got as far as the drop, which found the slot in use: refused, the slot left to that relay.
    expect(statements.filter((s) => s.includes('pg_drop_replication_slot'))).toHaveLength(1);
    expect(outcome).toMatchObject({ code: 'PG_SLOT_ACTIVE' });
  });
});

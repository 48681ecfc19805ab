import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import { parseLsn } from '../../src/lsn.js';
import { advanceSlot } from '../../src/ops/slot-advance.js';

/** An inactive pgoutput slot at 0/100 whose advisory lock `lockPid` holds (a relay starting), or nobody. */
function fakeServer(lockPid: number | null): { client: pg.Client; statements: string[] } {
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
    return [{ transactions: 0, events: 0 }];
  };
  const query = (sql: string) => {
    statements.push(sql);
    return Promise.resolve({ rows: answer(sql) });
  };
  return { client: { query } as unknown as pg.Client, statements };
}

const options = { slot: 'outbox_relay', publication: 'outbox_relay', messagePrefixes: [], to: parseLsn('0/200'), confirmed: true };
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

import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/logger.js';
import { parseLsn } from '../../src/lsn.js';
import { ServerFlushCheck } from '../../src/source/flush-check.js';
import { useDatabase } from '../support/database.js';
import { uniqueName } from '../support/services.js';

/** Settles `promise` within `ms`, or says it is still pending. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | 'pending'> {
  return Promise.race([promise, new Promise<'pending'>((resolve) => setTimeout(() => resolve('pending'), ms))]);
}

describe('ServerFlushCheck (at-most-once hands a batch to Kafka only once PostgreSQL holds its position)', () => {
  const db = useDatabase('flushcheck');

  it('waits until the slot’s confirmed_flush_lsn reaches the position; false once the session cannot report or the slot is gone', async () => {
    const slot = uniqueName('flush_slot');
    await db().query("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", [slot]);
    await db().query("INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, payload) VALUES (gen_random_uuid(), 'a', '1', 'e', '{}')");
    const target = parseLsn((await db().query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0]!.lsn);
    let alive = true;
    const check = new ServerFlushCheck({ connectionString: db().url }, slot, silentLogger(), () => alive);
    try {
      const reached = check.reached(target);
      // Read again and again while the slot stays behind: not held yet.
      expect(await within(reached, 500)).toBe('pending');
      await db().query('SELECT pg_replication_slot_advance($1, $2::pg_lsn)', [slot, (await db().query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0]!.lsn]);
      expect(await within(reached, 10_000)).toBe(true);
      // Held before: answered without a read.
      expect(await check.reached(target - 1n)).toBe(true);
      // The session ended with the position not held: it never will be by this session.
      const beyond = check.reached(target + (1n << 40n));
      expect(await within(beyond, 300)).toBe('pending');
      alive = false;
      expect(await within(beyond, 10_000)).toBe(false);
      alive = true;
      // The slot dropped under the session: nothing holds the position.
      await db().query('SELECT pg_drop_replication_slot($1)', [slot]);
      expect(await within(check.reached(target + (1n << 40n)), 10_000)).toBe(false);
    } finally {
      await check.close();
    }
  });
});

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

  it('waits until the slot’s confirmed_flush_lsn reaches the position; false once the session cannot report; PG_SLOT_MISSING when it finds no slot while the session holds it (its connection reached another server)', async () => {
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
      // No slot while the session holds it (here: dropped, as no walsender holds it): another server answers this
      // connection. Before, false: every hand-off withheld while the session went on confirming, all of it lost.
      await db().query('SELECT pg_drop_replication_slot($1)', [slot]);
      await expect(check.reached(target + (1n << 40n))).rejects.toMatchObject({ code: 'PG_SLOT_MISSING', message: expect.stringContaining(`finds no logical replication slot "${slot}"`) });
    } finally {
      await check.close();
    }
  });
});

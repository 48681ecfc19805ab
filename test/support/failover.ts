import pg from 'pg';
import { parseLsn } from '../../src/lsn.js';
import type { TestDatabase } from './services.js';

/** A database of a server the stack does not own (a standby, a promoted one): a pool of its own, no outbox set up. */
export function openDatabase(url: string): TestDatabase {
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  pool.on('error', () => undefined);
  return { name: new URL(url).pathname.slice(1), url, query: (text, values) => pool.query(text, values), close: () => pool.end() };
}

/** A PostgreSQL 17 slot's failover properties and position, on the primary or a standby's synced copy. */
export interface SyncedSlot {
  synced: boolean;
  failover: boolean;
  confirmed: bigint;
}

export async function slotOn(db: TestDatabase, slot: string): Promise<SyncedSlot | undefined> {
  const { rows } = await db.query<{ synced: boolean; failover: boolean; lsn: string | null }>(
    'SELECT synced, failover, confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1',
    [slot],
  );
  const row = rows[0];
  return row ? { synced: row.synced, failover: row.failover, confirmed: row.lsn ? parseLsn(row.lsn) : 0n } : undefined;
}

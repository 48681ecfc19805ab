import { waitUntil } from '../../stack/index.js';
import { currentWalLsn, slotConfirmedLsn } from './outbox.js';
import { stack, uniqueName, type TestDatabase } from './services.js';

export interface SlotSetup {
  slot: string;
  publication: string;
  /** `run` with the connection, slot, publication and brokers; add the table, mapping and topic flags. */
  args: string[];
}

/** A publication over `tables` and a slot of this test's own (for tests with their own outbox schemas). */
export async function setupSlot(db: TestDatabase, tables: string[]): Promise<SlotSetup> {
  const slot = uniqueName('slot');
  const publication = uniqueName('pub');
  await db.query(`CREATE PUBLICATION ${publication} FOR TABLE ${tables.join(', ')} WITH (publish = 'insert')`);
  await db.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [slot]);
  return {
    slot,
    publication,
    args: ['run', '--postgres-url', db.url, '--slot', slot, '--publication', publication, '--kafka-brokers', stack().brokers.join(','), '--status-interval', '200ms'],
  };
}

/** Waits until the slot's confirmed_flush_lsn reaches the WAL position as it is now (everything written so far). */
export async function waitForSlotAtCurrentWal(db: TestDatabase, slot: string, timeoutMs = 30_000): Promise<bigint> {
  const target = await currentWalLsn(db);
  await waitUntil(`slot ${slot} confirmed past ${target}`, async () => (await slotConfirmedLsn(db, slot)) >= target, timeoutMs);
  return target;
}

import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import { createSlot } from '../../src/ops/slots.js';

/** pg_replication_slots' row of a pgoutput slot in this database, as the slot query selects it. */
const slotRow = (failover: boolean) => ({
  slot_name: 'outbox_relay',
  slot_type: 'logical',
  plugin: 'pgoutput',
  database: 'app',
  in_current_db: true,
  active: true,
  active_pid: 4242,
  held_by: null,
  confirmed_flush_lsn: null,
  restart_lsn: '0/16B3700',
  wal_status: 'reserved',
  invalidation_reason: null,
  safe_wal_size: null,
  lag_bytes: null,
  failover,
  synced: false,
});

/**
 * A server on which another session creates the slot between createSlot's read and its create: the read finds
 * none, the create fails as PostgreSQL fails it then (duplicate_object), and the next read finds the other's.
 */
function racedServer(failover: boolean): { client: pg.Client; statements: string[] } {
  const statements: string[] = [];
  let created = false;
  const query = (text: string) => {
    statements.push(text);
    if (text.includes('pg_create_logical_replication_slot')) {
      created = true;
      throw Object.assign(new Error('replication slot "outbox_relay" already exists'), { code: '42710' });
    }
    if (text.includes('FROM pg_publication WHERE')) return { rows: [{}] };
    if (text.includes('server_version_num')) return { rows: [{ num: 170012, version: '17.12' }] };
    if (text.includes('pg_replication_slots')) return { rows: created ? [slotRow(failover)] : [] };
    return { rows: [] };
  };
  return { client: { query: (text: string) => Promise.resolve().then(() => query(text)) } as unknown as pg.Client, statements };
}

describe('slot create when another session creates the same slot at the same moment', () => {
  it('takes the slot the other session created (as one found before the create), instead of failing with duplicate_object', async () => {
    const { client, statements } = racedServer(false);
    // Before: rejected with the 42710 error ("already exists").
    const result = await createSlot(client, 'outbox_relay', { publication: 'outbox_relay' });
    expect(result).toMatchObject({ created: false, slot: { name: 'outbox_relay', plugin: 'pgoutput' } });
    expect(statements.filter((s) => s.includes('pg_create_logical_replication_slot'))).toHaveLength(1);
  });

  it('judges it as one found before: a plain slot where --failover-slot asked for a failover one is refused with its fix', async () => {
    const { client } = racedServer(false);
    await expect(createSlot(client, 'outbox_relay', { publication: 'outbox_relay' }, true)).rejects.toMatchObject({ code: 'OPERATION_REFUSED', hint: expect.stringContaining('ALTER_REPLICATION_SLOT outbox_relay (FAILOVER true)') });
  });
});

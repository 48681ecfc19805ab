import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import { dropPublication } from '../../src/ops/publications.js';
import { republishScope } from '../../src/source/republish-command.js';
import { load } from '../support/config-load.js';
import { printedSettings } from '../support/printed-command.js';

type Slot = { slot_name: string; plugin: string; in_current_db: boolean; active: boolean; active_pid: number | null };

/** A server with publication "billing_pub", `slots` and a transaction open since `oldestOpen`; records the statements run. */
function fakeServer(slots: Slot[], oldestOpen: Date | null = null): { client: pg.Client; statements: string[] } {
  const statements: string[] = [];
  const row = (s: Slot) => ({ slot_type: 'logical', database: 'app', held_by: null, confirmed_flush_lsn: '0/10', restart_lsn: '0/8', wal_status: 'reserved', safe_wal_size: null, lag_bytes: '0', ...s });
  const query = (sql: string, params: unknown[] = []) => {
    statements.push(sql);
    if (sql.includes('FROM pg_publication WHERE')) return Promise.resolve({ rows: [{ owner: 'admin', puballtables: false, pubviaroot: true, pubinsert: true, pubupdate: false, pubdelete: false, pubtruncate: false }] });
    if (sql.includes('FROM pg_publication_tables')) return Promise.resolve({ rows: [] });
    if (sql.includes('min(xact_start)')) return Promise.resolve({ rows: [{ oldest: oldestOpen, hidden: false }] });
    if (sql.includes('FROM pg_replication_slots')) return Promise.resolve({ rows: (sql.includes('WHERE slot_name = $1') ? slots.filter((s) => s.slot_name === params[0]) : slots).map(row) });
    return Promise.resolve({ rows: [] });
  };
  return { client: { query } as unknown as pg.Client, statements };
}

const slot = (name: string, extra: Partial<Slot> = {}): Slot => ({ slot_name: name, plugin: 'pgoutput', in_current_db: true, active: false, active_pid: null, ...extra });
const dropped = (statements: string[]) => statements.some((s) => s.startsWith('DROP PUBLICATION'));

describe('publication drop: refused while a slot may stream with it', () => {
  it('another pgoutput slot of this database (a relay started with --slot billing_relay): CONFIRMATION_REQUIRED naming it and whether active; --force drops', async () => {
    const { client, statements } = fakeServer([slot('billing_relay', { active: true, active_pid: 4242 }), slot('idle_relay'), slot('elsewhere', { in_current_db: false }), slot('wal2json_slot', { plugin: 'wal2json' })]);
    const refusal = dropPublication(client, { publication: 'billing_pub' }, 'outbox_relay', false);
    await expect(refusal).rejects.toMatchObject({ code: 'CONFIRMATION_REQUIRED', hint: expect.stringContaining('--force') as unknown });
    await expect(refusal).rejects.toThrow('pgoutput replication slot(s) "billing_relay" (active, pid 4242), "idle_relay" (inactive) in this database may stream with publication "billing_pub"');
    expect(dropped(statements)).toBe(false);
    const forced = await dropPublication(client, { publication: 'billing_pub' }, 'outbox_relay', true);
    expect(forced).toMatchObject({ dropped: true, consequence: expect.stringContaining('"billing_relay" (active, pid 4242)') as unknown });
    expect(dropped(statements)).toBe(true);
  });

  it('the named slot: refused as before; no pgoutput slot in this database: dropped', async () => {
    await expect(dropPublication(fakeServer([slot('outbox_relay')]).client, { publication: 'billing_pub' }, 'outbox_relay', false)).rejects.toThrow('replication slot "outbox_relay" streams with publication "billing_pub"');
    const none = fakeServer([slot('elsewhere', { in_current_db: false }), slot('wal2json_slot', { plugin: 'wal2json' })]);
    expect(await dropPublication(none.client, { publication: 'billing_pub' }, 'outbox_relay', false)).toEqual({ dropped: true });
    expect(dropped(none.statements)).toBe(true);
  });
});

describe('publication drop: the republish --since covers transactions open at the drop', () => {
  it('a transaction begun 10 minutes before the drop (its rows carry created_at = its start): --since is before that start', async () => {
    const began = new Date(Date.now() - 10 * 60_000);
    const { consequence } = await dropPublication(fakeServer([slot('outbox_relay')], began).client, { publication: 'billing_pub' }, 'outbox_relay', true);
    const since = /republish --since '([^']+)'/.exec(consequence ?? '')?.[1];
    expect(since).toBeDefined();
    expect(new Date(since!).getTime()).toBeLessThanOrEqual(began.getTime());
    // The dropped publication's own row filter: without --publication, republish read outbox_relay's (or none).
    expect(consequence).toContain(`republish --since '${since}' --publication billing_pub (a minute before`);
  });

  it("its way on, read as command lines where the environment names other ones: the slot drop gives the relay's slot, the setup its slot, publication and tables", async () => {
    const relay = load({ slot: 'billing_relay', publication: 'billing_pub', tables: JSON.stringify([{ table: 'billing.outbox', mapping: { key: 'aggregate_id' } }, { table: 'billing.refunds' }]) });
    const { consequence } = await dropPublication(fakeServer([slot('billing_relay')]).client, republishScope(relay), relay.slot, true);
    const [drop] = printedSettings(consequence!, 'slot drop');
    expect(load(drop!, { OUTBOX_RELAY_SLOT: 'other_slot', OUTBOX_RELAY_PUBLICATION: 'other_pub', OUTBOX_RELAY_MAPPING_KEY: 'id' }).slot).toBe('billing_relay');
    const [setup] = printedSettings(consequence!, 'setup');
    const loaded = load(setup!, { OUTBOX_RELAY_SLOT: 'other_slot', OUTBOX_RELAY_PUBLICATION: 'other_pub', OUTBOX_RELAY_MAPPING_KEY: 'id' });
    expect([loaded.slot, loaded.publication]).toEqual(['billing_relay', 'billing_pub']);
    expect(loaded.tables).toEqual(relay.tables);
  });
});

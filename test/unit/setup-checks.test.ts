import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import { runChecks, type CheckTarget } from '../../src/ops/checks.js';
import { slotProblem, type SlotStatus } from '../../src/ops/slots.js';
import type { RelayError } from '../../src/errors.js';
import { preflight } from '../../src/source/preflight.js';
import { republishScope } from '../../src/source/republish-command.js';
import { load } from '../support/config-load.js';
import { printedSettings } from '../support/printed-command.js';

/** Answers setup's two catalog queries: the server's settings and counts, and the outbox table's owner. */
function fakeServer(counts: { usedSenders: number; maxSenders: number }, version = { num: 170012, text: '17.12' }, role: Record<string, unknown> = {}): pg.Client {
  const server = {
    wal_level: 'logical',
    max_slots: 10,
    used_slots: 3,
    max_senders: counts.maxSenders,
    used_senders: counts.usedSenders,
    role: 'admin',
    superuser: true,
    replication: true,
    database: 'app',
    can_create: true,
    version_num: version.num,
    version: version.text,
    rds_replication: null,
    ...role,
  };
  return {
    query: (sql: string) => Promise.resolve({ rows: sql.includes('max_wal_senders') ? [server] : [{ owner: 'admin', owned: true }] }),
  } as unknown as pg.Client;
}

const slot = (active: boolean): SlotStatus => ({
  name: 'outbox_relay',
  slotType: 'logical',
  plugin: 'pgoutput',
  database: 'app',
  inCurrentDatabase: true,
  active,
  activePid: active ? 4242 : null,
  heldBy: null,
  confirmedFlushLsn: '0/16B3748',
  restartLsn: '0/16B3700',
  walStatus: 'reserved',
  invalidationReason: null,
  safeWalSize: null,
  lagBytes: 0,
  failover: false,
  synced: false,
});

const target = (s: SlotStatus | undefined, published = true): CheckTarget => ({
  publication: 'outbox_relay',
  republish: { publication: 'outbox_relay' },
  tables: load({}).tables,
  slot: s,
  existingPublication: published ? { name: 'outbox_relay', owner: 'admin', allTables: false, viaRoot: true, publish: ['insert'], tables: [{ schema: 'public', table: 'outbox', rowFilter: null }] } : undefined,
});

const check = async (client: pg.Client, t: CheckTarget, name: string) => (await runChecks(client, t)).find((c) => c.name === name);

describe('setup checks', () => {
  it('replication privilege: on Amazon RDS / Aurora (an rds_replication role exists) a member of it passes, a non-member is told to GRANT it, not ALTER ROLE … WITH REPLICATION, which RDS refuses', async () => {
    const counts = { usedSenders: 0, maxSenders: 10 };
    const customer = { role: 'outbox_relay', superuser: false, replication: false };
    const onRds = (member: boolean | null) => fakeServer(counts, undefined, { ...customer, rds_replication: member });
    expect(await check(onRds(true), target(undefined), 'replication privilege')).toMatchObject({ ok: true, detail: 'role "outbox_relay" is a member of rds_replication (Amazon RDS / Aurora)' });
    expect(await check(onRds(false), target(undefined), 'replication privilege')).toMatchObject({ ok: false, fix: 'as the master user: GRANT rds_replication TO "outbox_relay";' });
    // Elsewhere (no such role): the REPLICATION attribute, as before.
    expect(await check(onRds(null), target(undefined), 'replication privilege')).toMatchObject({ ok: false, fix: 'as a superuser: ALTER ROLE "outbox_relay" WITH REPLICATION;' });
  });

  it('max_wal_senders: every sender in use fails, unless one of them streams from the relay slot (setup run beside the relay)', async () => {
    const full = fakeServer({ usedSenders: 4, maxSenders: 4 });
    expect(await check(full, target(slot(true)), 'max_wal_senders')).toMatchObject({ ok: true, detail: '4 of 4 in use, one by the connection streaming from slot "outbox_relay"' });
    expect(await check(full, target(slot(false)), 'max_wal_senders')).toMatchObject({ ok: false, detail: 'all 4 in use' });
    expect(await check(full, target(undefined, false), 'max_wal_senders')).toMatchObject({ ok: false });
    expect(await check(fakeServer({ usedSenders: 3, maxSenders: 4 }), target(undefined, false), 'max_wal_senders')).toMatchObject({ ok: true, detail: '3 of 4 in use' });
  });

  it('a slot without its publication fails: the publication must come first', async () => {
    const client = fakeServer({ usedSenders: 0, maxSenders: 4 });
    expect(await check(client, target(slot(false), false), 'slot outbox_relay')).toMatchObject({ ok: false, fix: expect.stringContaining('outbox-relay slot drop --slot outbox_relay') as unknown });
    expect(await check(client, target(slot(false), true), 'slot outbox_relay')).toMatchObject({ ok: true });
  });

  it('--failover-slot: refused before PostgreSQL 17, naming the version; an existing plain slot fails with the in-place fix', async () => {
    const pg15 = fakeServer({ usedSenders: 0, maxSenders: 4 }, { num: 150010, text: '15.10' });
    const old = await check(pg15, { ...target(undefined), failoverSlot: true }, 'failover slot');
    expect(old).toMatchObject({ ok: false, detail: 'PostgreSQL 15.10 has no failover slots (PostgreSQL 17 or later)', fix: expect.stringContaining('leave out --failover-slot') as unknown });
    const pg17 = fakeServer({ usedSenders: 0, maxSenders: 4 });
    expect(await check(pg17, { ...target(undefined), failoverSlot: true }, 'failover slot')).toMatchObject({ ok: true });
    expect(await check(pg17, { ...target({ ...slot(false), failover: true }), failoverSlot: true }, 'failover slot')).toMatchObject({ ok: true });
    expect(await check(pg17, { ...target(slot(false)), failoverSlot: true }, 'failover slot')).toMatchObject({
      ok: false,
      fix: expect.stringContaining("ALTER_REPLICATION_SLOT outbox_relay (FAILOVER true)") as unknown,
    });
    expect(await check(pg17, target(slot(false)), 'failover slot')).toBeUndefined();
  });

  it('a failover slot\'s re-creation hints keep the property: setup --failover-slot, slot create --failover-slot', async () => {
    const client = fakeServer({ usedSenders: 0, maxSenders: 4 });
    const failover = { ...slot(false), failover: true };
    expect((await check(client, target(failover, false), 'slot outbox_relay'))!.fix).toContain('then outbox-relay setup --slot outbox_relay --publication outbox_relay --failover-slot (it was a failover slot');
    expect((await check(client, target(slot(false), false), 'slot outbox_relay'))!.fix).not.toContain('--failover-slot');
    expect(slotProblem({ ...failover, walStatus: 'lost' }, { publication: 'outbox_relay' })!.hint).toContain('2) outbox-relay slot create --slot outbox_relay --publication outbox_relay --failover-slot (it was a failover slot');
    expect(slotProblem({ ...slot(false), walStatus: 'lost' }, { publication: 'outbox_relay' })!.hint).toContain('2) outbox-relay slot create --slot outbox_relay --publication outbox_relay; 3)');
    expect(slotProblem({ ...slot(false), walStatus: 'lost', failover: null }, { publication: 'outbox_relay' })!.hint).toContain('2) outbox-relay slot create --slot outbox_relay --publication outbox_relay; 3)');
  });

  it("a slot made before its publication: the slot drop and setup of its fix, read as their command lines where the environment names other ones, give the relay's slot, publication and table (setup builds the publication from it)", async () => {
    const relay = load({ slot: 'billing_relay', publication: 'billing_pub', table: 'billing.outbox', 'mapping.key': 'aggregate_id' });
    const fix = (await check(fakeServer({ usedSenders: 0, maxSenders: 4 }), { ...target({ ...slot(false), name: 'billing_relay' }, false), publication: 'billing_pub', republish: republishScope(relay), tables: relay.tables }, 'slot billing_relay'))!.fix!;
    const [drop] = printedSettings(fix, 'slot drop');
    expect(load(drop!, { OUTBOX_RELAY_SLOT: 'other_slot', OUTBOX_RELAY_PUBLICATION: 'other_pub', OUTBOX_RELAY_TABLE: 'public.other_outbox', OUTBOX_RELAY_MAPPING_KEY: 'id' }).slot).toBe('billing_relay');
    const [setup] = printedSettings(fix, 'setup');
    const loaded = load(setup!, { OUTBOX_RELAY_SLOT: 'other_slot', OUTBOX_RELAY_PUBLICATION: 'other_pub', OUTBOX_RELAY_TABLE: 'public.other_outbox', OUTBOX_RELAY_MAPPING_KEY: 'id' });
    expect([loaded.slot, loaded.publication]).toEqual(['billing_relay', 'billing_pub']);
    expect(loaded.tables).toEqual(relay.tables);
  });

  it("a slot of another plugin: the slot drop of its fix, read as its command line where the environment names another slot, drops that slot", () => {
    const problem = slotProblem({ ...slot(false), name: 'billing_relay', plugin: 'wal2json' }, { publication: 'outbox_relay' })!;
    expect(problem.code).toBe('PG_SLOT_WRONG_PLUGIN');
    const [drop] = printedSettings(problem.hint!, 'slot drop');
    expect(load(drop!, { OUTBOX_RELAY_SLOT: 'other_slot' }).slot).toBe('billing_relay');
  });

  it("a slot of another plugin: setup keeps an existing slot, so the fix drops it, then runs setup with the relay's slot, publication and table, the same from the commands and the relay's pre-flight", async () => {
    // Before: the commands' fix said "drop this one and create it again" (how, and with what plugin, unsaid), the
    // pre-flight's named setup: one error, two fixes.
    const relay = load({ slot: 'billing_relay', publication: 'billing_pub', table: 'billing.outbox' });
    const problem = slotProblem({ ...slot(false), name: 'billing_relay', plugin: 'wal2json' }, republishScope(relay))!;
    expect(problem.hint).toMatch(/drop it and make it again with pgoutput: outbox-relay slot drop --slot billing_relay, then outbox-relay setup --slot billing_relay --publication billing_pub --table billing\.outbox /);
    const [setup] = printedSettings(problem.hint!, 'setup');
    const loaded = load(setup!, { OUTBOX_RELAY_SLOT: 'other_slot', OUTBOX_RELAY_PUBLICATION: 'other_pub', OUTBOX_RELAY_TABLE: 'public.other_outbox' });
    expect([loaded.slot, loaded.publication, loaded.tables]).toEqual([relay.slot, relay.publication, relay.tables]);
    const server = {
      query: async <T>(sql: string): Promise<T[]> => {
        if (sql === 'SHOW wal_level') return [{ wal_level: 'logical' }] as T[];
        if (sql.includes('pg_current_wal_lsn()')) return [{ lsn: '0/100', wal_sender_timeout_ms: '60000', server_encoding: 'UTF8', version_num: 170000 }] as T[];
        if (sql.includes('FROM pg_replication_slots')) return [{ plugin: 'wal2json', slot_type: 'logical', database: 'app', current_db: 'app', active: false, confirmed_flush_lsn: '0/80', wal_status: 'reserved' }] as T[];
        if (sql.includes('FROM pg_publication WHERE')) return [{ pubinsert: true, pubviaroot: false }] as T[];
        throw new Error(`unexpected query: ${sql}`);
      },
    };
    const refused = await preflight(server, relay.slot, republishScope(relay), relay.tables).catch((err: unknown) => err as RelayError);
    expect(refused).toMatchObject({ code: 'PG_SLOT_WRONG_PLUGIN', message: problem.message, hint: problem.hint });
  });
});

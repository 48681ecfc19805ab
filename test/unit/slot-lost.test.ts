import { describe, expect, it } from 'vitest';
import type { SlotStatus } from '../../src/ops/slots.js';
import { slotProblem } from '../../src/ops/slots.js';
import { preflight, type PreflightQueries } from '../../src/source/preflight.js';
import { RelayError } from '../../src/errors.js';
import { missingSlotDelivered, slotLostError } from '../../src/source/slot-lost.js';
import { SeenPublication } from '../../src/source/seen-publication.js';
import { load } from '../support/config-load.js';

/** The pre-flight's queries on a server whose slot is lost for `reason` (what INVALIDATION_REASON_SQL reads). */
function lostSlotServer(reason: string | null): PreflightQueries {
  const rows = (sql: string): object[] => {
    if (sql === 'SHOW wal_level') return [{ wal_level: 'logical' }];
    if (sql.includes('pg_current_wal_lsn()')) return [{ lsn: '0/100', wal_sender_timeout_ms: '60000', server_encoding: 'UTF8' }];
    if (sql.includes('FROM pg_replication_slots')) {
      // Only a query that reads the reason gets it: one that does not would see undefined, as before.
      const row = { plugin: 'pgoutput', slot_type: 'logical', database: 'app', current_db: 'app', active: false, active_pid: null, confirmed_flush_lsn: '0/80', wal_status: 'lost' };
      return [sql.includes('invalidation_reason') ? { ...row, invalidation_reason: reason } : row];
    }
    if (sql.includes('FROM pg_publication WHERE')) return [{ pubinsert: true, pubviaroot: false }];
    throw new Error(`unexpected query: ${sql}`);
  };
  return { query: async <T>(sql: string) => rows(sql) as T[] };
}

const tables = load({ tables: JSON.stringify([{ table: 'outbox' }]) }).tables;

async function preflightError(reason: string | null) {
  return preflight(lostSlotServer(reason), 'relay', { publication: 'outbox_pub' }, tables).then(
    () => expect.unreachable('the pre-flight passed a lost slot'),
    (err: unknown) => err as ReturnType<typeof slotLostError>,
  );
}

// Each names the relay's slot and publication: pasted in another shell, slot drop --force without them dropped the
// default slot (maybe another relay's), and slot create made it.
const RECOVERY = ['1) outbox-relay slot drop --force --slot relay;', '2) outbox-relay slot create --slot relay --publication outbox_pub', 'outbox-relay republish --since <time of the last delivered event> --publication outbox_pub'];

describe('a lost slot: the cause and the fix follow invalidation_reason (from PostgreSQL 16 wal_status lost stands for every cause)', () => {
  it('pre-flight, idle_timeout (PostgreSQL 18): blames the idle time, not max_slot_wal_keep_size, and says a halted relay leaves the slot idle', async () => {
    // Before: "PostgreSQL removed WAL it still needed (max_slot_wal_keep_size exceeded)", fix: raise max_slot_wal_keep_size.
    const error = await preflightError('idle_timeout');
    expect(error).toMatchObject({ code: 'PG_SLOT_LOST', retriable: false, details: { invalidationReason: 'idle_timeout' } });
    expect(error.message).toBe(
      'replication slot "relay" was invalidated (invalidation_reason idle_timeout): no client streamed from it for longer than idle_replication_slot_timeout (a relay stopped, or halted, leaves its slot idle)',
    );
    expect(error.message + error.hint).not.toContain('max_slot_wal_keep_size');
    expect(error.hint).toContain('raise idle_replication_slot_timeout');
    expect(error.hint).toContain('a halted relay does not stream');
    for (const step of RECOVERY) expect(error.hint).toContain(step);
  });

  it('pre-flight, wal_removed (and 13 to 15, where it is the only cause): the wording of before, with the reason named', async () => {
    const error = await preflightError('wal_removed');
    expect(error.message).toBe('replication slot "relay" was invalidated (invalidation_reason wal_removed): PostgreSQL removed WAL it still needed (max_slot_wal_keep_size exceeded)');
    expect(error.hint).toContain('To avoid it: raise max_slot_wal_keep_size and alert on the slot lag metric');
    // The slot's position, which /readyz and the halt line show where no session of the relay reported one.
    expect(error.details.slotConfirmedLsn).toBe('0/80');
    for (const step of RECOVERY) expect(error.hint).toContain(step);
  });

  it('rows_removed and wal_level_insufficient (slots on a standby, or synchronized to one): named, each with its own prevention', () => {
    const rows = slotLostError('relay', { publication: 'orders_pub' }, 'rows_removed');
    expect(rows.message).toContain('(invalidation_reason rows_removed): the primary removed rows it still needed');
    expect(rows.hint).toContain('hot_standby_feedback = on');
    expect(rows.hint).not.toContain('max_slot_wal_keep_size');
    const level = slotLostError('relay', { publication: 'orders_pub' }, 'wal_level_insufficient');
    expect(level.message).toContain('(invalidation_reason wal_level_insufficient): wal_level on the primary went below logical');
    expect(level.hint).toContain('keep wal_level = logical on the primary');
    // PostgreSQL 16 has only the boolean `conflicting` for both.
    const conflicting = slotLostError('relay', { publication: 'orders_pub' }, 'conflicting');
    expect(conflicting.message).toContain('rows_removed or wal_level_insufficient (PostgreSQL 16 does not say which)');
    expect(conflicting.hint).toContain('hot_standby_feedback = on');
    expect(conflicting.hint).toContain('wal_level = logical');
  });

  it('a reason this relay does not know, or none: named as reported, blaming nothing, pointing at slot status', () => {
    const future = slotLostError('relay', { publication: 'orders_pub' }, 'something_new');
    expect(future.message).toBe('replication slot "relay" was invalidated (invalidation_reason something_new): PostgreSQL invalidated it');
    expect(future.hint).toContain('outbox-relay slot status shows why');
    expect(slotLostError('relay', { publication: 'orders_pub' }, null).message).toBe('replication slot "relay" was invalidated: PostgreSQL invalidated it');
  });

  it('slot status and the ops commands (slotProblem) word it by the reason the slot row carries', () => {
    const slot: SlotStatus = {
      name: 'relay', slotType: 'logical', plugin: 'pgoutput', database: 'app', inCurrentDatabase: true, active: false, activePid: null, heldBy: null,
      confirmedFlushLsn: '0/80', restartLsn: null, walStatus: 'lost', invalidationReason: 'idle_timeout', safeWalSize: null, lagBytes: 128, failover: null, synced: null,
    };
    const problem = slotProblem(slot, { publication: 'orders_pub' });
    expect(problem).toMatchObject({ code: 'PG_SLOT_LOST', details: { invalidationReason: 'idle_timeout' } });
    expect(problem!.message).toContain('idle_replication_slot_timeout');
  });
});

describe('a missing slot whose checkpoint exists', () => {
  const missing = new RelayError('PG_SLOT_MISSING', 'replication slot "s" does not exist', { hint: 'run outbox-relay setup' });

  it('was lost: the recovery names a new checkpoint topic, setup and a republish from its commit time less a minute', () => {
    const error = missingSlotDelivered(missing, 'ckpt', { lsn: 0x1234n, commitTimeMs: Date.parse('2026-12-05T08:00:00.000Z') }, { slot: 'orders_slot', publication: 'orders_pub' });
    expect(error).toMatchObject({ code: 'PG_SLOT_MISSING', retriable: false, details: { checkpointLsn: '0/1234', checkpointCommitTime: '2026-12-05T08:00:00.000Z' } });
    expect(error.message).toBe(
      'replication slot "s" does not exist, but the checkpoint topic "ckpt" holds its delivered position (0/1234, commit time 2026-12-05T08:00:00.000Z): the slot was lost (a failover to a server that did not have it, or a drop), and a new one streams only what is committed after it is created',
    );
    expect(error.hint).toContain('1) point checkpoint.topic (--checkpoint-topic) at a new topic');
    expect(error.hint).toContain('2) outbox-relay setup --slot orders_slot --publication orders_pub (with --failover-slot if it was a PostgreSQL 17 failover slot)');
    expect(error.hint).toContain('outbox-relay republish --since 2026-12-05T07:59:00.000Z --publication orders_pub');
  });

  it("with the publication gone too, step 2 creates it with the column lists and row filters the relay saw, then setup makes the slot; a publication that is there, or one seen without either, keeps plain setup", () => {
    const seen = new SeenPublication();
    seen.saw({ schema: 'public', table: 'outbox' }, { columns: ['id', 'payload'], rowFilter: "(tenant = 'a'::text)" });
    const known = { publication: 'orders_pub', tables: [{ schema: 'public', table: 'outbox' }], seen };
    const bothGone = new RelayError('PG_SLOT_MISSING', 'replication slot "s" does not exist, nor does publication "orders_pub"', { details: { publicationMissing: true } });
    const checkpoint = { lsn: 0x1234n, commitTimeMs: Date.parse('2026-12-05T08:00:00.000Z') };
    expect(missingSlotDelivered(bothGone, 'ckpt', checkpoint, { slot: 'orders_slot', publication: 'orders_pub' }, known).hint).toContain(
      "2) create the publication as it was, with the column lists and row filters it had, which setup does not give back (its --row-filter is one filter for every table), or the rows a filter kept out go to Kafka: " +
        `CREATE PUBLICATION "orders_pub" FOR TABLE "public"."outbox" ("id", "payload") WHERE ((tenant = 'a'::text)) WITH (publish = 'insert', publish_via_partition_root = true);  ` +
        'then run outbox-relay setup --slot orders_slot --publication orders_pub (with --failover-slot if it was a PostgreSQL 17 failover slot) (the slot; it keeps that publication); 3) start the relay;',
    );
    const plainStep = '2) outbox-relay setup --slot orders_slot --publication orders_pub (with --failover-slot if it was a PostgreSQL 17 failover slot); 3) start the relay;';
    expect(missingSlotDelivered(missing, 'ckpt', checkpoint, { slot: 'orders_slot', publication: 'orders_pub' }, known).hint).toContain(plainStep);
    const unfiltered = { ...known, seen: new SeenPublication() };
    expect(missingSlotDelivered(bothGone, 'ckpt', checkpoint, { slot: 'orders_slot', publication: 'orders_pub' }, unfiltered).hint).toContain(plainStep);
  });

  it('without a commit time (a checkpoint of a forward skip), the republish asks for the time of the last delivered event', () => {
    const error = missingSlotDelivered(missing, 'ckpt', { lsn: 0x1234n, commitTimeMs: undefined }, { slot: 'orders_slot', publication: 'orders_pub' });
    expect(error.message).toContain('holds its delivered position (0/1234):');
    expect(error.hint).toContain('outbox-relay republish --since <time of the last delivered event> --publication orders_pub');
  });
});

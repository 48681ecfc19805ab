import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { waitUntil } from '../../stack/index.js';
import { parseLsn } from '../../src/lsn.js';
import { useFreshDatabase } from '../support/database.js';
import { commitRecordLsn, committedIds, compareDelivery, insertEvents, setupOutbox, slotConfirmedLsn, startWriters, waitForConfirmedAll } from '../support/outbox.js';
import { startRelay } from '../support/relay-process.js';
import { readTopic } from '../support/services.js';
import { httpArgs, metricValue, scrape } from '../support/ops-http.js';

describe('relay: a halt reports its final position to PostgreSQL', () => {
  const db = useFreshDatabase('haltstatus');

  it('schema-change halt under load: the logged confirmed LSN is what the slot holds, and a restart sends nothing twice', async () => {
    const setup = await setupOutbox(db(), { extraArgs: ['--status-interval', '5s'] });
    const relay = startRelay(setup.args);
    await relay.waitForMessage('streaming from PostgreSQL');
    const writers = startWriters(db(), 3, 20, 0);
    await waitUntil('events relayed before the rename', () => writers.commits >= 30, 30_000);
    // Writers still commit (and fail once the column is gone); the row after the rename halts the relay.
    await db().query('ALTER TABLE outbox RENAME COLUMN event_type TO kind');
    await db().query(`INSERT INTO outbox (id, aggregate_type, aggregate_id, kind, payload) VALUES ($1, 'order', 'a', 'T', '{}')`, [randomUUID()]);
    await writers.stop();
    const halted = await relay.waitForLog((l) => l.level === 'error', 60_000, 'the halt');
    expect(halted.code).toBe('SCHEMA_COLUMN_MISSING');
    const logged = parseLsn(String(halted.confirmedLsn));
    await waitUntil('the slot at the logged position', async () => (await slotConfirmedLsn(db(), setup.slot)) >= logged, 10_000).catch(() => undefined);
    expect(await slotConfirmedLsn(db(), setup.slot)).toBe(logged);
    relay.signal('SIGTERM');
    expect(await relay.exited).toBe(1);
    // Its stop drains nothing: no line says it does (nor counts the halted events as in flight), the halt stays the one error.
    const stopLines = relay.logs.slice(relay.logs.findIndex((l) => l.msg === 'signal received: shutting down'));
    expect(stopLines.map((l) => l.msg), relay.dump()).toEqual([
      'signal received: shutting down',
      'stopping a halted relay: nothing after the confirmed position is confirmed; the next start reads on from it',
      'stopped',
    ]);
    expect(stopLines[2]!.confirmedLsn).toBe(halted.confirmedLsn);
    expect(relay.logs.filter((l) => l.level === 'error')).toEqual([halted]);

    // The type column is left out: the rows before and after the rename both map.
    const restarted = startRelay([...setup.args, '--mapping-type', '']);
    await restarted.waitForMessage('streaming from PostgreSQL');
    await waitForConfirmedAll(db(), setup.slot);
    const ids = await committedIds(db());
    const records = await readTopic(setup.topic, { expected: ids.length, settleMs: 1000 });
    const delivery = compareDelivery(ids, records.map((r) => r.key));
    console.log(`schema-change halt: ${ids.length} events, ${delivery.missing.length} lost, ${delivery.duplicates} duplicates after restart`);
    expect(delivery).toEqual({ missing: [], duplicates: 0, unexpected: 0 });
    restarted.signal('SIGTERM');
    expect(await restarted.exited).toBe(0);
  });

  it('halted, the slot-lag gauge follows the WAL PostgreSQL keeps for the slot (read on a normal connection: no keepalives arrive), so its alert can fire', async () => {
    const http = await httpArgs();
    const setup = await setupOutbox(db(), { extraArgs: http.args });
    const relay = startRelay(setup.args);
    await relay.waitForMessage('streaming from PostgreSQL');
    await db().query('ALTER TABLE outbox RENAME COLUMN event_type TO kind');
    await db().query(`INSERT INTO outbox (id, aggregate_type, aggregate_id, kind, payload) VALUES ($1, 'order', 'a', 'T', '{}')`, [randomUUID()]);
    expect((await relay.waitForLog((l) => l.level === 'error', 60_000, 'the halt')).code).toBe('SCHEMA_COLUMN_MISSING');
    const lagOf = async () => Number((await db().query<{ lag: string }>('SELECT (pg_current_wal_lsn() - confirmed_flush_lsn)::text AS lag FROM pg_replication_slots WHERE slot_name = $1', [setup.slot])).rows[0]!.lag);
    // WAL of a table the relay does not read: the slot keeps it all.
    await db().query('CREATE TABLE filler AS SELECT g, repeat(\'x\', 200) AS pad FROM generate_series(1, 20000) g');
    const lagAfterFill = await lagOf();
    expect(lagAfterFill).toBeGreaterThan(4_000_000);
    let gauge = 0;
    await waitUntil('the gauge at the slot\'s lag', async () => (gauge = metricValue(await scrape(http.base), 'outbox_relay_slot_lag_bytes') ?? 0) >= lagAfterFill, 40_000);
    expect(gauge).toBeLessThanOrEqual(await lagOf());
    relay.signal('SIGTERM');
    expect(await relay.exited).toBe(1);
  });

  it('a renamed outbox table halts with SCHEMA_TABLE_RENAMED before its next row; restarted with the new name, every event arrives once', async () => {
    const setup = await setupOutbox(db());
    const relay = startRelay(setup.args);
    await relay.waitForMessage('streaming from PostgreSQL');
    const before = (await insertEvents(db(), 2)).map((e) => e.id);
    await waitForConfirmedAll(db(), setup.slot);
    // Still in the publication, which lists tables by OID; its rows now come under the new name.
    await db().query('ALTER TABLE outbox RENAME TO outbox_v2');
    const renamedAt = (await db().query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn')).rows[0]!.lsn;
    const after = randomUUID();
    const { rows } = await db().query<{ xid: string }>(
      `INSERT INTO outbox_v2 (id, aggregate_type, aggregate_id, event_type, payload) VALUES ($1, 'order', 'a', 'T', '{}') RETURNING xmin::text AS xid`,
      [after],
    );
    const halted = await relay.waitForLog((l) => l.level === 'error', 60_000, 'the halt');
    expect(halted, relay.dump()).toMatchObject({ code: 'SCHEMA_TABLE_RENAMED', fix: expect.stringContaining('public.outbox_v2') as unknown });
    // Not confirmed past the row's commit, and not sent. An idle keepalive may confirm WAL the walsender read
    // before that commit (the row itself, other databases' writes), so the bound is the commit record, not the rename.
    expect(await slotConfirmedLsn(db(), setup.slot)).toBeLessThanOrEqual(await commitRecordLsn(db(), rows[0]!.xid, parseLsn(renamedAt)));
    expect((await readTopic(setup.topic, { expected: 3, timeoutMs: 3000 })).map((r) => r.key)).toEqual(before);
    relay.signal('SIGTERM');
    expect(await relay.exited).toBe(1);

    const restarted = startRelay([...setup.args, '--table', 'public.outbox_v2']);
    await restarted.waitForMessage('streaming from PostgreSQL');
    await waitForConfirmedAll(db(), setup.slot);
    expect((await readTopic(setup.topic, { expected: 3, settleMs: 1000 })).map((r) => r.key)).toEqual([...before, after]);
    restarted.signal('SIGTERM');
    expect(await restarted.exited).toBe(0);
  });
});

import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { waitUntil } from '../../stack/index.js';
import { parseLsn } from '../../src/lsn.js';
import { useFreshDatabase } from '../support/database.js';
import { committedIds, compareDelivery, setupOutbox, slotConfirmedLsn, startWriters, waitForConfirmedAll } from '../support/outbox.js';
import { startRelay } from '../support/relay-process.js';
import { readTopic } from '../support/services.js';

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
});

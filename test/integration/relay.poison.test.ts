import { randomUUID } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import { parseLsn } from '../../src/lsn.js';
import { waitUntil } from '../../stack/index.js';
import { currentWalLsn, setupOutbox, slotConfirmedLsn } from '../support/outbox.js';
import { startRelay, type RelayProcess } from '../support/relay-process.js';
import { createTopic, readTopic, uniqueName } from '../support/services.js';
import { useFreshDatabase } from '../support/database.js';

describe('relay: rows that cannot be produced halt without confirming them (default policy)', () => {
  const db = useFreshDatabase('poison');
  beforeEach(async () => {
    await db().query('ALTER TABLE outbox ADD COLUMN partition_key text');
  });

  const insert = async (payload = '{}', partitionKey: string | null = 'k') => {
    const id = randomUUID();
    await db().query(`INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, payload, partition_key) VALUES ($1, 'order', 'a', 'T', $2::jsonb, $3)`, [id, payload, partitionKey]);
    return id;
  };

  /**
   * Delivers one good event, then the poison; returns what the halt said and the position confirmed when it
   * halted. That position may be a little past the good event (an idle relay confirms keepalive positions, which
   * can fall between the poison's INSERT and its commit record) but never reaches the poison's commit LSN.
   */
  async function haltOn(relay: RelayProcess, slot: string, poison: () => Promise<string>) {
    await relay.waitForMessage('streaming from PostgreSQL');
    const good = await insert();
    const lsnAfterGood = await currentWalLsn(db());
    await waitUntil('the good event confirmed', async () => (await slotConfirmedLsn(db(), slot)) >= lsnAfterGood, 30_000);
    const confirmedBefore = await slotConfirmedLsn(db(), slot);
    const poisonId = await poison();
    const halt = await relay.waitForLog((l) => l.level === 'error', 60_000, 'the halt');
    const confirmedAtHalt = await slotConfirmedLsn(db(), slot);
    expect(confirmedAtHalt).toBeGreaterThanOrEqual(confirmedBefore);
    expect(confirmedAtHalt).toBeLessThanOrEqual(parseLsn(String(halt.lsn)));
    const later = await insert();
    await new Promise((r) => setTimeout(r, 1000));
    return { good, poisonId, later, halt, confirmedBefore, confirmedAtHalt };
  }

  it('a NULL key column: error names the event and its LSN, nothing after it is produced or confirmed', async () => {
    const setup = await setupOutbox(db(), { extraArgs: ['--mapping-key', 'partition_key'] });
    const relay = startRelay(setup.args);
    const { good, poisonId, halt, confirmedAtHalt } = await haltOn(relay, setup.slot, () => insert('{}', null));
    expect(halt.code).toBe('RECORD_REQUIRED_NULL');
    expect(String(halt.err)).toContain(poisonId);
    expect(String(halt.err)).toMatch(/commit LSN [0-9A-F]+\/[0-9A-F]+/);
    expect(await slotConfirmedLsn(db(), setup.slot)).toBe(confirmedAtHalt);
    const records = await readTopic(setup.topic, { expected: 2, timeoutMs: 2000, settleMs: 0 });
    expect(records.map((r) => r.headers.id)).toEqual([good]);
    relay.signal('SIGTERM');
    expect(await relay.exited).toBe(1);
  });

  it('a record larger than the topic accepts: Kafka rejects it, the relay halts on exactly that event', async () => {
    const topic = uniqueName('small');
    await createTopic(topic, 1, undefined, [{ name: 'max.message.bytes', value: '2000' }]);
    const setup = await setupOutbox(db(), { extraArgs: ['--topic', topic] });
    const relay = startRelay(setup.args);
    const big = JSON.stringify({ blob: 'x'.repeat(5000) });
    const { good, poisonId, halt, confirmedBefore, confirmedAtHalt } = await haltOn(relay, setup.slot, () => insert(big));
    expect(halt.code).toBe('RECORD_TOO_LARGE');
    expect(halt.eventId).toBe(poisonId);
    expect(parseLsn(String(halt.lsn)) > confirmedBefore).toBe(true);
    expect(await slotConfirmedLsn(db(), setup.slot)).toBe(confirmedAtHalt);
    const records = await readTopic(topic, { expected: 2, timeoutMs: 2000, settleMs: 0 });
    expect(records.map((r) => r.key)).toEqual([good]);
    relay.signal('SIGTERM');
    expect(await relay.exited).toBe(1);
  });
});

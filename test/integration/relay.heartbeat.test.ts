import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseLsn } from '../../src/lsn.js';
import { waitUntil } from '../../stack/index.js';
import { useDatabase } from '../support/database.js';
import { setupSlot } from '../support/events.js';
import { currentWalLsn, slotConfirmedLsn } from '../support/outbox.js';
import { startRelay } from '../support/relay-process.js';
import { createDatabase, uniqueName, type TestDatabase } from '../support/services.js';

describe('relay: heartbeats (heartbeat.interval)', () => {
  const db = useDatabase('heartbeat');
  let other: TestDatabase;
  beforeAll(async () => {
    other = await createDatabase('busy');
  });
  afterAll(async () => {
    await other.close();
  });

  it('emits non-transactional messages into the watched database and the slot advances past WAL written only by another database', async () => {
    const prefix = uniqueName('hb');
    // A second slot of the test's own shows what the watched database's WAL contains.
    const observer = uniqueName('peek');
    await db().query(`SELECT pg_create_logical_replication_slot($1, 'test_decoding')`, [observer]);
    const setup = await setupSlot(db(), ['outbox']);
    const relay = startRelay([...setup.args, '--topic', 'unused', '--heartbeat-interval', '200ms', '--heartbeat-prefix', prefix]);
    await relay.waitForMessage('streaming from PostgreSQL');

    await other.query('CREATE TABLE busy (n int, pad text)');
    await other.query(`INSERT INTO busy SELECT n, repeat('x', 200) FROM generate_series(1, 5000) AS n`);
    const otherWal = await currentWalLsn(other);
    await waitUntil('the slot past the other database’s WAL', async () => (await slotConfirmedLsn(db(), setup.slot)) >= otherWal, 30_000);

    let beats: { lsn: string; data: string }[] = [];
    await waitUntil('heartbeats in the watched database', async () => {
      const { rows } = await db().query<{ lsn: string; data: string }>(`SELECT lsn::text, data FROM pg_logical_slot_peek_changes($1, NULL, NULL) WHERE data LIKE 'message:%'`, [observer]);
      beats = rows.filter((r) => r.data.includes(`prefix: ${prefix},`));
      // Beats also came before the other database's WAL; wait for one after it.
      return beats.some((b) => parseLsn(b.lsn) > otherWal);
    }, 30_000);
    expect(beats[0]!.data).toContain('transactional: 0');
    const lastBeat = parseLsn(beats.at(-1)!.lsn);
    expect(lastBeat).toBeGreaterThan(otherWal);
    await waitUntil('the slot past a heartbeat', async () => (await slotConfirmedLsn(db(), setup.slot)) >= lastBeat, 30_000);
    relay.signal('SIGTERM');
    expect(await relay.exited).toBe(0);
    await db().query('SELECT pg_drop_replication_slot($1)', [observer]);
  });
});

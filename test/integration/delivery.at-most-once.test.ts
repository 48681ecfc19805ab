import { describe, expect, it } from 'vitest';
import { committedIds, compareDelivery, insertEvents, setupOutbox, startWriters, waitForConfirmedAll } from '../support/outbox.js';
import { startRelay } from '../support/relay-process.js';
import { readTopic } from '../support/services.js';
import { useFreshDatabase } from '../support/database.js';

describe('delivery: at-most-once', () => {
  const db = useFreshDatabase('amo');

  it('SIGKILLed again and again under concurrent writers: measures what it loses (and re-sends)', async () => {
    const setup = await setupOutbox(db(), { partitions: 3, extraArgs: ['--delivery', 'at-most-once'] });
    const writers = startWriters(db(), 4);
    for (let round = 0; round < 6; round++) {
      const relay = startRelay(setup.args);
      await relay.waitForMessage('streaming from PostgreSQL', 60_000);
      await new Promise((r) => setTimeout(r, 300 + round * 170));
      await relay.kill();
    }
    await writers.stop();
    // Rows committed after the last kill are delivered by a clean run, which then stops with everything handed over.
    await insertEvents(db(), 5);
    const final = startRelay(setup.args);
    await final.waitForMessage('streaming from PostgreSQL', 60_000);
    await waitForConfirmedAll(db(), setup.slot);
    const committed = await committedIds(db());
    const records = await readTopic(setup.topic, { expected: committed.length, settleMs: 2000 });
    const delivery = compareDelivery(committed, records.map((r) => r.key));
    console.log(
      `at-most-once SIGKILL loop: ${committed.length} committed in ${writers.commits} transactions, ${records.length} records, ` +
        `${delivery.missing.length} lost (${((100 * delivery.missing.length) / committed.length).toFixed(2)} %), ${delivery.duplicates} duplicates`,
    );
    expect(delivery.unexpected).toBe(0);
    // Lossy by design, but not wholesale: most events arrive.
    expect(records.length).toBeGreaterThan(committed.length / 2);
    final.signal('SIGTERM');
    expect(await final.exited).toBe(0);
  });
});

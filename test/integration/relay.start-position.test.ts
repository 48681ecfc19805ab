import { describe, expect, it } from 'vitest';
import { useFreshDatabase } from '../support/database.js';
import { currentWalLsn, insertEvents, setupOutbox, slotConfirmedLsn } from '../support/outbox.js';
import { startRelay } from '../support/relay-process.js';
import { readTopic } from '../support/services.js';

describe('relay: a start position is checked against both bounds before anything is confirmed', () => {
  const db = useFreshDatabase('startpos');

  it('--start-lsn beyond the current WAL end: refused with the fix, the slot does not move, later events are relayed', async () => {
    const setup = await setupOutbox(db());
    const slotBefore = await slotConfirmedLsn(db(), setup.slot);
    const walEnd = await currentWalLsn(db());

    const refused = startRelay([...setup.args, '--start-lsn', 'F/0']);
    expect(await refused.exited).toBe(1);
    const error = refused.logs.find((l) => l.level === 'error');
    expect(error, refused.dump()).toMatchObject({ code: 'START_LSN_BEYOND_WAL' });
    expect(String(error!.err)).toContain('cannot start at F/0');
    expect(String(error!.fix)).toContain('pass an LSN up to');
    expect(refused.logs.filter((l) => l.level === 'error'), refused.dump()).toHaveLength(1);
    // Nothing was reported to PostgreSQL: the slot is where it was.
    expect(await slotConfirmedLsn(db(), setup.slot)).toBe(slotBefore);

    // Events committed now are still relayed by a normal start: nothing was skipped.
    const events = await insertEvents(db(), 3);
    const relay = startRelay(setup.args);
    await relay.waitForMessage('streaming from PostgreSQL');
    const records = await readTopic(setup.topic, { expected: 3 });
    expect(records.map((r) => r.key)).toEqual(events.map((e) => e.id));
    relay.signal('SIGTERM');
    expect(await relay.exited).toBe(0);
    expect(await slotConfirmedLsn(db(), setup.slot)).toBeGreaterThan(walEnd);
  });
});

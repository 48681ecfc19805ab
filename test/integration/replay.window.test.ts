import { describe, expect, it } from 'vitest';
import { insertEvents, setupOutbox, slotConfirmedLsn } from '../support/outbox.js';
import { startRelay } from '../support/relay-process.js';
import { readTopic, uniqueName } from '../support/services.js';
import { useFreshDatabase } from '../support/database.js';
import { formatLsn, parseLsn } from '../../src/lsn.js';

describe('replay from a stored LSN', () => {
  const db = useFreshDatabase('replay');

  it('inside the replay window: restarts resume at the checkpoint, --from-lsn re-delivers exactly the events after it, below the slot it refuses', async () => {
    const setup = await setupOutbox(db(), { extraArgs: ['--replay-window', '1GiB', '--checkpoint-topic', uniqueName('checkpoints')] });
    const slotAtStart = await slotConfirmedLsn(db(), setup.slot);
    const relay = startRelay(setup.args);
    await relay.waitForMessage('streaming from PostgreSQL', 60_000);
    const before = await insertEvents(db(), 20);
    const after: string[] = [];
    for (let t = 0; t < 5; t++) after.push(...(await insertEvents(db(), 4)).map((e) => e.id));
    const total = before.length + after.length;
    const first = await readTopic(setup.topic, { expected: total, settleMs: 500 });
    expect(first.map((r) => r.key)).toEqual([...before.map((e) => e.id), ...after]);
    relay.signal('SIGTERM');
    expect(await relay.exited).toBe(0);
    // The window kept the slot where it was, although everything was delivered.
    expect(await slotConfirmedLsn(db(), setup.slot)).toBe(slotAtStart);

    // A normal restart starts at the checkpoint: nothing is sent again.
    const restarted = startRelay(setup.args);
    await restarted.waitForMessage('streaming from PostgreSQL', 60_000);
    const start = restarted.logs.find((l) => l.msg === 'start position chosen');
    expect(start, restarted.dump()).toBeDefined();
    expect(parseLsn(String(start!.startLsn)) > slotAtStart).toBe(true);
    restarted.signal('SIGTERM');
    expect(await restarted.exited).toBe(0);
    expect((await readTopic(setup.topic, { expected: total + 1, timeoutMs: 3000, settleMs: 0 })).length).toBe(total);

    // Replay from the LSN in the header of the first record after `before`.
    const from = first[before.length]!.headers['outbox-lsn']!;
    const replay = startRelay([...setup.args, '--from-lsn', from]);
    await replay.waitForMessage('streaming from PostgreSQL', 60_000);
    const all = await readTopic(setup.topic, { expected: total + after.length, settleMs: 1500 });
    replay.signal('SIGTERM');
    expect(await replay.exited).toBe(0);
    console.log(`replay from ${from}: ${all.length - total} events re-delivered, ${after.length} expected`);
    expect(all.slice(total).map((r) => r.key)).toEqual(after);

    // Below what the slot retains: refused, naming the oldest replayable LSN and republish.
    const outside = startRelay([...setup.args, '--from-lsn', formatLsn(slotAtStart - 1n)]);
    expect(await outside.exited).toBe(1);
    const refused = outside.logs.find((l) => l.code === 'REPLAY_OUT_OF_WINDOW');
    expect(refused, outside.dump()).toBeDefined();
    expect(String(refused!.err)).toContain(`can only stream from ${formatLsn(slotAtStart)} on (oldest replayable LSN`);
    expect(String(refused!.fix)).toContain('outbox-relay republish --since');
  });
});

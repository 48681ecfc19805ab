import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { insertEvents, setupOutbox, slotConfirmedLsn, waitForConfirmedAll } from '../support/outbox.js';
import { httpArgs, metricValue, scrape } from '../support/ops-http.js';
import { startRelay } from '../support/relay-process.js';
import { createTopic, kafkaClient, readTopic, uniqueName } from '../support/services.js';
import { checkpointStore } from '../support/checkpoints.js';
import { useFreshDatabase } from '../support/database.js';
import { formatLsn, parseLsn } from '../../src/lsn.js';
import type { KafkaCheckpointStore } from '../../src/checkpoint/kafka-checkpoint-store.js';
import type { Checkpoint } from '../../src/checkpoint/checkpoint.js';
import { waitUntil } from '../../stack/index.js';

describe('replay from a stored LSN', () => {
  const db = useFreshDatabase('replay');

  it('inside the replay window: restarts resume at the checkpoint, --start-lsn re-delivers exactly the events after it, below the slot it refuses', async () => {
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
    expect(start, `first run:\n${relay.dump()}\nrestart:\n${restarted.dump()}`).toBeDefined();
    expect(parseLsn(String(start!.startLsn)) > slotAtStart).toBe(true);
    restarted.signal('SIGTERM');
    expect(await restarted.exited).toBe(0);
    expect((await readTopic(setup.topic, { expected: total + 1, timeoutMs: 3000, settleMs: 0 })).length).toBe(total);

    // Replay from the LSN in the header of the first record after `before`.
    const from = first[before.length]!.headers['outbox-lsn']!;
    const replay = startRelay([...setup.args, '--start-lsn', from]);
    await replay.waitForMessage('streaming from PostgreSQL', 60_000);
    const all = await readTopic(setup.topic, { expected: total + after.length, settleMs: 1500 });
    replay.signal('SIGTERM');
    expect(await replay.exited).toBe(0);
    console.log(`replay from ${from}: ${all.length - total} events re-delivered, ${after.length} expected`);
    expect(all.slice(total).map((r) => r.key)).toEqual(after);

    // Below what the slot retains: refused, naming the oldest replayable LSN and republish.
    const outside = startRelay([...setup.args, '--start-lsn', formatLsn(slotAtStart - 1n)]);
    expect(await outside.exited).toBe(1);
    const refused = outside.logs.find((l) => l.code === 'REPLAY_OUT_OF_WINDOW');
    expect(refused, outside.dump()).toBeDefined();
    expect(String(refused!.err)).toContain(`can only stream from ${formatLsn(slotAtStart)} on (oldest replayable LSN`);
    expect(String(refused!.fix)).toContain('outbox-relay republish --since');
  });

  it('the window is state: a replay and a run without --replay-window keep the recorded one; --replay-window 0 releases it with a warning', async () => {
    const setup = await setupOutbox(db(), { extraArgs: ['--checkpoint-topic', uniqueName('checkpoints')] });
    const slotAtStart = await slotConfirmedLsn(db(), setup.slot);
    const withWindow = startRelay([...setup.args, '--replay-window', '1GiB']);
    await withWindow.waitForMessage('streaming from PostgreSQL', 60_000);
    const events = await insertEvents(db(), 10);
    const first = await readTopic(setup.topic, { expected: events.length, settleMs: 500 });
    // The checkpoint is written at most once a second; the relay writes the last one when it stops.
    withWindow.signal('SIGTERM');
    expect(await withWindow.exited).toBe(0);
    expect(await slotConfirmedLsn(db(), setup.slot)).toBe(slotAtStart);

    // A replay without --replay-window: the recorded window still holds the slot back.
    const from = first[5]!.headers['outbox-lsn']!;
    const replay = startRelay(['replay', ...setup.args.slice(1), '--start-lsn', from]);
    expect(await replay.exited, replay.dump()).toBe(0);
    expect(replay.logs.some((l) => l.msg.startsWith('replay window recorded in the checkpoint kept')), replay.dump()).toBe(true);
    expect(await slotConfirmedLsn(db(), setup.slot)).toBe(slotAtStart);

    // A run without the setting keeps it too.
    const http = await httpArgs();
    const plain = startRelay([...setup.args, ...http.args]);
    await plain.waitForMessage('streaming from PostgreSQL', 60_000);
    await insertEvents(db(), 3);
    await readTopic(setup.topic, { expected: events.length + 5 + 3, settleMs: 500 });
    // What is reported (the window's position) and what is delivered are told apart.
    await new Promise((r) => setTimeout(r, 1000));
    const metrics = await scrape(http.base);
    expect(metricValue(metrics, 'outbox_relay_confirmed_lsn')).toBe(Number(slotAtStart));
    expect(metricValue(metrics, 'outbox_relay_delivered_lsn')!).toBeGreaterThan(Number(slotAtStart));
    expect(metricValue(metrics, 'outbox_relay_slot_lag_bytes')!).toBeGreaterThanOrEqual(metricValue(metrics, 'outbox_relay_delivered_lsn')! - Number(slotAtStart));
    plain.signal('SIGTERM');
    expect(await plain.exited).toBe(0);
    expect(await slotConfirmedLsn(db(), setup.slot)).toBe(slotAtStart);
    expect(plain.logs.find((l) => l.msg === 'confirmed position reported to PostgreSQL')).toMatchObject({ confirmedLsn: formatLsn(slotAtStart) });

    // Shrinking it is explicit and says what it releases; the slot then follows the delivered position.
    const released = startRelay([...setup.args, '--replay-window', '0']);
    const warning = await released.waitForLog((l) => l.msg.startsWith('replay window changed from 1GiB to 0'), 60_000);
    expect(warning.level).toBe('warn');
    expect(Number(warning.walHeldBytes)).toBeGreaterThan(0);
    await released.waitForMessage('streaming from PostgreSQL', 60_000);
    await waitForConfirmedAll(db(), setup.slot);
    released.signal('SIGTERM');
    expect(await released.exited).toBe(0);
    expect((await slotConfirmedLsn(db(), setup.slot)) > slotAtStart).toBe(true);

    // ...and stays released: the next run records no window.
    const after = startRelay(setup.args);
    await after.waitForMessage('streaming from PostgreSQL', 60_000);
    after.signal('SIGTERM');
    expect(await after.exited).toBe(0);
    expect(after.logs.some((l) => l.msg.startsWith('replay window recorded')), after.dump()).toBe(false);
  });

  it('a standby started with another replay window leaves the checkpoint alone until it takes over, then records its window', async () => {
    const topic = uniqueName('checkpoints');
    const setup = await setupOutbox(db(), { extraArgs: ['--checkpoint-topic', topic] });
    const store = checkpointStore(topic);
    const active = startRelay([...setup.args, '--replay-window', '1h']);
    await active.waitForMessage('streaming from PostgreSQL', 60_000);
    await insertEvents(db(), 3);
    // The window keeps the slot behind: the checkpoint says what was delivered (at most a second later).
    const written = await waitForCheckpoint(store, setup.slot, (c) => c.lsn > 0n && c.replayWindow === '1h');

    // The standby decided its window (read the checkpoint) before it logged that it waits.
    const standby = startRelay([...setup.args, '--replay-window', '2h']);
    await standby.waitForMessage('slot in use by another instance: waiting as standby', 60_000);
    expect(await store.read(setup.slot), 'the standby rewrote the checkpoint').toMatchObject({ replayWindow: '1h' });

    active.signal('SIGTERM');
    expect(await active.exited).toBe(0);
    await standby.waitForMessage('streaming from PostgreSQL', 60_000);
    expect((await waitForCheckpoint(store, setup.slot, (c) => c.replayWindow === '2h')).lsn).toBeGreaterThanOrEqual(written.lsn);
    standby.signal('SIGTERM');
    expect(await standby.exited).toBe(0);
  });

  it('a graceful handover: the active instance writes its last checkpoint before it releases the slot, so the standby resumes where it stopped and sends nothing again', async () => {
    const topic = uniqueName('checkpoints');
    // Periodic checkpoints every 10 s: the events below are recorded only by the one written at the stop.
    const setup = await setupOutbox(db(), { extraArgs: ['--checkpoint-topic', topic, '--replay-window', '1h', '--status-interval', '10s'] });
    const store = checkpointStore(topic);
    const active = startRelay(setup.args);
    await active.waitForMessage('streaming from PostgreSQL', 60_000);
    const standby = startRelay(setup.args);
    await standby.waitForMessage('slot in use by another instance: waiting as standby', 60_000);
    const before = await insertEvents(db(), 20);
    await readTopic(setup.topic, { expected: before.length, settleMs: 0 });

    active.signal('SIGTERM');
    expect(await active.exited).toBe(0);
    // Logged as the session reports its last position, just before it closes the connection and so the slot.
    const released = active.logs.find((l) => l.msg === 'confirmed position reported to PostgreSQL');
    expect(released?.deliveredLsn, active.dump()).toEqual(expect.any(String));
    const last = await store.read(setup.slot);
    expect(formatLsn(last!.lsn)).toBe(released!.deliveredLsn);
    // Before: written after the release, when a standby that looked in between had read the previous checkpoint.
    expect(last!.writtenAtMs, 'the last checkpoint was written after the slot was released').toBeLessThanOrEqual(Date.parse(String(released!.time)));

    await standby.waitForMessage('streaming from PostgreSQL', 60_000);
    expect(standby.logs.find((l) => l.msg === 'start position chosen'), standby.dump()).toMatchObject({ startLsn: released!.deliveredLsn });
    const after = await insertEvents(db(), 5);
    const records = await readTopic(setup.topic, { expected: before.length + after.length, settleMs: 500 });
    expect(records.map((r) => r.key)).toEqual([...before, ...after].map((e) => e.id));
    standby.signal('SIGTERM');
    expect(await standby.exited).toBe(0);
  });

  it('an instance that streamed, lost the slot to a standby and took it back resumes at the checkpoint the other wrote, sending nothing again', async () => {
    const topic = uniqueName('checkpoints');
    const setup = await setupOutbox(db(), { extraArgs: ['--checkpoint-topic', topic, '--replay-window', '1h'] });
    const store = checkpointStore(topic);
    // A: its reconnect waits 5 s, so the standby takes the slot when A's connection is ended.
    const a = startRelay([...setup.args, '--retry-initial-delay', '5s']);
    await a.waitForMessage('streaming from PostgreSQL', 60_000);
    const b = startRelay(setup.args);
    await b.waitForMessage('slot in use by another instance: waiting as standby', 60_000);
    const first = await insertEvents(db(), 10);
    const [sent] = await readTopic(setup.topic, { expected: first.length, settleMs: 0 });
    // A ends like a crash: what B sends again depends on A's checkpoint, which A writes each second and when its
    // session ends, but B may take the slot within milliseconds. That is at-least-once after a crash, not what this
    // test is about: it waits for the checkpoint past the first transaction (its end is beyond its commit LSN).
    await waitForCheckpoint(store, setup.slot, (c) => c.lsn > parseLsn(sent!.headers['outbox-lsn']!));
    await db().query('SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1', [setup.slot]);
    await b.waitForMessage('streaming from PostgreSQL', 60_000);
    await a.waitForMessage('slot in use by another instance: waiting as standby', 60_000);
    const second = await insertEvents(db(), 10);
    await readTopic(setup.topic, { expected: first.length + second.length, settleMs: 0 });
    b.signal('SIGTERM');
    expect(await b.exited).toBe(0);
    const handedOver = await store.read(setup.slot);
    await waitUntil('A streaming again', async () => a.logs.filter((l) => l.msg === 'streaming from PostgreSQL').length === 2, 60_000);
    // Before: A resumed at its own last position (after the first 10; the window keeps the slot further back)
    // and sent the second 10, which B had delivered, again.
    expect(a.logs.filter((l) => l.msg === 'streaming from PostgreSQL').at(-1)).toMatchObject({ startLsn: formatLsn(handedOver!.lsn) });
    const third = await insertEvents(db(), 5);
    const records = await readTopic(setup.topic, { expected: 25, settleMs: 1000 });
    expect(records.map((r) => r.key)).toEqual([...first, ...second, ...third].map((e) => e.id));
    a.signal('SIGTERM');
    expect(await a.exited).toBe(0);
  });

  it('restarted more often than its time window, the relay still moves the slot: the checkpoint carries the positions the window holds', async () => {
    const setup = await setupOutbox(db(), { extraArgs: ['--replay-window', '3s', '--checkpoint-topic', uniqueName('checkpoints')] });
    let relay = startRelay(setup.args);
    await relay.waitForMessage('streaming from PostgreSQL', 60_000);
    await insertEvents(db(), 5);
    const [record] = await readTopic(setup.topic, { expected: 5, settleMs: 200 });
    const commitLsn = parseLsn(record!.headers['outbox-lsn']!);
    const passed = async () => (await slotConfirmedLsn(db(), setup.slot)) > commitLsn;
    // Each run streams about half the window: with the window begun again at every start (before 2026-12-05), no
    // run lived long enough to report the events' position, and the slot stayed where it was for good.
    for (let run = 0; run < 12 && !(await passed()); run++) {
      await sleep(1500);
      relay.signal('SIGTERM');
      expect(await relay.exited, relay.dump()).toBe(0);
      relay = startRelay(setup.args);
      await relay.waitForMessage('streaming from PostgreSQL', 60_000);
    }
    relay.signal('SIGTERM');
    expect(await relay.exited, relay.dump()).toBe(0);
    expect(await passed(), `slot at ${formatLsn(await slotConfirmedLsn(db(), setup.slot))}, events committed at ${formatLsn(commitLsn)}`).toBe(true);
  });

  // Taken as none, an unreadable window would be replaced by 0 at the next checkpoint: the slot would move up to the
  // delivered position and PostgreSQL could release the WAL the window held, with no line saying so.
  it.each([
    ['a text it cannot parse', '5 fortnights'],
    ['a JSON number', 6],
  ])('a replay window recorded in the checkpoint that it cannot read (%s): exit 2, one CONFIG_INVALID line naming it and the fix, the slot unchanged; with --replay-window it runs', async (_what, recorded) => {
    const topic = uniqueName('checkpoints');
    const setup = await setupOutbox(db(), { extraArgs: ['--checkpoint-topic', topic] });
    await insertEvents(db(), 2);
    const slotBefore = await slotConfirmedLsn(db(), setup.slot);
    // As another version, or a person, would have written it: the record's JSON as it is stored, but for the window.
    await createTopic(topic, 1, undefined, [{ name: 'cleanup.policy', value: 'compact' }]);
    const producer = kafkaClient().producer();
    await producer.connect();
    const value = { slot: setup.slot, lsn: formatLsn(slotBefore), commitTime: null, writtenAt: new Date().toISOString(), guarantee: 'at-least-once', replayWindow: recorded };
    await producer.send({ topic, messages: [{ key: setup.slot, value: JSON.stringify(value) }] });
    await producer.disconnect();

    const refused = startRelay(setup.args);
    expect(await refused.exitCode(), refused.dump()).toBe(2);
    const errors = refused.logs.filter((l) => l.level === 'error' || l.level === 'fatal');
    expect(errors, refused.dump()).toEqual([
      expect.objectContaining({
        code: 'CONFIG_INVALID',
        err: `the checkpoint of slot "${setup.slot}" records replay window "${String(recorded)}", which this relay cannot read (written by another version, or edited)`,
        fix: 'set replayWindow (--replay-window) explicitly: the window to keep from now on, or 0 to release it',
      }),
    ]);
    expect(refused.logs.some((l) => l.msg === 'streaming from PostgreSQL'), refused.dump()).toBe(false);
    expect(await slotConfirmedLsn(db(), setup.slot)).toBe(slotBefore);

    // The fix: a window given explicitly replaces the recorded one; the events committed meanwhile are delivered.
    const fixed = startRelay([...setup.args, '--replay-window', '1GiB']);
    await fixed.waitForMessage('streaming from PostgreSQL', 60_000);
    expect((await readTopic(setup.topic, { expected: 2, settleMs: 0 })).length).toBe(2);
    fixed.signal('SIGTERM');
    expect(await fixed.exited, fixed.dump()).toBe(0);
    expect(await checkpointStore(topic).read(setup.slot)).toMatchObject({ replayWindow: '1GiB' });
    // The window holds the slot where it was.
    expect(await slotConfirmedLsn(db(), setup.slot)).toBe(slotBefore);
  });

  it('a start position left in the environment is ignored by run with one warning instead of a crash loop', async () => {
    const setup = await setupOutbox(db(), { extraArgs: ['--checkpoint-topic', uniqueName('checkpoints')] });
    const relay = startRelay(setup.args);
    await relay.waitForMessage('streaming from PostgreSQL', 60_000);
    await insertEvents(db(), 3);
    await waitForConfirmedAll(db(), setup.slot);
    relay.signal('SIGTERM');
    expect(await relay.exited).toBe(0);
    const passed = await slotConfirmedLsn(db(), setup.slot);

    // Below the slot now: as a flag this is REPLAY_OUT_OF_WINDOW (tested above); from the environment, ignored.
    const env = { OUTBOX_RELAY_START_LSN: formatLsn(passed - 1n) };
    const restarted = startRelay(setup.args, env);
    await restarted.waitForMessage('streaming from PostgreSQL', 60_000);
    const ignored = restarted.logs.filter((l) => l.msg.startsWith('start position from the environment variable OUTBOX_RELAY_START_LSN ignored'));
    expect(ignored.length, restarted.dump()).toBe(1);
    expect(ignored[0]!.level).toBe('warn');
    const more = await insertEvents(db(), 2);
    const records = await readTopic(setup.topic, { expected: 5, settleMs: 500 });
    expect(records.slice(3).map((r) => r.key)).toEqual(more.map((e) => e.id));
    restarted.signal('SIGTERM');
    expect(await restarted.exited).toBe(0);
  });
});

async function waitForCheckpoint(store: KafkaCheckpointStore, slot: string, ok: (c: Checkpoint) => boolean): Promise<Checkpoint> {
  let last: Checkpoint | undefined;
  await waitUntil('the checkpoint', async () => {
    last = await store.read(slot);
    return last !== undefined && ok(last);
  }, 30_000, 200).catch((err: unknown) => {
    throw new Error(`${(err as Error).message}; last read: ${JSON.stringify(last, (_k, v: unknown) => (typeof v === 'bigint' ? formatLsn(v) : v))}`);
  });
  return last!;
}

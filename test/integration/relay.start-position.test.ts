import { describe, expect, it } from 'vitest';
import { freeze, waitUntil } from '../../stack/index.js';
import { encodeCheckpoint, type Checkpoint } from '../../src/checkpoint/checkpoint.js';
import { formatLsn } from '../../src/lsn.js';
import { useFreshDatabase } from '../support/database.js';
import { currentWalLsn, insertEvents, setupOutbox, slotConfirmedLsn } from '../support/outbox.js';
import { checkpointStore, checkpointTopicPolicy } from '../support/checkpoints.js';
import { startRelay } from '../support/relay-process.js';
import { createTopic, kafkaClient, readTopic, uniqueName } from '../support/services.js';

/** A new compacted checkpoint topic (`topic`) holding `checkpoint`, as another relay would have written it. */
async function checkpointTopicHolding(checkpoint: Checkpoint, topic = uniqueName('checkpoints')): Promise<string> {
  await createTopic(topic, 1, undefined, [{ name: 'cleanup.policy', value: 'compact' }]);
  const producer = kafkaClient().producer();
  await producer.connect();
  await producer.send({ topic, messages: [{ key: checkpoint.slot, value: encodeCheckpoint(checkpoint) }] });
  await producer.disconnect();
  return topic;
}

describe('relay: a start position is checked against both bounds before anything is confirmed', () => {
  const db = useFreshDatabase('startpos');

  it('--start-lsn beyond the current WAL end: refused with the fix, the slot does not move, later events are relayed', async () => {
    const setup = await setupOutbox(db());
    const slotBefore = await slotConfirmedLsn(db(), setup.slot);
    const walEnd = await currentWalLsn(db());

    const refused = startRelay([...setup.args, '--start-lsn', 'F/0']);
    expect(await refused.exitCode()).toBe(1);
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

  it('a checkpoint beyond the WAL end (written against another server): refused with the fix, the slot does not move; with a new checkpoint topic, later events are relayed', async () => {
    const setup = await setupOutbox(db());
    const slotBefore = await slotConfirmedLsn(db(), setup.slot);
    const walEnd = await currentWalLsn(db());
    // What the old primary's relay recorded before a failover to a standby that had not received that WAL. 4 GiB
    // ahead: with 16 MiB, the suite's other files (writers on the shared server) wrote past it before the relay
    // started in one run, and the relay rightly streamed from it.
    const ahead = walEnd + 0x100000000n;
    const commitTimeMs = Date.parse('2026-12-05T08:00:00.000Z');
    const checkpoints = await checkpointTopicHolding({ slot: setup.slot, lsn: ahead, commitTimeMs, writtenAtMs: Date.now(), guarantee: 'at-least-once' });

    const refused = startRelay([...setup.args, '--checkpoint-topic', checkpoints]);
    expect(await refused.exitCode()).toBe(1);
    const errors = refused.logs.filter((l) => l.level === 'error');
    expect(errors, refused.dump()).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: 'CHECKPOINT_AHEAD_OF_WAL' });
    expect(String(errors[0]!.err)).toContain(`is at ${formatLsn(ahead)}, but PostgreSQL has written WAL only up to`);
    expect(String(errors[0]!.fix)).toContain('--checkpoint-topic');
    // The re-send starts a minute before the commit time the checkpoint records.
    expect(String(errors[0]!.fix)).toContain('outbox-relay republish --since 2026-12-05T07:59:00.000Z');
    expect(await slotConfirmedLsn(db(), setup.slot)).toBe(slotBefore);

    // The fix: a checkpoint topic of this server's own. Nothing committed meanwhile was passed over.
    const events = await insertEvents(db(), 3);
    const relay = startRelay([...setup.args, '--checkpoint-topic', uniqueName('checkpoints')]);
    await relay.waitForMessage('streaming from PostgreSQL');
    expect((await readTopic(setup.topic, { expected: 3 })).map((r) => r.key)).toEqual(events.map((e) => e.id));
    relay.signal('SIGTERM');
    expect(await relay.exited).toBe(0);
  });

  it('a checkpoint of another PostgreSQL server under the same slot name, inside this WAL: refused (CHECKPOINT_FOREIGN), nothing skipped; its own checkpoints record the system identifier', async () => {
    const setup = await setupOutbox(db());
    const skippable = await insertEvents(db(), 2);
    const slotBefore = await slotConfirmedLsn(db(), setup.slot);
    // Another database's relay with the same defaults wrote a position between this slot and this WAL's end.
    const inside = await currentWalLsn(db());
    const checkpoints = await checkpointTopicHolding({ slot: setup.slot, lsn: inside, commitTimeMs: Date.now(), writtenAtMs: Date.now(), guarantee: 'at-least-once', systemId: '1234567890' });

    const refused = startRelay([...setup.args, '--checkpoint-topic', checkpoints]);
    expect(await refused.exitCode()).toBe(1);
    const errors = refused.logs.filter((l) => l.level === 'error');
    expect(errors, refused.dump()).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: 'CHECKPOINT_FOREIGN' });
    expect(String(errors[0]!.err)).toContain('system identifier 1234567890');
    expect(String(errors[0]!.fix)).toContain('its own slot name');
    expect(await slotConfirmedLsn(db(), setup.slot)).toBe(slotBefore);

    // With a topic of its own: the events the foreign position would have skipped arrive, and the checkpoint names this server.
    const own = uniqueName('checkpoints');
    const relay = startRelay([...setup.args, '--checkpoint-topic', own]);
    await relay.waitForMessage('streaming from PostgreSQL');
    expect((await readTopic(setup.topic, { expected: 2 })).map((r) => r.key)).toEqual(skippable.map((e) => e.id));
    relay.signal('SIGTERM');
    expect(await relay.exited).toBe(0);
    const { rows } = await db().query<{ id: string }>('SELECT system_identifier::text AS id FROM pg_control_system()');
    expect((await checkpointStore(own).read(setup.slot))?.systemId).toBe(rows[0]!.id);

    // Another server's checkpoint behind the slot (left by a server this one replaced: pg_upgrade gives a new
    // identifier) would not be the start: passed over with one warning, and replaced by this relay's next checkpoint.
    const behind = await checkpointTopicHolding({ slot: setup.slot, lsn: slotBefore, commitTimeMs: Date.now(), writtenAtMs: Date.now(), guarantee: 'at-least-once', systemId: '1234567890' });
    const upgraded = startRelay([...setup.args, '--checkpoint-topic', behind]);
    await upgraded.waitForMessage('streaming from PostgreSQL');
    const later = await insertEvents(db(), 1);
    expect((await readTopic(setup.topic, { expected: 3 })).map((r) => r.key)).toEqual([...skippable, ...later].map((e) => e.id));
    upgraded.signal('SIGTERM');
    expect(await upgraded.exited).toBe(0);
    expect(upgraded.logs.filter((l) => l.level === 'warn').map((l) => l.msg)).toEqual([
      "another PostgreSQL server's checkpoint of this slot, behind the slot's position, is passed over: this relay's next checkpoint replaces it",
    ]);
    expect((await checkpointStore(behind).read(setup.slot))?.systemId).toBe(rows[0]!.id);
  });

  it('checkpoints of the slot in two partitions (the topic\'s partition count raised): refused (CHECKPOINT_FAILED) with the fix, the slot does not move; with a new checkpoint topic, the events are relayed', async () => {
    const setup = await setupOutbox(db());
    const events = await insertEvents(db(), 2);
    const slotBefore = await slotConfirmedLsn(db(), setup.slot);
    // A record in each partition, the newer one in the second: which one a read meets last says nothing of its age.
    const checkpoints = uniqueName('checkpoints');
    await createTopic(checkpoints, 2, undefined, [{ name: 'cleanup.policy', value: 'compact' }]);
    const producer = kafkaClient().producer();
    await producer.connect();
    const record = (lsn: bigint) => encodeCheckpoint({ slot: setup.slot, lsn, commitTimeMs: Date.now(), writtenAtMs: Date.now(), guarantee: 'at-least-once' });
    await producer.send({ topic: checkpoints, messages: [{ key: setup.slot, value: record(slotBefore), partition: 0 }] });
    await producer.send({ topic: checkpoints, messages: [{ key: setup.slot, value: record(await currentWalLsn(db())), partition: 1 }] });
    await producer.disconnect();

    const refused = startRelay([...setup.args, '--checkpoint-topic', checkpoints]);
    expect(await refused.exitCode(), refused.dump()).toBe(1);
    const errors = refused.logs.filter((l) => l.level === 'error' || l.level === 'fatal');
    expect(errors, refused.dump()).toEqual([
      expect.objectContaining({
        msg: 'giving up',
        code: 'CHECKPOINT_FAILED',
        err: `the checkpoint topic "${checkpoints}" holds checkpoints of slot "${setup.slot}" in 2 partitions (its partition count was raised): which one is newest cannot be told`,
        fix: 'point checkpoint.topic at a new topic (the relay creates it with one partition; a replay window recorded in the old one does not come along) and start again: the relay starts at the slot',
      }),
    ]);
    expect(refused.logs.some((l) => l.msg === 'streaming from PostgreSQL'), refused.dump()).toBe(false);
    expect(await slotConfirmedLsn(db(), setup.slot)).toBe(slotBefore);

    // The fix: a new topic; the relay starts at the slot, so the events committed before the refusal arrive.
    const relay = startRelay([...setup.args, '--checkpoint-topic', uniqueName('checkpoints')]);
    await relay.waitForMessage('streaming from PostgreSQL');
    expect((await readTopic(setup.topic, { expected: 2 })).map((r) => r.key)).toEqual(events.map((e) => e.id));
    relay.signal('SIGTERM');
    expect(await relay.exited).toBe(0);
  });

  it("a checkpoint topic made by hand with cleanup.policy=delete: one warning names its effect and the fix, and the relay goes on; a compacted one draws none", async () => {
    const setup = await setupOutbox(db());
    const byHand = uniqueName('checkpoints');
    await createTopic(byHand, 1, undefined, [{ name: 'cleanup.policy', value: 'delete' }, { name: 'retention.ms', value: '86400000' }]);
    const relay = startRelay([...setup.args, '--checkpoint-topic', byHand]);
    const warning = await relay.waitForLog((l) => l.code === 'CHECKPOINT_TOPIC_POLICY', 30_000, 'the checkpoint topic warning');
    expect(warning).toMatchObject({ level: 'warn', topic: byHand });
    expect(warning.msg).toContain(`the checkpoint topic "${byHand}" has cleanup.policy=delete: it is never compacted`);
    expect(warning.msg).toContain('older than retention.ms (24h)');
    expect(String(warning.fix)).toContain(`--entity-name ${byHand} --add-config cleanup.policy=compact`);
    const events = await insertEvents(db(), 3);
    expect((await readTopic(setup.topic, { expected: 3 })).map((r) => r.key)).toEqual(events.map((e) => e.id));
    relay.signal('SIGTERM');
    expect(await relay.exited).toBe(0);
    expect(relay.logs.filter((l) => l.code === 'CHECKPOINT_TOPIC_POLICY')).toHaveLength(1);

    // The fix's state: compacted, as the relay creates it. The check runs (its debug line) and finds nothing.
    const compacted = uniqueName('checkpoints');
    await createTopic(compacted, 1, undefined, [{ name: 'cleanup.policy', value: 'compact' }]);
    const quiet = startRelay([...setup.args, '--checkpoint-topic', compacted, '--log-level', 'debug']);
    await quiet.waitForLog((l) => l.msg.startsWith("checkpoint topic's cleanup.policy and replicas checked"), 30_000, 'the check');
    quiet.signal('SIGTERM');
    expect(await quiet.exited).toBe(0);
    expect(quiet.logs.filter((l) => l.level === 'warn' || l.level === 'error'), quiet.dump()).toEqual([]);

    // A topic not created yet has nothing to check: the relay creates it compacted at its first checkpoint.
    expect(await checkpointTopicPolicy(uniqueName('checkpoints'))).toBeUndefined();
  });
});

describe('relay: a forward skip (run --start-lsn past the checkpoint) is recorded before anything streams', () => {
  const db = useFreshDatabase('skip');

  for (const [guarantee, extraArgs] of [
    ['at-least-once', []],
    ['exactly-once', ['--kafka-client', 'rdkafka']],
  ] as const) {
    it(`${guarantee}: SIGKILLed right after it started streaming, before any transaction after the skip was confirmed, the next run does not stream the skipped events again`, async () => {
      const checkpoints = uniqueName('checkpoints');
      // A status interval longer than the test: the periodic checkpoint write never comes first.
      const setup = await setupOutbox(db(), { extraArgs: ['--delivery-guarantee', guarantee, ...extraArgs, '--checkpoint-topic', checkpoints, '--status-interval', '20s'] });
      // Delivered by an earlier run, whose replay window keeps the slot behind its checkpoint.
      await insertEvents(db(), 2);
      const delivered = await currentWalLsn(db());
      await checkpointTopicHolding({ slot: setup.slot, lsn: delivered, commitTimeMs: Date.now(), writtenAtMs: Date.now(), guarantee, replayWindow: '1h' }, checkpoints);
      // The events to skip (a poison event among them, say), and the skip past their commit.
      await insertEvents(db(), 2);
      const skip = await currentWalLsn(db());

      const skipping = startRelay([...setup.args, '--start-lsn', formatLsn(skip)]);
      await skipping.waitForMessage('streaming from PostgreSQL');
      await skipping.kill();
      expect((await checkpointStore(checkpoints).read(setup.slot))?.lsn, skipping.dump()).toBe(skip);

      const relay = startRelay(setup.args);
      await relay.waitForMessage('streaming from PostgreSQL');
      const later = await insertEvents(db(), 2);
      // Only the events committed after the skip: the skipped ones were not streamed again (nor those delivered before).
      expect((await readTopic(setup.topic, { expected: 2, readCommitted: true })).map((r) => r.key)).toEqual(later.map((e) => e.id));
      relay.signal('SIGTERM');
      expect(await relay.exited, relay.dump()).toBe(0);
    });
  }

  it('at-least-once: a run --start-lsn that finds the slot held waits as a standby without writing its skip; cancelled there, the holder\'s crash resumes at the holder\'s checkpoint and nothing is lost', async () => {
    const checkpoints = uniqueName('checkpoints');
    const setup = await setupOutbox(db(), { extraArgs: ['--checkpoint-topic', checkpoints, '--status-interval', '1s'] });
    const store = checkpointStore(checkpoints);
    const holder = startRelay(setup.args);
    await holder.waitForMessage('streaming from PostgreSQL');
    const before = await currentWalLsn(db());
    await insertEvents(db(), 2);
    await readTopic(setup.topic, { expected: 2 });
    await waitUntil("the holder's checkpoint", async () => ((await store.read(setup.slot).catch(() => undefined))?.lsn ?? 0n) > before, 30_000, 100);
    // The holder stops delivering (a stuck process) but keeps the slot; events are committed behind it. Every thread
    // stopped first: kill() returns before, and a holder still running could deliver them and checkpoint at the skip.
    await freeze(holder.pid);
    const stuck = await insertEvents(db(), 2);
    const skip = await currentWalLsn(db());
    const standby = startRelay([...setup.args, '--start-lsn', formatLsn(skip)]);
    await standby.waitForMessage('slot in use by another instance: waiting as standby');
    // The operator sees the slot held and cancels the skip.
    standby.signal('SIGTERM');
    expect(await standby.exited, standby.dump()).toBe(0);
    expect((await store.read(setup.slot))?.lsn, standby.dump()).toBeLessThan(skip);

    // The holder crashes; a plain restart resumes at its checkpoint and delivers what it had not.
    await holder.kill();
    const relay = startRelay(setup.args);
    await relay.waitForMessage('streaming from PostgreSQL');
    const keys = (await readTopic(setup.topic, { expected: 4 })).map((r) => r.key);
    expect(keys).toEqual(expect.arrayContaining(stuck.map((e) => e.id)));
    relay.signal('SIGTERM');
    expect(await relay.exited, relay.dump()).toBe(0);
  });
});

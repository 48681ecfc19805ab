import { describe, expect, it } from 'vitest';
import { waitUntil } from '../../stack/index.js';
import { parseLsn } from '../../src/lsn.js';
import { committedIds, compareDelivery, currentWalLsn, insertEvents, setupOutbox, slotConfirmedLsn, startWriters } from '../support/outbox.js';
import { startRelay } from '../support/relay-process.js';
import { kafkaClient, readTopic, uniqueName } from '../support/services.js';
import { useFreshDatabase } from '../support/database.js';

describe('delivery: exactly-once', () => {
  const db = useFreshDatabase('eos');

  // Two kills: `npm run faults` (its broker phase) runs the long loop of 20 SIGKILLs with the same read_committed check.
  it('SIGKILLed twice under concurrent writers: a read_committed consumer sees every event exactly once', async () => {
    const setup = await setupOutbox(db(), { partitions: 3, extraArgs: ['--delivery-guarantee', 'exactly-once', '--checkpoint-topic', uniqueName('checkpoints')] });
    const writers = startWriters(db(), 4);
    for (let round = 0; round < 2; round++) {
      const relay = startRelay(setup.args);
      await relay.waitForMessage('streaming from PostgreSQL', 60_000);
      // Kill only after this instance committed something of its own, at varying moments after that.
      await insertEvents(db(), 3);
      const end = await currentWalLsn(db());
      await waitUntil(`round ${round}: this instance committed and confirmed`, async () => (await slotConfirmedLsn(db(), setup.slot)) >= end, 60_000, 100);
      await new Promise((r) => setTimeout(r, 400 + round * 230));
      await relay.kill();
    }
    await writers.stop();
    const final = startRelay(setup.args);
    await final.waitForMessage('streaming from PostgreSQL', 60_000);
    const committed = await committedIds(db());
    const records = await readTopic(setup.topic, { expected: committed.length, settleMs: 2000, readCommitted: true });
    const delivery = compareDelivery(committed, records.map((r) => r.key));
    console.log(`exactly-once SIGKILL loop: ${committed.length} committed in ${writers.commits} transactions, ${records.length} read_committed records, ${delivery.missing.length} lost, ${delivery.duplicates} duplicates`);
    expect(delivery.missing).toEqual([]);
    expect(delivery.duplicates).toBe(0);
    expect(delivery.unexpected).toBe(0);
    final.signal('SIGTERM');
    expect(await final.exited).toBe(0);
    // Three relay processes and a growing backlog: on a loaded 2-core machine this can outgrow the 120 s default.
  }, 200_000);

  it('kafka.client rdkafka: SIGKILLed once under concurrent writers and restarted, a read_committed consumer sees every event exactly once', async () => {
    const setup = await setupOutbox(db(), { partitions: 3, extraArgs: ['--kafka-client', 'rdkafka', '--delivery-guarantee', 'exactly-once', '--checkpoint-topic', uniqueName('checkpoints')] });
    const writers = startWriters(db(), 2, 5, 20);
    const first = startRelay(setup.args);
    await first.waitForMessage('streaming from PostgreSQL', 60_000);
    // Killed after it committed transactions of its own, while more are being produced.
    await insertEvents(db(), 3);
    const end = await currentWalLsn(db());
    await waitUntil('the first instance committed and confirmed', async () => (await slotConfirmedLsn(db(), setup.slot)) >= end, 30_000, 100);
    await new Promise((r) => setTimeout(r, 500));
    await first.kill();
    const second = startRelay(setup.args);
    await second.waitForMessage('streaming from PostgreSQL', 60_000);
    await new Promise((r) => setTimeout(r, 1000));
    await writers.stop();
    const committed = await committedIds(db());
    const records = await readTopic(setup.topic, { expected: committed.length, settleMs: 2000, readCommitted: true });
    const delivery = compareDelivery(committed, records.map((r) => r.key));
    console.log(`exactly-once (rdkafka) kill -9 once: ${committed.length} committed in ${writers.commits} transactions, ${records.length} read_committed records, ${delivery.missing.length} lost, ${delivery.duplicates} duplicates`);
    expect(delivery).toEqual({ missing: [], duplicates: 0, unexpected: 0 });
    expect(second.logs.find((l) => l.msg === 'checkpoint read')?.checkpoint, 'the restart resumed from a committed checkpoint').toBeTruthy();
    second.signal('SIGTERM');
    expect(await second.exited).toBe(0);
  });

  it('a second instance on the same slot waits as a standby without fencing the first, which goes on committing; it takes over when the first stops, and a read_committed consumer sees every event exactly once', async () => {
    const setup = await setupOutbox(db(), { extraArgs: ['--delivery-guarantee', 'exactly-once', '--checkpoint-topic', uniqueName('checkpoints')] });
    const first = startRelay(setup.args);
    await first.waitForMessage('streaming from PostgreSQL', 60_000);
    await insertEvents(db(), 10);
    const second = startRelay(setup.args);
    await second.waitForMessage('slot in use by another instance: waiting as standby', 60_000);
    // The first instance's next Kafka transactions: a standby that had registered the transactional id would have
    // fenced them (PRODUCER_FENCED, the first halts).
    const beforeStandbyWrites = await currentWalLsn(db());
    await insertEvents(db(), 10);
    const end = await currentWalLsn(db());
    await waitUntil('the first instance committed and confirmed the events written while the second waits', async () => (await slotConfirmedLsn(db(), setup.slot)) >= end, 30_000, 100);
    expect(first.logs.filter((l) => l.code === 'PRODUCER_FENCED' || l.msg === 'giving up' || String(l.msg).startsWith('halted'))).toEqual([]);
    first.signal('SIGTERM');
    expect(await first.exited).toBe(0);
    await second.waitForMessage('streaming from PostgreSQL', 60_000);
    // The standby read the checkpoint only once it held the slot: the first instance's last one, not the one of
    // the time the standby started.
    const read = second.logs.find((l) => l.msg === 'checkpoint read') as { checkpoint?: { lsn: string } } | undefined;
    expect(second.logs.findIndex((l) => l.msg === 'checkpoint read')).toBeGreaterThan(second.logs.findIndex((l) => l.msg === 'slot in use by another instance: waiting as standby'));
    expect(parseLsn(read!.checkpoint!.lsn)).toBeGreaterThan(beforeStandbyWrites);
    await insertEvents(db(), 10);
    const committed = await committedIds(db());
    const records = await readTopic(setup.topic, { expected: committed.length, settleMs: 1500, readCommitted: true });
    expect(compareDelivery(committed, records.map((r) => r.key))).toEqual({ missing: [], duplicates: 0, unexpected: 0 });
    second.signal('SIGTERM');
    expect(await second.exited).toBe(0);
  });

  it('fenced while streaming (a producer that raced it registered the transactional id): drops what it did not commit, finds the slot free again and streams on, without a halt; a read_committed consumer sees every event exactly once', async () => {
    const setup = await setupOutbox(db(), { extraArgs: ['--delivery-guarantee', 'exactly-once', '--checkpoint-topic', uniqueName('checkpoints')] });
    const relay = startRelay(setup.args);
    await relay.waitForMessage('streaming from PostgreSQL', 60_000);
    await insertEvents(db(), 10);
    const end = await currentWalLsn(db());
    await waitUntil('the relay committed and confirmed the first events', async () => (await slotConfirmedLsn(db(), setup.slot)) >= end, 30_000, 100);
    // What a standby that found the slot free at the same moment does before it finds it taken after all.
    const fencer = kafkaClient().producer({ transactionalId: `outbox-relay.${setup.slot}`, idempotent: true, maxInFlightRequests: 1 });
    await fencer.connect();
    // kafkajs registers the transactional id (InitProducerId, a new epoch) at the first transaction.
    await (await fencer.transaction()).abort();
    await fencer.disconnect();
    await insertEvents(db(), 10);
    const fenced = await relay.waitForLog((l) => l.code === 'PRODUCER_FENCED', 60_000, 'PRODUCER_FENCED');
    expect(fenced.level).toBe('warn');
    await waitUntil('a second session streams', () => relay.logs.filter((l) => l.msg === 'streaming from PostgreSQL').length === 2, 60_000, 50);
    await insertEvents(db(), 10);
    const committed = await committedIds(db());
    const records = await readTopic(setup.topic, { expected: committed.length, settleMs: 1500, readCommitted: true });
    expect(compareDelivery(committed, records.map((r) => r.key))).toEqual({ missing: [], duplicates: 0, unexpected: 0 });
    expect(relay.logs.filter((l) => l.level === 'error')).toEqual([]);
    relay.signal('SIGTERM');
    expect(await relay.exited).toBe(0);
  });

  it('two standbys, the active instance SIGKILLed under concurrent writers: one takes over without being fenced by the other, which waits on; nobody halts; a read_committed consumer sees every event exactly once', async () => {
    const setup = await setupOutbox(db(), { partitions: 3, extraArgs: ['--delivery-guarantee', 'exactly-once', '--checkpoint-topic', uniqueName('checkpoints')] });
    const active = startRelay(setup.args);
    await active.waitForMessage('streaming from PostgreSQL', 60_000);
    const standbys = [startRelay(setup.args), startRelay(setup.args)];
    for (const standby of standbys) await standby.waitForMessage('slot in use by another instance: waiting as standby', 60_000);
    const writers = startWriters(db(), 2, 5, 20);
    await new Promise((r) => setTimeout(r, 1000));
    // Both standbys find the slot free at about the same moment. Only the one that took the slot's lock registers
    // the transactional id: the other never fences the one that streams.
    await active.kill();
    await waitUntil('a standby streams', () => standbys.some((s) => s.logs.some((l) => l.msg === 'streaming from PostgreSQL')), 60_000, 50);
    await new Promise((r) => setTimeout(r, 2000));
    await writers.stop();
    const committed = await committedIds(db());
    const records = await readTopic(setup.topic, { expected: committed.length, settleMs: 2000, readCommitted: true });
    const fences = standbys.flatMap((s) => s.logs.filter((l) => l.code === 'PRODUCER_FENCED'));
    console.log(`exactly-once, two standbys racing: ${committed.length} committed, ${records.length} read_committed records, ${fences.length} fence(s) met by the instance streaming`);
    expect(compareDelivery(committed, records.map((r) => r.key))).toEqual({ missing: [], duplicates: 0, unexpected: 0 });
    expect(fences).toEqual([]);
    // One took over; the other is still a standby (it never streamed).
    expect(standbys.filter((s) => s.logs.some((l) => l.msg === 'streaming from PostgreSQL'))).toHaveLength(1);
    for (const standby of standbys) expect(standby.logs.filter((l) => l.level === 'error')).toEqual([]);
    for (const standby of standbys) standby.signal('SIGTERM');
    expect(await Promise.all(standbys.map((s) => s.exited))).toEqual([0, 0]);
  }, 180_000);
});

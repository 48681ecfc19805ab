import { createRequire } from 'node:module';
import { Partitioners } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { parseLsn } from '../../src/lsn.js';
import { waitUntil } from '../../stack/index.js';
import { committedIds, compareDelivery, currentWalLsn, insertEvents, setupOutbox, slotConfirmedLsn } from '../support/outbox.js';
import { startRelay } from '../support/relay-process.js';
import { readTopic } from '../support/services.js';
import { useFreshDatabase } from '../support/database.js';

/** The native client is an optional dependency: a machine that could not build it skips these, CI must not. */
function rdkafkaLoadable(): boolean {
  try {
    createRequire(import.meta.url)('@confluentinc/kafka-javascript');
    return true;
  } catch {
    return !!process.env.CI;
  }
}

describe.runIf(rdkafkaLoadable())('relay with kafka.client=rdkafka (librdkafka)', () => {
  const db = useFreshDatabase('rdkafka');

  it('delivers every event in commit order per key, to the partition kafkajs would choose, and confirms the end LSN', async () => {
    const setup = await setupOutbox(db(), { partitions: 3, extraArgs: ['--kafka-client', 'rdkafka', '--mapping-key', 'aggregate_id', '--delivery-batch-max-events', '500'] });
    const relay = startRelay(setup.args);
    await relay.waitForMessage('streaming from PostgreSQL');
    for (let t = 0; t < 20; t++) await insertEvents(db(), 100, { payload: (i) => JSON.stringify({ seq: t * 100 + i }) });
    const end = await currentWalLsn(db());
    await waitUntil('slot confirmed the last commit', async () => (await slotConfirmedLsn(db(), setup.slot)) >= end, 30_000, 100);

    const records = await readTopic(setup.topic, { expected: 2000 });
    expect(compareDelivery(await committedIds(db()), records.map((r) => r.headers.id ?? null))).toEqual({ missing: [], duplicates: 0, unexpected: 0 });
    const partition = Partitioners.DefaultPartitioner();
    const seqByKey = new Map<string, number[]>();
    for (const r of records) {
      const key = r.key!;
      expect(r.partition).toBe(partition({ topic: setup.topic, partitionMetadata: [0, 1, 2].map((p) => ({ partitionId: p, leader: 0, replicas: [0], isr: [0], partitionErrorCode: 0 })), message: { key, value: null } }));
      seqByKey.set(key, [...(seqByKey.get(key) ?? []), (JSON.parse(r.value!.toString()) as { seq: number }).seq]);
    }
    for (const seqs of seqByKey.values()) expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(records[0]!.headers).toMatchObject({ type: 'OrderPlaced', 'aggregate-type': 'order', 'outbox-lsn': expect.any(String), 'outbox-commit-time': expect.any(String) });
    expect(relay.logs.filter((l) => l.level === 'error' || l.level === 'warn')).toEqual([]);
    relay.signal('SIGTERM');
    expect(await relay.exited).toBe(0);
  });

  it('halts on a missing topic with TOPIC_NOT_FOUND, confirming nothing past the event', async () => {
    const setup = await setupOutbox(db(), { extraArgs: ['--kafka-client', 'rdkafka', '--topic', 'no-such-topic'] });
    const relay = startRelay(setup.args);
    await relay.waitForMessage('streaming from PostgreSQL');
    await insertEvents(db(), 1);
    const halted = await relay.waitForLog((l) => l.level === 'error', 30_000, 'halt');
    expect(halted.code).toBe('TOPIC_NOT_FOUND');
    // An idle relay may confirm a keepalive position between the poison INSERT and its commit (safe: the
    // transaction is still streamed again); it must never reach the poison's commit, nor move after the halt.
    const atHalt = await slotConfirmedLsn(db(), setup.slot);
    expect(atHalt < parseLsn(String(halted.lsn))).toBe(true);
    await new Promise((r) => setTimeout(r, 1000));
    expect(await slotConfirmedLsn(db(), setup.slot)).toBe(atHalt);
  });
});

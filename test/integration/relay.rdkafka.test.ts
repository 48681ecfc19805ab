import { join } from 'node:path';
import { Partitioners } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { repoRoot, waitUntil } from '../../stack/index.js';
import { committedIds, committedIdsWithEndLsn, compareDelivery, currentWalLsn, insertEvents, setupOutbox, slotConfirmedLsn } from '../support/outbox.js';
import { startRelay } from '../support/relay-process.js';
import { createTopic, readTopic, stack, uniqueName } from '../support/services.js';
import { useFreshDatabase } from '../support/database.js';

describe('relay with kafka.client=rdkafka (librdkafka, the default)', () => {
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

  it.each([
    ['at-least-once', []],
    ['exactly-once', ['--checkpoint-topic', uniqueName('checkpoints')]],
  ])('%s: halts on a missing topic with TOPIC_NOT_FOUND, confirming nothing past the event', async (guarantee, extra) => {
    const setup = await setupOutbox(db(), { extraArgs: ['--kafka-client', 'rdkafka', '--topic', 'no-such-topic', '--delivery-guarantee', guarantee, ...extra] });
    const relay = startRelay(setup.args);
    await relay.waitForMessage('streaming from PostgreSQL');
    const from = await currentWalLsn(db());
    const [poison] = await insertEvents(db(), 1);
    const halted = await relay.waitForLog((l) => l.level === 'error', 30_000, 'halt');
    // Both after retry.recordMaxAttempts (3); exactly-once halted at the first refusal before.
    expect(halted).toMatchObject({ code: 'TOPIC_NOT_FOUND', topic: 'no-such-topic', attempts: 3 });
    expect(String(halted.err)).toContain(poison!.id);
    // An idle relay may confirm a keepalive position between the poison INSERT and its commit (safe: the
    // transaction is still streamed again); it must never confirm the poison's transaction (its commit record's
    // end), nor move after the halt.
    const committed = await committedIdsWithEndLsn(db(), from);
    expect(committed.map((c) => c.id)).toEqual([poison!.id]);
    const atHalt = await slotConfirmedLsn(db(), setup.slot);
    expect(atHalt < committed[0]!.endLsn).toBe(true);
    await new Promise((r) => setTimeout(r, 1000));
    expect(await slotConfirmedLsn(db(), setup.slot)).toBe(atHalt);
  });

  it('exactly-once: a topic created while the relay retries the record Kafka refused for want of it takes the events, once, and nothing halts (before: a halt at the first refusal, until a restart)', async () => {
    const topic = uniqueName('late');
    const setup = await setupOutbox(db(), {
      extraArgs: ['--kafka-client', 'rdkafka', '--topic', topic, '--delivery-guarantee', 'exactly-once', '--checkpoint-topic', uniqueName('checkpoints'), '--retry-record-max-attempts', '20', '--retry-record-max-duration', '60s'],
    });
    const relay = startRelay(setup.args);
    await relay.waitForMessage('streaming from PostgreSQL');
    const sent = [...(await insertEvents(db(), 2)), ...(await insertEvents(db(), 1))];
    const end = await currentWalLsn(db());
    // Not the other guarantees' line: exactly-once has no poison policy to apply (until 2026-12-06 it said so).
    const retried = await relay.waitForMessage('Kafka rejected the record: retrying; exactly-once halts once the retries are spent');
    expect(retried).toMatchObject({ code: 'TOPIC_NOT_FOUND', eventId: sent[0]!.id });
    await createTopic(topic);
    await waitUntil('the slot to confirm the events', async () => (await slotConfirmedLsn(db(), setup.slot)) >= end, 60_000, 100);
    const records = await readTopic(topic, { expected: sent.length, settleMs: 1000, readCommitted: true });
    expect(records.map((r) => r.key)).toEqual(sent.map((e) => e.id));
    expect(relay.logs.filter((l) => l.level === 'error'), relay.dump()).toEqual([]);
    relay.signal('SIGTERM');
    expect(await relay.exited).toBe(0);
  });

  it('exits 2 at start when the native module cannot be loaded, naming kafka.client and both fixes', async () => {
    const relay = startRelay(['run', '--kafka-brokers', stack().brokers.join(',')], { NODE_OPTIONS: `--import ${join(repoRoot, 'test/support/hide-rdkafka.mjs')}` });
    expect(await relay.exited).toBe(2);
    // Before the logger exists the line goes to stderr, after it to the JSON log: either way it is one line.
    const stderr = [...relay.stderr, ...relay.logs.map((l) => JSON.stringify(l))].join('\n');
    expect(stderr).toContain('kafka.client rdkafka (the default) needs the native module of @confluentinc/kafka-javascript');
    expect(stderr).toContain('CKJS_LINKING=dynamic npm ci');
    expect(stderr).toContain('--kafka-client kafkajs');
  });
});

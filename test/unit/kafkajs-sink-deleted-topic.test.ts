import { createRequire } from 'node:module';
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { KafkaSettings } from '../../src/config/types.js';
import type { RelayError } from '../../src/errors.js';
import { KafkaSink } from '../../src/sink/kafka-sink.js';

const require = createRequire(import.meta.url);

/** kafkajs 2.2.4's Broker as far as the producer and the admin use it, over an in-memory cluster of one broker. */
const Broker = require('kafkajs/src/broker/index.js') as { prototype: Record<string, unknown> };
const { createErrorFromCode } = require('kafkajs/src/protocol/error.js') as { createErrorFromCode(code: number): Error };
const UNKNOWN_TOPIC_OR_PARTITION = 3;

/** The topics the fake broker has (deleting one is `topics.delete`), and what it wrote. */
const topics = new Set<string>();
const written: string[] = [];
/** Every Broker (one per connection kafkajs opened) that connected. */
const connections: { fakeConnected?: boolean }[] = [];
/** Set: a connect answers only once it resolves (a broker slow to answer). */
let connectGate: Promise<void> | undefined;
/** Set: a disconnect ends only once it resolves (kafkajs waits for a request in flight that the broker does not answer). */
let disconnectGate: Promise<void> | undefined;
const patched = ['connect', 'isConnected', 'disconnect', 'metadata', 'produce'] as const;
const originals = Object.fromEntries(patched.map((name) => [name, Broker.prototype[name]]));

function fakeBroker(): void {
  type Self = { fakeConnected?: boolean; versions?: unknown };
  Object.assign(Broker.prototype, {
    async connect(this: Self) {
      await connectGate;
      connections.push(this);
      this.fakeConnected = true;
      this.versions ??= {};
    },
    isConnected(this: Self) {
      return this.fakeConnected === true;
    },
    async disconnect(this: Self) {
      await disconnectGate;
      this.fakeConnected = false;
    },
    // As a broker answers a metadata request without auto-creation: an error for a topic it does not have.
    async metadata(asked: string[] = []) {
      const names = asked.length > 0 ? asked : [...topics];
      if (names.some((t) => !topics.has(t))) throw createErrorFromCode(UNKNOWN_TOPIC_OR_PARTITION);
      return {
        brokers: [{ nodeId: 0, host: 'localhost', port: 9092, rack: null }],
        controllerId: 0,
        clusterId: 'fake',
        topicMetadata: names.map((topic) => ({ topicErrorCode: 0, topic, isInternal: false, partitionMetadata: [{ partitionErrorCode: 0, partitionId: 0, leader: 0, replicas: [0], isr: [0], offlineReplicas: [] }] })),
      };
    },
    async produce({ topicData }: { topicData: { topic: string; partitions: { partition: number; messages: { key: Buffer }[] }[] }[] }) {
      if (topicData.some(({ topic }) => !topics.has(topic))) throw createErrorFromCode(UNKNOWN_TOPIC_OR_PARTITION);
      for (const { topic, partitions } of topicData) for (const p of partitions) for (const m of p.messages) written.push(`${topic}:${String(m.key)}`);
      return { topics: topicData.map(({ topic, partitions }) => ({ topicName: topic, partitions: partitions.map((p) => ({ partition: p.partition, errorCode: 0, baseOffset: '0', logAppendTime: '-1', logStartOffset: '0' })) })), throttleTime: 0 };
    },
  });
}

afterEach(() => {
  vi.useRealTimers();
  Object.assign(Broker.prototype, originals);
  topics.clear();
  written.length = 0;
  connections.length = 0;
  connectGate = undefined;
  disconnectGate = undefined;
});

const settings = { brokers: ['localhost:9092'], clientId: 'test', ssl: false, requestTimeoutMs: 1000, compression: 'none' } as unknown as KafkaSettings;
const record = (topic: string, key: string) => ({ topic, key, value: Buffer.from('{}'), headers: {} });

describe('KafkaSink (kafkajs) after a topic it produced to was deleted', () => {
  it('a topic deleted under the relay does not make Kafka refuse the records of the topics that still exist', async () => {
    fakeBroker();
    for (const t of ['orders', 'gone', 'gone.dlq']) topics.add(t);
    const sink = new KafkaSink(settings, pino({ level: 'silent' }));
    await sink.connect();
    await sink.send([record('orders', 'o1')]);
    await sink.send([record('gone', 'g1')]);
    topics.delete('gone');
    // The deleted topic's record is refused as missing: right, it meets the poison policy.
    await expect(sink.send([record('gone', 'g2')])).rejects.toMatchObject({ code: 'TOPIC_NOT_FOUND' });
    // Its dead letter goes to a topic that exists, and so do the next events of another topic.
    await sink.send([record('gone.dlq', 'g2')]);
    await sink.send([record('orders', 'o2')]);
    expect(written).toEqual(['orders:o1', 'gone:g1', 'gone.dlq:g2', 'orders:o2']);
    await sink.close({ flush: false });
  });

  it('a topic deleted while nothing more goes to it: once the producer refreshes its metadata, another topic\'s records are refused at most once, not until a restart', async () => {
    fakeBroker();
    for (const t of ['orders', 'gone']) topics.add(t);
    const sink = new KafkaSink(settings, pino({ level: 'silent' }));
    await sink.connect();
    await sink.send([record('gone', 'g1')]);
    await sink.send([record('orders', 'o1')]);
    topics.delete('gone');
    // kafkajs refreshes a producer's metadata (of every topic it ever produced to) after metadataMaxAge, 5 minutes.
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + 6 * 60_000);
    // The refresh finds the deleted topic missing: this request fails (the engine isolates its records and produces
    // them again), but the next ones go.
    await sink.send([record('orders', 'o2')]).catch(() => undefined);
    await sink.send([record('orders', 'o2')]);
    await sink.send([record('orders', 'o3')]);
    expect(written).toEqual(['gone:g1', 'orders:o1', 'orders:o2', 'orders:o3']);
    await sink.close({ flush: false });
  });
});

describe('KafkaSink (kafkajs) closed while it connects', () => {
  type Sink = InstanceType<typeof KafkaSink>;
  // kafkajs does not cancel a connect that a disconnect meets: the client came up after close(), its connections
  // open (keeping the process up) and nobody to close them, and a send went on to produce on it.
  it.each([
    ["the start's connect() (a stop abandons it and closes the sink)", async (_: Sink) => undefined, (sink: Sink) => sink.connect()],
    [
      'a send that replaces the producer (one that knew a deleted topic)',
      async (sink: Sink) => {
        await sink.connect();
        await sink.send([record('gone', 'g1')]);
        topics.delete('gone');
        await sink.send([record('gone', 'g2')]).catch(() => undefined);
      },
      (sink: Sink) => sink.send([record('orders', 'o1')]),
    ],
  ])('closed while %s connects: no connection is left open, and nothing is produced', async (_, before, start) => {
    fakeBroker();
    for (const t of ['orders', 'gone']) topics.add(t);
    const sink = new KafkaSink(settings, pino({ level: 'silent' }));
    await before(sink);
    written.length = 0;
    let answer!: () => void;
    connectGate = new Promise((resolve) => (answer = resolve));
    const started = start(sink).then(() => 'resolved', (err: RelayError) => ({ code: err.code, retriable: err.retriable }));
    await new Promise((resolve) => setImmediate(resolve));
    await sink.close();
    answer();
    expect(await started).toEqual({ code: 'KAFKA_UNAVAILABLE', retriable: false });
    expect(connections.filter((c) => c.fakeConnected)).toEqual([]);
    await expect(sink.send([record('orders', 'o2')])).rejects.toMatchObject({ code: 'KAFKA_UNAVAILABLE', retriable: false });
    expect(written).toEqual([]);
  });
});

describe('KafkaSink (kafkajs) closed with a flush at a stop', () => {
  it("a request the broker does not answer holds kafkajs' disconnect: the close ends at the stop's closeBy, not after its own 5 s bound", async () => {
    fakeBroker();
    topics.add('orders');
    const sink = new KafkaSink(settings, pino({ level: 'silent' }));
    await sink.connect();
    disconnectGate = new Promise(() => undefined);
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    let closed = false;
    void sink.close({ flush: true, closeBy: Date.now() + 1000 }).then(() => (closed = true));
    await vi.advanceTimersByTimeAsync(999);
    expect(closed).toBe(false);
    // Before: still closing until 5 s, past a watchdog 0.5 s after closeBy (exit 1, SHUTDOWN_TIMEOUT).
    await vi.advanceTimersByTimeAsync(1);
    expect(closed).toBe(true);
  });
});

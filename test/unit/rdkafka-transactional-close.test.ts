import pino from 'pino';
import { describe, expect, it, vi } from 'vitest';
import type { KafkaCheckpointStore } from '../../src/checkpoint/kafka-checkpoint-store.js';
import type { KafkaSettings } from '../../src/config/types.js';
import type { RelayError } from '../../src/errors.js';

/** An admin or producer of the KafkaJS-compatible layer: connected until either disconnect lets it go. */
class FakeClient {
  static made: FakeClient[] = [];
  /** Set: a connect answers only once it resolves (a broker slow to answer). */
  static connectGate: Promise<void> | undefined;
  connected = false;
  constructor() {
    FakeClient.made.push(this);
  }
  async connect() {
    await FakeClient.connectGate;
    this.connected = true;
  }
  async disconnect() {
    this.connected = false;
  }
  _getInternalClient() {
    return { disconnect: (_flushMs: number, cb: () => void) => void this.disconnect().then(cb) };
  }
}

vi.mock('../../src/sink/rdkafka-client.js', async (original) => ({
  ...(await original<typeof import('../../src/sink/rdkafka-client.js')>()),
  createRdKafkaClient: async () => ({ admin: () => new FakeClient(), producer: () => new FakeClient() }),
}));

const { RdKafkaTransactionalSink } = await import('../../src/sink/rdkafka-transactional-sink.js');
type Sink = InstanceType<typeof RdKafkaTransactionalSink>;

const settings = { brokers: ['b:9092'], clientId: 'test', requestTimeoutMs: 30_000, deliveryTimeoutMs: 30_000, compression: 'none', lingerMs: 1, batchSizeBytes: 1_000_000, producer: {} } as unknown as KafkaSettings;
const store = { topic: 'outbox-relay.checkpoints', ensureTopic: async () => undefined } as unknown as KafkaCheckpointStore;

describe('RdKafkaTransactionalSink closed while a client connects', () => {
  // close() found no client to close (it is stored only once connected), and the one connected after it was stored
  // and never closed: librdkafka's threads kept the process up, and the claim's producer held the transactional id.
  it.each([
    ["the start's connect() (its admin; a stop abandons it and closes the sink)", async (_: Sink) => undefined, (sink: Sink) => sink.connect()],
    ["a session's claim() (its producer)", (sink: Sink) => sink.connect(), (sink: Sink) => sink.claim()],
  ])('closed while %s connects: that client is disconnected, and the call refused', async (_, before, start) => {
    FakeClient.made = [];
    const sink = new RdKafkaTransactionalSink(settings, 's', 60_000, store, pino({ level: 'silent' }));
    await before(sink);
    let answer!: () => void;
    FakeClient.connectGate = new Promise((resolve) => (answer = resolve));
    try {
      const started = start(sink).then(() => 'resolved', (err: RelayError) => ({ code: err.code, retriable: err.retriable }));
      await new Promise((resolve) => setImmediate(resolve));
      await sink.close();
      answer();
      expect(await started).toEqual({ code: 'KAFKA_UNAVAILABLE', retriable: false });
      expect(FakeClient.made.filter((c) => c.connected)).toEqual([]);
    } finally {
      FakeClient.connectGate = undefined;
    }
  });
});

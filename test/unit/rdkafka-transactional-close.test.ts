import pino from 'pino';
import { describe, expect, it, vi } from 'vitest';
import type { KafkaCheckpointStore } from '../../src/checkpoint/kafka-checkpoint-store.js';
import type { KafkaSettings } from '../../src/config/types.js';
import type { RelayError } from '../../src/errors.js';

/**
 * An admin or producer of the KafkaJS-compatible layer: connected until either disconnect lets it go. As the layer's,
 * its abort() and disconnect() call the addon's with a fixed 5 s.
 */
class FakeClient {
  static made: FakeClient[] = [];
  /** Set: a connect answers only once it resolves (a broker slow to answer). */
  static connectGate: Promise<void> | undefined;
  connected = false;
  /** The time librdkafka was given for each abort of a transaction, and for each disconnect's flush. */
  readonly abortTimeouts: number[] = [];
  readonly flushTimeouts: number[] = [];
  constructor() {
    FakeClient.made.push(this);
  }
  async connect() {
    await FakeClient.connectGate;
    this.connected = true;
  }
  disconnect() {
    return new Promise<void>((resolve) => this._getInternalClient().disconnect(5000, resolve));
  }
  async fetchTopicMetadata() {
    return [];
  }
  async transaction() {
    return this;
  }
  async sendBatch() {
    return [];
  }
  abort() {
    return new Promise<void>((resolve) => this._getInternalClient().abortTransaction(5000, () => resolve()));
  }
  _getInternalClient() {
    return {
      disconnect: (flushMs: number, cb: () => void) => {
        this.flushTimeouts.push(flushMs);
        this.connected = false;
        cb();
      },
      abortTransaction: (timeoutMs: number, cb: (err: null) => void) => {
        this.abortTimeouts.push(timeoutMs);
        cb(null);
      },
    };
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

describe('RdKafkaTransactionalSink closed with a flush at a stop', () => {
  it("gives librdkafka until the stop's closeBy, when that comes before their own 5 s bound, to abort the open transaction and to flush", async () => {
    FakeClient.made = [];
    const sink = new RdKafkaTransactionalSink(settings, 's', 60_000, store, pino({ level: 'silent' }));
    await sink.connect();
    await sink.claim();
    const producer = FakeClient.made.at(-1)!;
    await sink.send([{ topic: 'orders', key: 'k', value: Buffer.from('v'), headers: {} }]);
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      await sink.close({ flush: true, closeBy: Date.now() + 1200 });
    } finally {
      vi.useRealTimers();
    }
    // Before: 5000 each (the KafkaJS layer's abort and disconnect), which a coordinator that does not answer takes
    // whole, past a watchdog 0.5 s after closeBy.
    expect({ abort: producer.abortTimeouts, flush: producer.flushTimeouts }).toEqual({ abort: [1200], flush: [1200] });
  });
});

describe("RdKafkaTransactionalSink closed while its admin's call is in flight", () => {
  // The binding's admin disconnect() is synchronous and takes the client's lock, which a call in flight holds until
  // librdkafka answers (metadata: up to 5 s): called then, it blocked the event loop, the watchdog's timer included,
  // past the stop's closeBy. The fake's disconnect notes each call made while one of the admin's calls was in flight.
  const sinkWithHangingMetadata = async () => {
    FakeClient.made = [];
    const sink = new RdKafkaTransactionalSink(settings, 's', 60_000, store, pino({ level: 'silent' }));
    await sink.connect();
    await sink.claim();
    const admin = FakeClient.made[0]!;
    let answer!: () => void;
    const blockedDisconnects: number[] = [];
    admin.fetchTopicMetadata = () => new Promise<[]>((resolve) => (answer = () => resolve([])));
    const disconnect = admin.disconnect.bind(admin);
    let inFlight = true;
    admin.disconnect = () => {
      if (inFlight) blockedDisconnects.push(Date.now());
      return disconnect();
    };
    const sent = sink.send([{ topic: 'orders', key: 'k', value: Buffer.from('v'), headers: {} }]).catch(() => undefined);
    await new Promise((resolve) => setImmediate(resolve));
    const settle = async () => {
      inFlight = false;
      answer();
      await sent;
    };
    return { sink, admin, blockedDisconnects, settle };
  };

  it('does not disconnect it while the call is in flight when the stop gave up on Kafka, and leaves it to the exit', async () => {
    const { sink, admin, blockedDisconnects, settle } = await sinkWithHangingMetadata();
    await sink.close({ flush: false });
    expect(blockedDisconnects).toEqual([]);
    expect(admin.connected).toBe(true);
    await settle();
  });

  it('disconnects it once the call answered within the stop\'s bound', async () => {
    const { sink, admin, blockedDisconnects, settle } = await sinkWithHangingMetadata();
    const closed = sink.close({ flush: true, closeBy: Date.now() + 60_000 });
    await new Promise((resolve) => setTimeout(resolve, 20));
    await settle();
    await closed;
    expect(blockedDisconnects).toEqual([]);
    expect(admin.connected).toBe(false);
  });
});

import pino from 'pino';
import { describe, expect, it, vi } from 'vitest';
import type { KafkaSettings } from '../../src/config/types.js';
import type { RelayError } from '../../src/errors.js';
import type { SinkRecord } from '../../src/sink/sink.js';

/**
 * librdkafka's native producer as far as RdKafkaSink uses it. disconnect() behaves as the binding's does
 * (lib/producer.js: flush, then lib/client.js Client.prototype.disconnect): a disconnect called while another is
 * under way never calls its callback (`if (!this._isDisconnecting && this._client)`).
 */
class FakeNativeProducer {
  static made: FakeNativeProducer[] = [];
  readonly listeners = new Map<string, ((...args: unknown[]) => void)[]>();
  readonly produced: { opaque: number }[] = [];
  private disconnecting = false;
  disconnects = 0;
  constructor() {
    FakeNativeProducer.made.push(this);
  }
  on(event: string, fn: (...args: unknown[]) => void) {
    this.listeners.set(event, [...(this.listeners.get(event) ?? []), fn]);
    return this;
  }
  emit(event: string, ...args: unknown[]) {
    for (const fn of this.listeners.get(event) ?? []) fn(...args);
  }
  connect(_opts: unknown, cb: (err: unknown) => void) {
    setImmediate(() => cb(null));
  }
  setPollInBackground() {}
  produce(_topic: string, _p: null, _v: Buffer | null, _k: unknown, _t: unknown, opaque: number) {
    this.produced.push({ opaque });
    return true;
  }
  disconnect(_timeout: number, cb: () => void) {
    this.disconnects++;
    // flush(), then the client's disconnect
    setImmediate(() => {
      if (this.disconnecting) return;
      this.disconnecting = true;
      setTimeout(cb, 5);
    });
  }
}

vi.mock('../../src/sink/rdkafka-client.js', async (original) => ({
  ...(await original<typeof import('../../src/sink/rdkafka-client.js')>()),
  createRdKafkaClient: async () => ({
    admin: () => ({ connect: async () => undefined, disconnect: async () => undefined, fetchTopicMetadata: async () => ({ topics: [] }) }),
  }),
  loadRdKafka: async () => ({ Producer: FakeNativeProducer, CODES: { ERRORS: { ERR__FATAL: -150 } } }),
}));

const { RdKafkaSink } = await import('../../src/sink/rdkafka-sink.js');

const settings = { brokers: ['b:9092'], clientId: 'test', requestTimeoutMs: 30_000, deliveryTimeoutMs: 30_000, compression: 'none', lingerMs: 1, batchSizeBytes: 1_000_000, producer: {} } as unknown as KafkaSettings;
const record = (i: number): SinkRecord => ({ topic: 'orders', key: `k${i}`, value: Buffer.from(`${i}`), headers: {} });
const tick = () => new Promise((resolve) => setTimeout(resolve, 20));

describe('RdKafkaSink: a fatal producer error with several sends in flight', () => {
  it('every send settles, and the producer is disconnected once', async () => {
    FakeNativeProducer.made = [];
    const sink = await RdKafkaSink.create(settings, pino({ level: 'silent' }));
    await sink.connect();
    const outcomes: (string | RelayError)[] = ['pending', 'pending'];
    const sends = [sink.send([record(0)]), sink.send([record(1)])];
    sends.forEach((s, i) => s.then(() => (outcomes[i] = 'resolved'), (err: RelayError) => (outcomes[i] = err)));
    await tick();
    const producer = FakeNativeProducer.made[0]!;
    expect(producer.produced).toHaveLength(2);
    // The idempotent producer hit a fatal error: the error event, then every queued record fails with it.
    const fatal = Object.assign(new Error('Local: Fatal error'), { code: -150, isFatal: true });
    producer.emit('event.error', fatal);
    for (const { opaque } of producer.produced) producer.emit('delivery-report', fatal, { opaque });
    for (let i = 0; i < 10 && outcomes.includes('pending'); i++) await tick();
    expect(outcomes.map((o) => (typeof o === 'string' ? o : o.code))).toEqual(['KAFKA_UNAVAILABLE', 'KAFKA_UNAVAILABLE']);
    expect(producer.disconnects).toBe(1);
    // The retry gets a new producer.
    const retry = sink.send([record(0)]);
    await tick();
    const next = FakeNativeProducer.made[1]!;
    expect(next).toBeDefined();
    next.emit('delivery-report', null, { opaque: next.produced[0]!.opaque });
    await retry;
    await sink.close();
  });
});

describe('RdKafkaSink after close()', () => {
  // A dead letter still retrying when the relay stops (run.ts closes the sink, DeadLetters' loop goes on until
  // retry.maxDuration) sent through a closed sink: it opened a new native producer nobody closes, whose send
  // never settles while Kafka is down (no message timeout) and which keeps the process from exiting.
  it('refuses a send instead of opening a new producer', async () => {
    FakeNativeProducer.made = [];
    const sink = await RdKafkaSink.create(settings, pino({ level: 'silent' }));
    await sink.connect();
    await sink.close();
    const error = await Promise.race([sink.send([record(0)]).then(() => 'resolved', (err: RelayError) => err), tick().then(() => 'pending')]);
    expect(FakeNativeProducer.made).toHaveLength(1);
    expect(typeof error === 'string' ? error : { code: error.code, retriable: error.retriable }).toEqual({ code: 'KAFKA_UNAVAILABLE', retriable: false });
  });
});

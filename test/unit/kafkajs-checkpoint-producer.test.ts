import type { Kafka } from 'kafkajs';
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CheckpointWriter } from '../../src/checkpoint/checkpoint-writer.js';
import { KafkaCheckpointStore } from '../../src/checkpoint/kafka-checkpoint-store.js';
import { KafkaJsCheckpointClient } from '../../src/checkpoint/kafkajs-checkpoint-client.js';
import type { RelayError } from '../../src/errors.js';

/**
 * kafkajs 2.2.4's producer as far as the checkpoint client uses it: a connect that a disconnect meets is not
 * cancelled, and once it ends the producer is connected (producer/index.js); the disconnect waits for the requests
 * in flight (network/connection.js), which a broker that stopped answering (`frozen`) never answers.
 */
class FakeKafkaJsProducer {
  connected = false;
  disconnectCalled = false;
  readonly sent: string[] = [];
  frozen = false;
  /** Set: a connect answers only once it resolves (a broker slow to answer). */
  connectGate: Promise<void> | undefined;
  private readonly inFlight: Promise<void>[] = [];
  async connect() {
    await this.connectGate;
    this.connected = true;
  }
  async send({ messages }: { messages: { key: string }[] }) {
    if (!this.connected) throw new Error('The producer is disconnected');
    if (this.frozen) {
      const request = new Promise<void>(() => undefined);
      this.inFlight.push(request);
      await request;
    }
    this.sent.push(messages[0]!.key);
  }
  async disconnect() {
    this.disconnectCalled = true;
    await Promise.all(this.inFlight);
    this.connected = false;
  }
}

function fakeKafka(producer: FakeKafkaJsProducer): Kafka {
  const admin = { connect: async () => undefined, disconnect: async () => undefined, listTopics: async () => ['checkpoints'] };
  return { admin: () => admin, producer: () => producer } as unknown as Kafka;
}

afterEach(() => {
  vi.useRealTimers();
});

describe('kafkajs checkpoint producer closed while it connects', () => {
  it('the producer, connected after close(), is disconnected and writes nothing', async () => {
    const producer = new FakeKafkaJsProducer();
    let answer!: () => void;
    producer.connectGate = new Promise((resolve) => (answer = resolve));
    const checkpoints = new KafkaJsCheckpointClient(fakeKafka(producer)).producer();
    const sending = checkpoints.send('checkpoints', { key: 'slot_a', value: Buffer.from('{}') }).then(
      () => 'written',
      (err: RelayError) => err.code,
    );
    await new Promise((resolve) => setImmediate(resolve));
    await checkpoints.close();
    answer();
    // Before: connected once its connect ended, with nobody to close it, and the checkpoint written after close().
    expect(await sending).toBe('KAFKA_UNAVAILABLE');
    expect({ connected: producer.connected, sent: producer.sent }).toEqual({ connected: false, sent: [] });
  });
});

describe('checkpoint writer through kafkajs, every broker frozen at a stop with nothing in flight', () => {
  it("the close does not wait for the producer's disconnect, which waits for the last write the stop gave up on", async () => {
    vi.useFakeTimers();
    const producer = new FakeKafkaJsProducer();
    const lines: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => void lines.push((JSON.parse(line) as { msg: string }).msg) });
    const writer = new CheckpointWriter(new KafkaCheckpointStore(new KafkaJsCheckpointClient(fakeKafka(producer)), 'checkpoints', ['k:9092']), 'slot_a', 'at-least-once', 1000, logger);
    writer.confirmed(100n, 1);
    await writer.flush();
    producer.frozen = true;
    writer.confirmed(300n, 3);
    const drainEnded = writer.drainEnded(true, Date.now() + 10_000);
    await vi.runAllTimersAsync();
    await drainEnded;
    let closed = false;
    const closing = writer.close().then(() => (closed = true));
    // No timer runs: the close ends without one. Before, it waited for the disconnect until its bound (up to the
    // stop's closeBy), then the command waited 2 s for the frozen connection: past the watchdog.
    await vi.advanceTimersByTimeAsync(0);
    expect(closed).toBe(true);
    await closing;
    expect(producer.disconnectCalled).toBe(true);
    expect(lines).toEqual([expect.stringMatching(/^the last checkpoint was not written/)]);
  });
});

describe('kafkajs checkpoint producer: a refused write', () => {
  it("rejects with kafkajs' error type classified (TOPIC_AUTHORIZATION_FAILED as KAFKA_AUTH), for the writer's code and fix", async () => {
    const producer = new FakeKafkaJsProducer();
    producer.send = async () => {
      throw Object.assign(new Error('Not authorized to access topics: [Topic authorization failed]'), { name: 'KafkaJSProtocolError', type: 'TOPIC_AUTHORIZATION_FAILED', code: 29 });
    };
    const checkpoints = new KafkaJsCheckpointClient(fakeKafka(producer)).producer();
    await expect(checkpoints.send('checkpoints', { key: 'slot_a', value: Buffer.from('{}') })).rejects.toMatchObject({ code: 'KAFKA_AUTH', details: { kafkaError: 'TOPIC_AUTHORIZATION_FAILED' } });
    await checkpoints.close();
  });
});

import { EventEmitter } from 'node:events';
import pino from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { KafkaCheckpointStore } from '../../src/checkpoint/kafka-checkpoint-store.js';
import type { KafkaSettings } from '../../src/config/types.js';

/**
 * The KafkaJS-compatible producer of @confluentinc/kafka-javascript as far as the checkpoint client uses it. Once
 * librdkafka raised a fatal error on an idempotent producer, every later produce fails with ERR__FATAL (-150),
 * which send() rejects with (lib/kafkajs/_producer.js keeps the code).
 */
class FakeProducer {
  static made: FakeProducer[] = [];
  readonly sent: string[] = [];
  fatal = false;
  disconnects = 0;
  constructor() {
    FakeProducer.made.push(this);
  }
  async connect() {}
  async send({ messages }: { messages: { key: string }[] }) {
    if (this.fatal) throw Object.assign(new Error('Local: Fatal error'), { code: -150 });
    this.sent.push(messages[0]!.key);
  }
  async disconnect() {
    this.disconnects++;
  }
  /** The addon's producer under the KafkaJS layer: its disconnect takes the flush time; its error events (the layer only logs them). */
  closeFlushMs: number | undefined;
  readonly internal = Object.assign(new EventEmitter(), {
    disconnect: (flushMs: number, cb: () => void) => {
      this.disconnects++;
      this.closeFlushMs = flushMs;
      cb();
    },
  });
  _getInternalClient() {
    return this.internal;
  }
}

vi.mock('../../src/sink/rdkafka-client.js', async (original) => ({
  ...(await original<typeof import('../../src/sink/rdkafka-client.js')>()),
  createRdKafkaClient: async () => ({ producer: () => new FakeProducer() }),
}));

const { RdKafkaCheckpointClient } = await import('../../src/checkpoint/rdkafka-checkpoint-client.js');

const settings = { brokers: ['b:9092'], clientId: 'test', requestTimeoutMs: 30_000, deliveryTimeoutMs: 30_000, compression: 'none', lingerMs: 1, batchSizeBytes: 1_000_000, producer: {} } as unknown as KafkaSettings;
const record = (key: string) => ({ key, value: Buffer.from('{}') });

describe('rdkafka checkpoint producer after a fatal error', () => {
  it('the next write opens a new producer, and the broken one is disconnected', async () => {
    FakeProducer.made = [];
    const producer = new RdKafkaCheckpointClient(settings, pino({ level: 'silent' })).producer();
    await producer.send('checkpoints', record('first'));
    FakeProducer.made[0]!.fatal = true;
    await expect(producer.send('checkpoints', record('refused'))).rejects.toMatchObject({ code: 'KAFKA_UNAVAILABLE', details: { kafkaError: -150 } });
    // The writer's next interval: written, instead of failing with the same fatal error until a restart.
    await producer.send('checkpoints', record('again'));
    expect(FakeProducer.made).toHaveLength(2);
    expect(FakeProducer.made[0]!.disconnects).toBe(1);
    expect(FakeProducer.made[1]!.sent).toEqual(['again']);
    await producer.close();
    expect(FakeProducer.made[1]!.disconnects).toBe(1);
    // Closed without a flush: what is still queued then the writer gave up on (the KafkaJS layer would flush it 5 s).
    expect(FakeProducer.made[1]!.closeFlushMs).toBe(0);
  });

  it('keeps the producer through an error that is not fatal', async () => {
    FakeProducer.made = [];
    const producer = new RdKafkaCheckpointClient(settings, pino({ level: 'silent' })).producer();
    await producer.send('checkpoints', record('first'));
    const only = FakeProducer.made[0]!;
    only.send = async () => {
      throw Object.assign(new Error('Local: Message timed out'), { code: -192 });
    };
    await expect(producer.send('checkpoints', record('timed out'))).rejects.toMatchObject({ code: 'KAFKA_UNAVAILABLE', details: { kafkaError: -192 } });
    expect(FakeProducer.made).toHaveLength(1);
    expect(only.disconnects).toBe(0);
    await producer.close();
  });
});

describe('rdkafka checkpoint producer: a refused write', () => {
  it("rejects with librdkafka's code classified (TOPIC_AUTHORIZATION_FAILED as KAFKA_AUTH), for the writer's code and fix", async () => {
    FakeProducer.made = [];
    const producer = new RdKafkaCheckpointClient(settings, pino({ level: 'silent' })).producer();
    await producer.send('checkpoints', record('first'));
    FakeProducer.made[0]!.send = async () => {
      throw Object.assign(new Error('Broker: Topic authorization failed'), { code: 29 });
    };
    await expect(producer.send('checkpoints', record('refused'))).rejects.toMatchObject({ code: 'KAFKA_AUTH', details: { kafkaError: 29 } });
    await producer.close();
  });
});

describe('rdkafka checkpoint producer: a producer id refused', () => {
  it("names the grant (IdempotentWrite on the cluster, or WRITE on the checkpoint topic) from the producer's fatal error, not 'check the brokers'", async () => {
    FakeProducer.made = [];
    const client = new RdKafkaCheckpointClient(settings, pino({ level: 'silent' }));
    const producer = client.producer();
    await producer.send('checkpoints', record('first'));
    const refused = FakeProducer.made[0]!;
    // InitProducerId refused: librdkafka's fatal error event (the patched addon's says why), and the write's record
    // fails as purged, after or before that event.
    refused.send = async () => {
      setTimeout(() => refused.internal.emit('event.error', Object.assign(new Error('Broker: Cluster authorization failed'), { code: 31, isFatal: true })), 10);
      throw Object.assign(new Error('Local: Purged in queue'), { code: -152 });
    };
    const error = await producer.send('checkpoints', record('refused')).catch((err: unknown) => err);
    expect(error).toMatchObject({ code: 'KAFKA_AUTH', details: { kafkaError: 31 } });
    const line = new KafkaCheckpointStore(client, 'checkpoints', ['k:9092']).writeFailure(error);
    expect(line.code).toBe('CHECKPOINT_FAILED');
    expect(line.hint).toContain('IdempotentWrite on the cluster');
    expect(line.hint).toContain('WRITE and DESCRIBE on the topic checkpoints');
    // The producer is dead: the next write opens a new one.
    expect(refused.disconnects).toBe(1);
    await producer.send('checkpoints', record('again'));
    expect(FakeProducer.made[1]!.sent).toEqual(['again']);
    await producer.close();
  });
});

import type { Kafka } from 'kafkajs';
import pino from 'pino';
import { describe, expect, it, vi } from 'vitest';
import type { KafkaSettings } from '../../src/config/types.js';
import { KafkaCheckpointStore } from '../../src/checkpoint/kafka-checkpoint-store.js';
import { KafkaJsCheckpointClient } from '../../src/checkpoint/kafkajs-checkpoint-client.js';

/**
 * A principal without CREATE on a checkpoint topic created by hand (docs/security.md: CREATE "only if you do not
 * create it"). Kafka checks CREATE before it looks whether the topic exists (KafkaApis/ControllerApis
 * createTopics): the answer is TOPIC_AUTHORIZATION_FAILED (29), not TOPIC_ALREADY_EXISTS.
 */
const denied = () => Object.assign(new Error('Not authorized to access topics: [Topic authorization failed]'), { type: 'TOPIC_AUTHORIZATION_FAILED', code: 29, retriable: false });

class FakeAdmin {
  creates = 0;
  constructor(private readonly topics: string[]) {}
  async connect() {}
  async disconnect() {}
  async listTopics() {
    return this.topics;
  }
  async createTopics() {
    this.creates++;
    throw denied();
  }
  async fetchTopicMetadata() {
    return { topics: [{ name: 'checkpoints', partitions: [{ partitionId: 0, leader: 1 }] }] };
  }
}

let rdAdmin: FakeAdmin;
vi.mock('../../src/sink/rdkafka-client.js', async (original) => ({
  ...(await original<typeof import('../../src/sink/rdkafka-client.js')>()),
  createRdKafkaClient: async () => ({ admin: () => rdAdmin }),
}));
const { RdKafkaCheckpointClient } = await import('../../src/checkpoint/rdkafka-checkpoint-client.js');

const settings = { brokers: ['b:9092'], clientId: 'test', requestTimeoutMs: 30_000, deliveryTimeoutMs: 30_000, producer: {} } as unknown as KafkaSettings;

describe('checkpoint topic created by hand, relay without CREATE', () => {
  it('kafkajs: the existing topic is used, not refused with the authorization failure', async () => {
    const admin = new FakeAdmin(['checkpoints']);
    const store = new KafkaCheckpointStore(new KafkaJsCheckpointClient({ admin: () => admin } as unknown as Kafka), 'checkpoints', ['k:9092']);
    await expect(store.ensureTopic()).resolves.toBeUndefined();
  });

  it('rdkafka: the existing topic is used, not refused with the authorization failure', async () => {
    rdAdmin = new FakeAdmin(['checkpoints']);
    const store = new KafkaCheckpointStore(new RdKafkaCheckpointClient(settings, pino({ level: 'silent' })), 'checkpoints', ['k:9092']);
    await expect(store.ensureTopic()).resolves.toBeUndefined();
  });

  it('a missing topic without CREATE is still refused with the fix', async () => {
    const admin = new FakeAdmin([]);
    const store = new KafkaCheckpointStore(new KafkaJsCheckpointClient({ admin: () => admin } as unknown as Kafka), 'checkpoints', ['k:9092']);
    await expect(store.ensureTopic()).rejects.toMatchObject({ code: 'CHECKPOINT_FAILED', hint: expect.stringContaining('grant the relay CREATE') });
    rdAdmin = new FakeAdmin([]);
    const rd = new KafkaCheckpointStore(new RdKafkaCheckpointClient(settings, pino({ level: 'silent' })), 'checkpoints', ['k:9092']);
    await expect(rd.ensureTopic()).rejects.toMatchObject({ code: 'CHECKPOINT_FAILED' });
  });
});

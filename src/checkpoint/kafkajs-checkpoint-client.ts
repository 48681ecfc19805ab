import { randomBytes } from 'node:crypto';
import type { Kafka, Producer } from 'kafkajs';
import { closedError, refuseIfClosed } from '../sink/closed-client.js';
import { classifyKafkaError } from '../sink/kafka-errors.js';
import type { CheckpointClient, CheckpointProducer, CheckpointRecord, TopicSpec } from './checkpoint-client.js';
import { ReadTimeout } from './checkpoint-client.js';

/**
 * The checkpoint topic through kafkajs (kafka.client kafkajs). kafkajs has no consumer without a group, so the
 * read joins a throw-away group (unique id, nothing committed): the principal needs READ on the group prefix
 * (docs/security.md); the librdkafka client reads without joining one.
 */
export class KafkaJsCheckpointClient implements CheckpointClient {
  constructor(private readonly kafka: Kafka) {}

  async createTopic(spec: TopicSpec): Promise<void> {
    const admin = this.kafka.admin();
    try {
      await admin.connect();
      // Kafka checks CREATE before whether the topic exists: a principal without it, given a topic created by hand
      // (docs/security.md), got TOPIC_AUTHORIZATION_FAILED at every attempt and never wrote a checkpoint.
      if ((await admin.listTopics()).includes(spec.topic)) return;
      const configEntries = Object.entries(spec.config).map(([name, value]) => ({ name, value }));
      await admin.createTopics({ topics: [{ topic: spec.topic, numPartitions: spec.partitions, configEntries }], waitForLeaders: true });
    } finally {
      await admin.disconnect();
    }
  }

  async readAll(topic: string, onRecord: (record: { key: string | undefined; value: Buffer | null; partition: number }) => void, timeoutMs: number): Promise<boolean> {
    const remaining = await this.lastOffsets(topic);
    if (remaining === undefined) return false;
    if (remaining.size === 0) return true;
    const consumer = this.kafka.consumer({ groupId: `outbox-relay-checkpoint-reader-${randomBytes(6).toString('hex')}`, readUncommitted: false, maxWaitTimeInMs: 100 });
    let reachedEnd!: () => void;
    const done = new Promise<void>((resolve) => (reachedEnd = resolve));
    // Transaction markers are never handed to eachMessage, so the end is recognised from the batches' last offsets.
    // kafkajs' admin asks ListOffsets read_committed (it sends no isolation level, and the request defaults to it):
    // its end is the last stable offset, below another producer's open transaction (an exactly-once relay of another
    // slot sharing the topic) and below every record written after that transaction began, this slot's newest
    // checkpoint included. A fetch's high watermark is the true end: the first one of each partition, taken after
    // the read began, is the end to reach (later ones would chase records written during the read).
    const raised = new Set<number>();
    consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
      let last = remaining.get(payload.partition);
      if (last !== undefined && !raised.has(payload.partition)) {
        raised.add(payload.partition);
        const highWatermark = BigInt(payload.highWatermark) - 1n;
        if (highWatermark > last) remaining.set(payload.partition, (last = highWatermark));
      }
      if (last !== undefined && BigInt(payload.lastOffset) >= last) remaining.delete(payload.partition);
      if (remaining.size === 0) reachedEnd();
    });
    // kafkajs reports a consumer that gave up (a group or topic ACL refused, say) only as this event, never as a
    // rejection of run(): the read would wait out its timeout and blame an open transaction instead of the cause.
    let crash: Error | undefined;
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      if (payload.restart) return;
      crash = payload.error;
      reachedEnd();
    });
    let timer: NodeJS.Timeout | undefined;
    try {
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      await consumer.run({ autoCommit: false, eachMessage: async ({ message, partition }) => onRecord({ key: message.key?.toString(), value: message.value, partition }) });
      const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), timeoutMs)));
      if (await Promise.race([done.then(() => false), timedOut])) throw new ReadTimeout();
      if (crash) throw crash;
      return true;
    } finally {
      clearTimeout(timer);
      await consumer.disconnect();
    }
  }

  /** Last offset per non-empty partition; undefined when the topic does not exist. */
  private async lastOffsets(topic: string): Promise<Map<number, bigint> | undefined> {
    const admin = this.kafka.admin();
    try {
      await admin.connect();
      if (!(await admin.listTopics()).includes(topic)) return undefined;
      const offsets = await admin.fetchTopicOffsets(topic);
      return new Map(offsets.filter((o) => BigInt(o.high) > BigInt(o.low)).map((o) => [o.partition, BigInt(o.high) - 1n]));
    } finally {
      await admin.disconnect();
    }
  }

  producer(): CheckpointProducer {
    // No produce retries inside kafkajs (see kafka-sink.ts): a failed write is retried by the writer's next interval.
    const producer: Producer = this.kafka.producer({ idempotent: false, retry: { retries: 0 }, allowAutoTopicCreation: false });
    let connected: Promise<void> | undefined;
    let closed = false;
    const send = async (topic: string, record: CheckpointRecord): Promise<void> => {
      if (closed) throw closedError();
      connected ??= producer
        .connect()
        .then(() => refuseIfClosed(closed, () => producer.disconnect()))
        .catch((err: unknown) => {
          connected = undefined;
          throw err;
        });
      await connected;
      await producer.send({ topic, messages: [record], acks: -1 });
    };
    return {
      // Classified here, where kafkajs' error types are known: the writer names the code and the fix (store.writeFailure).
      send: (topic, record) =>
        send(topic, record).catch((err: unknown) => {
          throw classifyKafkaError(err);
        }),
      close: () => {
        closed = true;
        return producer.disconnect();
      },
    };
  }
}

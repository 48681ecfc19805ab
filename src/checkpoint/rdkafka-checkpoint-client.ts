import type { KafkaJS, KafkaConsumer, Message } from '@confluentinc/kafka-javascript';
import type { Logger } from 'pino';
import type { KafkaSettings } from '../config/types.js';
import { backoffDelay, sleep } from '../retry.js';
import { connectionProperties, connectNative, createRdKafkaClient, disconnectKafkaJsProducer, loadRdKafka, producerProperties, watchFatalErrors } from '../sink/rdkafka-client.js';
import type { FatalErrorWatch } from '../sink/fatal-error-watch.js';
import { BrokerConnectFailures } from '../sink/broker-connect-failures.js';
import { classifyRdKafkaError, failedWithoutCause, isFatalRdKafkaError, isUnknownTopic, lostProducerError } from '../sink/rdkafka-errors.js';
import type { CheckpointClient, CheckpointProducer, CheckpointRecord, TopicSpec } from './checkpoint-client.js';
import { ReadTimeout } from './checkpoint-client.js';

/** librdkafka's "from the beginning" offset (RD_KAFKA_OFFSET_BEGINNING). */
const OFFSET_BEGINNING = -2;

/**
 * How long a topic just created may stay unknown to the broker answering the metadata request: CreateTopics
 * returns once the controller committed it, and brokers learn it from the metadata log after that (a first
 * checkpoint write on a fresh broker got UNKNOWN_TOPIC_OR_PART, logged a warning and waited for the next interval).
 */
const NEW_TOPIC_VISIBLE = { initialDelayMs: 50, maxDelayMs: 1000, withinMs: 10_000 };

/** Runs `describe` until the topic is no longer unknown, with backoff, for at most NEW_TOPIC_VISIBLE.withinMs. */
async function untilKnown<T>(describe: () => Promise<T>): Promise<T> {
  const giveUpAt = Date.now() + NEW_TOPIC_VISIBLE.withinMs;
  for (let attempt = 0; ; attempt++) {
    try {
      return await describe();
    } catch (err) {
      if (!isUnknownTopic(err) || Date.now() >= giveUpAt) throw err;
    }
    await sleep(backoffDelay(NEW_TOPIC_VISIBLE, attempt));
  }
}

/**
 * The checkpoint topic through librdkafka. The read assigns the partitions itself (no subscribe, so no consumer
 * group is joined or created) and stops at each partition's end, which read_committed puts at the last stable
 * offset, once that end has passed what was written when the read began: an open transaction holds it back
 * until it ends.
 */
export class RdKafkaCheckpointClient implements CheckpointClient {
  private client: Promise<KafkaJS.Kafka> | undefined;
  /** Why its client could not connect, where librdkafka logged it (a connect error says only "transport failure"). */
  private readonly failures: BrokerConnectFailures;

  constructor(
    private readonly config: KafkaSettings,
    private readonly logger: Logger,
  ) {
    this.failures = new BrokerConnectFailures(config.brokers);
  }

  private kafka(): Promise<KafkaJS.Kafka> {
    this.client ??= createRdKafkaClient(this.config, this.logger, '-checkpoint', this.failures);
    return this.client;
  }

  private async withAdmin<T>(use: (admin: KafkaJS.Admin) => Promise<T>): Promise<T> {
    const admin = (await this.kafka()).admin();
    return this.failures.during(async () => {
      await admin.connect();
      try {
        return await use(admin);
      } finally {
        // The answer (or the request's error) is what counts; a failing disconnect of a one-off admin changes nothing.
        await admin.disconnect().catch(() => undefined);
      }
    });
  }

  createTopic(spec: TopicSpec): Promise<void> {
    return this.withAdmin(async (admin) => {
      // Kafka checks CREATE before whether the topic exists: a principal without it, given a topic created by hand
      // (docs/security.md), got TOPIC_AUTHORIZATION_FAILED at every attempt and never wrote a checkpoint.
      if ((await admin.listTopics()).includes(spec.topic)) return;
      const configEntries = Object.entries(spec.config).map(([name, value]) => ({ name, value }));
      try {
        await admin.createTopics({ topics: [{ topic: spec.topic, numPartitions: spec.partitions, configEntries }] });
      } catch (err) {
        // TOPIC_ALREADY_EXISTS (36): kafkajs' createTopics answers false there, librdkafka's rejects.
        if ((err as { code?: number; errors?: { code?: number }[] }).code !== 36 && !(err as { errors?: { code?: number }[] }).errors?.every((e) => e.code === 36)) throw err;
      }
      // createTopics returns before the partition has a leader; a metadata request with one answers after it.
      await untilKnown(() => admin.fetchTopicMetadata({ topics: [spec.topic] }));
    });
  }

  async readAll(topic: string, onRecord: (record: { key: string | undefined; value: Buffer | null; partition: number }) => void, timeoutMs: number): Promise<boolean> {
    // One admin client asks both (does the topic exist, then its ends), as kafkajs's read does.
    // Each partition's high watermark now (read_uncommitted, the default): everything written so far, a
    // transaction whose commit markers are still on their way included. read_committed ends at the last stable
    // offset, which such a transaction holds back: a read that stopped there would miss a checkpoint already
    // committed (after a partition leader change the markers can take seconds), and exactly-once would stream
    // that transaction's events again. So a partition is read only once its end has passed this mark.
    const offsets = await this.withAdmin(async (admin) => ((await admin.listTopics()).includes(topic) ? admin.fetchTopicOffsets(topic) : undefined));
    if (offsets === undefined) return false;
    // Empty partitions (a new topic, or everything compacted away) have nothing to wait for.
    const ends = offsets.filter((e) => Number(e.high) > Number(e.low));
    if (ends.length === 0) return true;
    const partitions = ends.map((e) => e.partition);
    const highWatermark = new Map(ends.map((e) => [e.partition, Number(e.high)]));
    const { KafkaConsumer: Consumer } = await loadRdKafka();
    const consumer: KafkaConsumer = new Consumer(
      {
        ...connectionProperties(this.config, '-checkpoint-reader'),
        // librdkafka wants a group id for a consumer handle; with assign() and no commits, no group is ever joined,
        // but it still looks up the group's coordinator, so the principal needs DESCRIBE on it (docs/security.md).
        'group.id': 'outbox-relay-checkpoint-reader',
        'enable.auto.commit': false,
        'enable.auto.offset.store': false,
        'enable.partition.eof': true,
        'isolation.level': 'read_committed',
        // The end of a partition is known only from a fetch that returns nothing new, which the broker holds for
        // up to this long (librdkafka's default 500 ms): every start of the relay paid it.
        'fetch.wait.max.ms': 10,
      },
      { 'auto.offset.reset': 'earliest' },
    );
    const connectError = await connectNative(consumer, timeoutMs).result;
    if (connectError) throw connectError;
    const remaining = new Set(partitions);
    consumer.on('partition.eof', (eof) => {
      if (eof.offset >= highWatermark.get(eof.partition)!) remaining.delete(eof.partition);
    });
    const deadline = Date.now() + timeoutMs;
    try {
      consumer.assign(partitions.map((partition) => ({ topic, partition, offset: OFFSET_BEGINNING })));
      consumer.setDefaultConsumeTimeout(100);
      while (remaining.size > 0) {
        if (Date.now() > deadline) throw new ReadTimeout();
        const messages = await new Promise<Message[]>((resolve, reject) => consumer.consume(500, (err, batch) => (err ? reject(err) : resolve(batch))));
        for (const m of messages) onRecord({ key: m.key?.toString(), value: m.value, partition: m.partition });
      }
      return true;
    } finally {
      await new Promise<void>((resolve) => consumer.disconnect(() => resolve()));
    }
  }

  producer(): CheckpointProducer {
    let producer: Promise<{ producer: KafkaJS.Producer; fatal: FatalErrorWatch }> | undefined;
    const connect = async () => {
      const p = (await this.kafka()).producer(producerProperties(this.config, '-checkpoint') as KafkaJS.ProducerConstructorConfig);
      await p.connect();
      return { producer: p, fatal: watchFatalErrors(p) };
    };
    const send = async (topic: string, record: CheckpointRecord): Promise<void> => {
      const current = (producer ??= connect().catch((err: unknown) => {
        producer = undefined;
        throw err;
      }));
      const connected = await current;
      try {
        await connected.producer.send({ topic, messages: [record] });
      } catch (err) {
        // Failed only because the producer did: its fatal error says why (a principal refused a producer id, which
        // the writer's line then names with its grant, as the event producer's does; it said "check the brokers").
        const lost = failedWithoutCause(err) ? await connected.fatal.cause() : undefined;
        // A fatal error (the idempotence sequence broke) fails every later write of this producer: without a new
        // one, no checkpoint would be written again until a restart. The next interval's write opens one.
        if ((lost || isFatalRdKafkaError(err)) && producer === current) {
          producer = undefined;
          // The write's error is the one to report; a broken producer's disconnect may fail as well.
          await connected.producer.disconnect().catch(() => undefined);
        }
        throw lost ? lostProducerError(lost, this.config.brokers) : err;
      }
    };
    return {
      // Classified here, where librdkafka's codes are known: the writer names the code and the fix (store.writeFailure).
      send: (topic, record) =>
        send(topic, record).catch((err: unknown) => {
          throw classifyRdKafkaError(err);
        }),
      async close(): Promise<void> {
        // A producer that never connected has nothing to close (its failure was the write's to report).
        const connected = (await producer?.catch(() => undefined))?.producer;
        if (!connected) return;
        // Whatever is still queued here the writer gave up on (its last write finished or ran out of time). The
        // KafkaJS layer's disconnect would flush it for a fixed 5 s before letting go of the handle that keeps the
        // process up: with Kafka unreachable, 5 s more of every stop. The addon's own disconnect takes the flush time.
        await disconnectKafkaJsProducer(connected, 0);
      },
    };
  }
}

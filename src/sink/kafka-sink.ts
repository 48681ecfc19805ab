import type * as KafkaJs from 'kafkajs';
import type { Admin, CompressionTypes, Kafka, LogEntry, Producer } from 'kafkajs';
import type { Logger } from 'pino';
import type { KafkaSettings } from '../config/types.js';
import { lazyRequire } from '../lazy-require.js';
import { closedError, flushWithin, refuseIfClosed } from './closed-client.js';
import { classifyKafkaError } from './kafka-errors.js';
import { settlesWithin } from '../retry.js';
import type { CloseOptions, PlainSink, SinkRecord } from './sink.js';
import { TopicCheck } from './topic-check.js';
import { groupByTopic } from './topic-messages.js';

/** How long close() waits for kafkajs to disconnect. */
const DISCONNECT_WITHIN_MS = 5000;

/** Loaded when the kafkajs client is built: the default client is librdkafka. */
const kafkajs = lazyRequire<typeof KafkaJs>('kafkajs');

/** kafkajs logs every failed connection attempt at error level; our delivery queue reports outages once, so its chatter goes to debug. */
function kafkajsLogger(logger: Logger) {
  return () =>
    ({ namespace, log }: LogEntry) => {
      const { message, ...extra } = log;
      logger.debug({ kafkajs: namespace, ...extra }, message);
    };
}

/** Shorter bounds for a client whose requests are only a check (see src/checkpoint/topic-policy.ts). */
export interface KafkaJsBounds {
  connectionTimeoutMs: number;
  requestTimeoutMs: number;
  retries: number;
}

export function createKafkaClient(config: KafkaSettings, logger: Logger, clientIdSuffix = '', bounds?: KafkaJsBounds): Kafka {
  const { Kafka, logLevel } = kafkajs();
  return new Kafka({
    clientId: config.clientId + clientIdSuffix,
    brokers: config.brokers,
    ssl: config.ssl,
    ...(config.sasl ? { sasl: config.sasl } : {}),
    connectionTimeout: bounds?.connectionTimeoutMs ?? 5000,
    // A silent broker fails the request after this instead of leaving the batch in flight for good.
    requestTimeout: bounds?.requestTimeoutMs ?? config.requestTimeoutMs,
    enforceRequestTimeout: true,
    logLevel: logLevel.INFO,
    logCreator: kafkajsLogger(logger),
    // kafkajs' own retries stay short: the delivery queue owns the long backoff, so it can log and count it.
    retry: { retries: bounds?.retries ?? 2, initialRetryTime: 100, maxRetryTime: 1000 },
  });
}

/** kafkajs' codecs: only gzip ships with it (config validation refuses the others for this client). */
function kafkajsCompression(config: KafkaSettings): CompressionTypes {
  const { CompressionTypes } = kafkajs();
  return config.compression === 'gzip' ? CompressionTypes.GZIP : CompressionTypes.None;
}

/**
 * The pure-JavaScript fallback (kafka.client kafkajs): acks=all, one request in flight per broker, and no
 * produce retries inside kafkajs. Its retry can report success for records it never wrote after a leader change
 * (tulios/kafkajs#1303), and its idempotent producer refuses `retries: 0` (and otherwise forces
 * Number.MAX_SAFE_INTEGER retries, so a broker answering NOT_ENOUGH_REPLICAS never surfaces). So this producer is
 * not idempotent and fails a batch on the first error: the delivery engine re-sends the whole batch, which may
 * duplicate records but never leaves a gap. Topics are checked once through a metadata request, so a missing
 * topic is reported as such instead of after kafkajs' metadata retries.
 */
export class KafkaSink implements PlainSink {
  private readonly kafka: Kafka;
  private producer: Producer;
  /**
   * kafkajs asks the metadata of every topic its producer ever produced to, at each refresh (a new topic, or
   * metadataMaxAge): once one of them is deleted every refresh fails with UNKNOWN_TOPIC_OR_PARTITION, and so did
   * every later request, for topics that exist (dead letters included), until a restart. Set when the producer
   * refused a request so: it is replaced before the next one.
   */
  private producerStale = false;
  private readonly admin: Admin;
  private readonly topics: TopicCheck;
  private readonly compression: CompressionTypes;
  /** Set by close(): nothing connects or produces again (kafkajs reconnects a disconnected client that is used). */
  private closed = false;

  constructor(config: KafkaSettings, logger: Logger) {
    const kafka = createKafkaClient(config, logger);
    this.kafka = kafka;
    this.producer = this.createProducer();
    this.admin = kafka.admin();
    this.topics = new TopicCheck(
      (topic) => this.admin.fetchTopicMetadata({ topics: [topic] }).then((metadata) => metadata.topics.flatMap((t) => t.partitions)),
      (err) => (err as { type?: string }).type === 'UNKNOWN_TOPIC_OR_PARTITION',
      config.brokers,
    );
    this.compression = kafkajsCompression(config);
  }

  async connect(): Promise<void> {
    try {
      await this.producer.connect();
      await refuseIfClosed(this.closed, () => this.disconnect(DISCONNECT_WITHIN_MS));
      await this.admin.connect();
      await refuseIfClosed(this.closed, () => this.disconnect(DISCONNECT_WITHIN_MS));
    } catch (err) {
      throw classifyKafkaError(err);
    }
  }

  private createProducer(): Producer {
    return this.kafka.producer({
      idempotent: false,
      maxInFlightRequests: 1,
      retry: { retries: 0 },
      allowAutoTopicCreation: false,
      createPartitioner: kafkajs().Partitioners.DefaultPartitioner,
    });
  }

  /** A new producer in place of one that knows a deleted topic (producerStale); nothing of the old one is in flight. */
  private async replaceProducer(): Promise<void> {
    const stale = this.producer;
    this.producer = this.createProducer();
    await settlesWithin(Promise.allSettled([stale.disconnect()]), DISCONNECT_WITHIN_MS);
    await this.producer.connect();
    await refuseIfClosed(this.closed, () => this.disconnect(DISCONNECT_WITHIN_MS));
    this.producerStale = false;
  }

  async send(records: readonly SinkRecord[]): Promise<void> {
    const topicMessages = groupByTopic(records);
    let producing = false;
    try {
      if (this.closed) throw closedError();
      await this.topics.check(topicMessages.map((t) => t.topic));
      if (this.closed) throw closedError();
      if (this.producerStale) await this.replaceProducer();
      producing = true;
      await this.producer.sendBatch({ topicMessages, acks: -1, compression: this.compression });
    } catch (err) {
      const error = classifyKafkaError(err);
      if (error.code === 'TOPIC_NOT_FOUND') {
        this.topics.forget(topicMessages.map((t) => t.topic));
        if (producing) this.producerStale = true;
      }
      throw error;
    }
  }

  async checkLeaders(topics: Iterable<string>): Promise<void> {
    try {
      await this.topics.leaders(topics);
    } catch (err) {
      throw classifyKafkaError(err);
    }
  }

  async checkTopics(topics: Iterable<string>): Promise<void> {
    try {
      await this.topics.check(topics);
    } catch (err) {
      throw classifyKafkaError(err);
    }
  }

  knowsTopic(topic: string): boolean {
    return this.topics.knows(topic);
  }

  async close(options: CloseOptions = { flush: true }): Promise<void> {
    this.closed = true;
    // kafkajs's disconnect waits for the requests in flight, which a broker that stopped answering holds until
    // kafka.requestTimeout: after a drain the grace ended it is not waited for at all, otherwise for a bounded time
    // that ends with the stop (a request pending at a drained stop took the whole 5 s, past the watchdog).
    await this.disconnect(flushWithin(options, DISCONNECT_WITHIN_MS));
  }

  private async disconnect(withinMs: number): Promise<void> {
    await settlesWithin(Promise.allSettled([this.producer.disconnect(), this.admin.disconnect()]), withinMs);
  }
}

import type { KafkaJS } from '@confluentinc/kafka-javascript';
import type { Logger } from 'pino';
import type { KafkaSettings } from '../config/types.js';
import { createRdKafkaClient, producerProperties } from './rdkafka-client.js';
import { classifyRdKafkaError, isUnknownTopic, type RdKafkaLikeError } from './rdkafka-errors.js';
import type { Sink, SinkRecord } from './sink.js';
import { TopicCheck } from './topic-check.js';
import { groupByTopic } from './topic-messages.js';

/**
 * The Sink on librdkafka (`@confluentinc/kafka-javascript`, the default client, built from source at install
 * time). Encoding, batching and partitioning run in native threads, which is what lifts throughput over kafkajs.
 * `send` resolves when every record of the batch has its delivery report; a delivery report with an error is final
 * for its record. Up to four sends in flight: librdkafka's idempotent producer keeps records in produce() order
 * per partition across its internal retries, so the engine only has to call produce() in commit order.
 */
export class RdKafkaSink implements Sink {
  readonly pipelineDepth = 4;
  private producer: KafkaJS.Producer;
  private readonly admin: KafkaJS.Admin;
  private readonly topics: TopicCheck;
  private connected = false;
  /** Settles once the newest send() call handed its records to the producer (or gave up before). */
  private handedOver: Promise<void> = Promise.resolve();

  private constructor(
    private readonly kafka: KafkaJS.Kafka,
    private readonly properties: KafkaJS.ProducerConstructorConfig,
  ) {
    this.producer = this.newProducer();
    this.admin = kafka.admin();
    this.topics = new TopicCheck((topic) => this.admin.fetchTopicMetadata({ topics: [topic] }), isUnknownTopic);
  }

  /** Fails with CONFIG_INVALID (exit 2) when the native module cannot be loaded. */
  static async create(config: KafkaSettings, logger: Logger): Promise<RdKafkaSink> {
    const kafka = await createRdKafkaClient(config, logger);
    // No message timeout: librdkafka retries a record until it is acknowledged, in order, so a batch never fails
    // for being late while a later one (with several in flight) gets through ahead of it. A broker that stays
    // silent is the delivery engine's stall watchdog's to report after kafka.deliveryTimeout (and to give up on
    // after retry.maxDuration); what still fails a record is final for it (too large, not authorized, fatal).
    const properties = { ...producerProperties(config), 'message.timeout.ms': 0 };
    return new RdKafkaSink(kafka, properties as KafkaJS.ProducerConstructorConfig);
  }

  private newProducer(): KafkaJS.Producer {
    return this.kafka.producer(this.properties);
  }

  async connect(): Promise<void> {
    try {
      if (!this.connected) await this.admin.connect();
      this.connected = true;
      await this.producer.connect();
    } catch (err) {
      // A KafkaJS-API producer connects once: the next attempt needs a new one.
      await this.producer.disconnect().catch(() => undefined);
      this.producer = this.newProducer();
      throw classifyRdKafkaError(err);
    }
  }

  async send(records: readonly SinkRecord[]): Promise<void> {
    const topicMessages = groupByTopic(records);
    // Several calls are in flight: each hands its records to librdkafka only after the calls before it did, or a
    // call whose topic check answers sooner would overtake an earlier one (seen at every start, when the first
    // calls all wait for metadata: later transactions landed ahead of earlier ones in their partition).
    const earlier = this.handedOver;
    let handOver!: () => void;
    this.handedOver = new Promise((resolve) => (handOver = resolve));
    try {
      await earlier;
      await this.topics.check(topicMessages.map((t) => t.topic));
      // sendBatch calls librdkafka's produce() for every record before it first awaits.
      const sending = this.producer.sendBatch({ topicMessages });
      handOver();
      await sending;
    } catch (err) {
      handOver();
      // A fatal error (e.g. the idempotence sequence broke) leaves the producer unusable: the retry gets a new one.
      if ((err as RdKafkaLikeError).fatal) await this.replaceProducer();
      throw classifyRdKafkaError(err);
    }
  }

  private async replaceProducer(): Promise<void> {
    await this.producer.disconnect().catch(() => undefined);
    this.producer = this.newProducer();
    await this.producer.connect().catch(() => undefined);
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.producer.disconnect(), this.admin.disconnect()]);
  }
}

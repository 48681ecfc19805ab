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
 * for its record. One send at a time (the Sink default): with four in flight, 18k of 47k events were lost across
 * kill -9 restarts (relay.kill.test.ts, quiet machine), cause not yet found; see docs/delivery-guarantees.md.
 */
export class RdKafkaSink implements Sink {
  private producer: KafkaJS.Producer;
  private readonly admin: KafkaJS.Admin;
  private readonly topics: TopicCheck;
  private connected = false;

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
    return new RdKafkaSink(kafka, producerProperties(config) as KafkaJS.ProducerConstructorConfig);
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
    try {
      await this.topics.check(topicMessages.map((t) => t.topic));
      await this.producer.sendBatch({ topicMessages });
    } catch (err) {
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

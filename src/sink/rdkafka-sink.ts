import type { KafkaJS } from '@confluentinc/kafka-javascript';
import type { Logger } from 'pino';
import type { RelayConfig } from '../config/relay-config.js';
import { RelayError, errorMessage } from '../errors.js';
import type { Sink, SinkRecord } from './sink.js';
import { TopicCheck } from './topic-check.js';
import { groupByTopic } from './topic-messages.js';

type KafkaJSModule = typeof KafkaJS;

/** librdkafka error codes (rd_kafka_resp_err_t) that no retry can fix, by the RelayError they mean. */
const RECORD_ERRORS = new Map<number, 'RECORD_TOO_LARGE' | 'RECORD_INVALID' | 'TOPIC_NOT_FOUND' | 'TOPIC_INVALID'>([
  [10, 'RECORD_TOO_LARGE'], // MSG_SIZE_TOO_LARGE, also raised locally above message.max.bytes
  [18, 'RECORD_TOO_LARGE'], // RECORD_LIST_TOO_LARGE
  [4, 'RECORD_TOO_LARGE'], // INVALID_MSG_SIZE
  [2, 'RECORD_INVALID'], // INVALID_MSG (corrupt)
  [87, 'RECORD_INVALID'], // INVALID_RECORD
  [44, 'RECORD_INVALID'], // POLICY_VIOLATION
  [17, 'TOPIC_INVALID'], // TOPIC_EXCEPTION
  [3, 'TOPIC_NOT_FOUND'], // UNKNOWN_TOPIC_OR_PART
  [-188, 'TOPIC_NOT_FOUND'], // _UNKNOWN_TOPIC (local)
]);
/** TOPIC_AUTHORIZATION_FAILED, CLUSTER_AUTHORIZATION_FAILED, TRANSACTIONAL_ID_AUTHORIZATION_FAILED, SASL_AUTHENTICATION_FAILED, _AUTHENTICATION. */
const AUTH_ERRORS = new Set([29, 31, 53, 58, -169]);

interface RdKafkaLikeError {
  code?: number;
  fatal?: boolean;
}

/** The same classes as classifyKafkaError, from librdkafka's numeric codes. */
export function classifyRdKafkaError(err: unknown): RelayError {
  if (err instanceof RelayError) return err;
  const code = (err as RdKafkaLikeError).code ?? 0;
  const message = errorMessage(err);
  const record = RECORD_ERRORS.get(code);
  if (record) return new RelayError(record, `Kafka rejected the record: ${message}`, { cause: err, details: { kafkaError: code } });
  if (AUTH_ERRORS.has(code)) {
    return new RelayError('KAFKA_AUTH', `Kafka refused access: ${message}`, {
      cause: err,
      retriable: true,
      hint: 'check kafka.saslMechanism/username/password and the ACLs of the relay principal (WRITE on the topics, IDEMPOTENT_WRITE on the cluster)',
    });
  }
  return new RelayError('KAFKA_UNAVAILABLE', `Kafka produce failed: ${message}`, { cause: err, retriable: true, details: { kafkaError: code } });
}

/** Where and how to connect: shared by the producer and the admin client that checks topics. */
function connectionProperties(config: RelayConfig['kafka']): Record<string, string | number | boolean> {
  const props: Record<string, string | number | boolean> = {
    'bootstrap.servers': (config.brokers as string[]).join(','),
    'client.id': config.clientId!,
  };
  const sasl = config.sasl as { mechanism: string; username: string; password: string } | undefined;
  const ssl = config.ssl;
  props['security.protocol'] = `${sasl ? 'sasl_' : ''}${ssl ? 'ssl' : 'plaintext'}`;
  if (sasl) {
    props['sasl.mechanisms'] = sasl.mechanism.toUpperCase();
    props['sasl.username'] = sasl.username;
    props['sasl.password'] = sasl.password;
  }
  if (typeof ssl === 'object' && ssl.ca) props['ssl.ca.pem'] = ([] as unknown[]).concat(ssl.ca).map(String).join('\n');
  return props;
}

/** librdkafka's properties for what the kafkajs sink does: idempotent, acks=all, ordered, Java-compatible key partitioning. */
function producerProperties(config: RelayConfig['kafka']): Record<string, string | number | boolean> {
  return {
    // Idempotence keeps order across librdkafka's internal retries with up to 5 requests in flight.
    'enable.idempotence': true,
    acks: -1,
    'allow.auto.create.topics': false,
    // The same partition per key as kafkajs' DefaultPartitioner and the Java client: switching clients keeps per-key order.
    partitioner: 'murmur2_random',
    'compression.type': config.compression,
    // A batch is handed over whole and awaited: waiting longer for more records only adds latency.
    'linger.ms': 1,
    // A failed produce surfaces to the delivery queue, which owns the long backoff and the outage log.
    'message.timeout.ms': 30_000,
  };
}

/** librdkafka's log lines at debug: the delivery queue reports outages once, at warn. */
function rdkafkaLogger(logger: Logger): KafkaJS.Logger {
  const log = (message: string, extra?: object) => logger.debug({ rdkafka: true, ...extra }, message);
  const adapter = { info: log, warn: log, error: log, debug: log, namespace: () => adapter, setLogLevel: () => undefined };
  return adapter;
}

/**
 * The Sink on librdkafka (`@confluentinc/kafka-javascript`, an optional dependency built from source at install
 * time). Encoding, batching and partitioning run in native threads, which is what lifts throughput over kafkajs.
 * `send` resolves when every record of the batch has its delivery report, so the delivery queue's rule (one batch
 * in flight, a retried batch never overtaken) holds as with kafkajs.
 */
export class RdKafkaSink implements Sink {
  private producer: KafkaJS.Producer;
  private readonly admin: KafkaJS.Admin;
  private readonly topics: TopicCheck;
  private connected = false;

  private constructor(
    private readonly kafka: KafkaJS.Kafka,
    private readonly properties: Record<string, string | number | boolean>,
  ) {
    this.producer = this.newProducer();
    this.admin = kafka.admin();
    this.topics = new TopicCheck(
      (topic) => this.admin.fetchTopicMetadata({ topics: [topic] }),
      (err) => RECORD_ERRORS.get((err as RdKafkaLikeError).code ?? 0) === 'TOPIC_NOT_FOUND',
    );
  }

  static async create(config: RelayConfig['kafka'], logger: Logger): Promise<RdKafkaSink> {
    let kafkaJS: KafkaJSModule;
    try {
      const module = (await import('@confluentinc/kafka-javascript')) as { KafkaJS?: KafkaJSModule; default?: { KafkaJS: KafkaJSModule } };
      kafkaJS = (module.KafkaJS ?? module.default!.KafkaJS)!;
    } catch (err) {
      throw new RelayError('CONFIG_INVALID', `kafka.client rdkafka needs @confluentinc/kafka-javascript, which is not installed or not built: ${errorMessage(err)}`, {
        hint: 'install it with CKJS_LINKING=dynamic npm ci (needs libssl-dev, zlib1g-dev and a C++ toolchain), or use kafka.client kafkajs',
      });
    }
    const kafka = new kafkaJS.Kafka({ ...connectionProperties(config), kafkaJS: { logger: rdkafkaLogger(logger) } } as KafkaJS.CommonConstructorConfig);
    return new RdKafkaSink(kafka, producerProperties(config));
  }

  private newProducer(): KafkaJS.Producer {
    return this.kafka.producer(this.properties as KafkaJS.ProducerConstructorConfig);
  }

  async connect(): Promise<void> {
    try {
      await this.producer.connect();
      if (!this.connected) await this.admin.connect();
      this.connected = true;
    } catch (err) {
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

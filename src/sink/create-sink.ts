import type { Logger } from 'pino';
import type { KafkaCheckpointStore } from '../checkpoint/kafka-checkpoint-store.js';
import type { RelayConfig } from '../config/types.js';
import { KafkaSink } from './kafka-sink.js';
import { RdKafkaSink } from './rdkafka-sink.js';
import { RdKafkaTransactionalSink } from './rdkafka-transactional-sink.js';
import type { PlainSink, TransactionalSink } from './sink.js';

/** The sink for `kafka.client`. */
export async function createSink(config: RelayConfig['kafka'], logger: Logger): Promise<PlainSink> {
  return config.client === 'rdkafka' ? RdKafkaSink.create(config, logger) : new KafkaSink(config, logger);
}

/** The exactly-once sink, writing checkpoints to `store`: librdkafka only (loadConfig refuses exactly-once with kafkajs). */
export function createTransactionalSink(config: RelayConfig, store: KafkaCheckpointStore, logger: Logger): TransactionalSink {
  return new RdKafkaTransactionalSink(config.kafka, config.slot, config.delivery.transactionTimeoutMs, store, logger);
}

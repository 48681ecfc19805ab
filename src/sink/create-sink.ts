import type { Logger } from 'pino';
import type { KafkaCheckpointStore } from '../checkpoint/kafka-checkpoint-store.js';
import type { RelayConfig } from '../config/types.js';
import { KafkaSink } from './kafka-sink.js';
import { KafkaJsTransactionalSink } from './kafkajs-transactional-sink.js';
import { RdKafkaSink } from './rdkafka-sink.js';
import { RdKafkaTransactionalSink } from './rdkafka-transactional-sink.js';
import type { Sink, TransactionalSink } from './sink.js';

/** The sink for `kafka.client`. */
export async function createSink(config: RelayConfig['kafka'], logger: Logger): Promise<Sink> {
  return config.client === 'rdkafka' ? RdKafkaSink.create(config, logger) : new KafkaSink(config, logger);
}

/** The exactly-once sink for `kafka.client`, writing checkpoints to `store`. */
export function createTransactionalSink(config: RelayConfig, store: KafkaCheckpointStore, logger: Logger): TransactionalSink {
  const Implementation = config.kafka.client === 'rdkafka' ? RdKafkaTransactionalSink : KafkaJsTransactionalSink;
  return new Implementation(config.kafka, config.slot, config.delivery.transactionTimeoutMs, store, logger);
}

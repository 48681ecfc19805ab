import type { Logger } from 'pino';
import type { KafkaSettings } from '../config/types.js';
import { createKafkaClient } from '../sink/kafka-sink.js';
import type { CheckpointClient } from './checkpoint-client.js';
import { KafkaJsCheckpointClient } from './kafkajs-checkpoint-client.js';
import { RdKafkaCheckpointClient } from './rdkafka-checkpoint-client.js';

/** The checkpoint topic through the client `kafka.client` selects. */
export function createCheckpointClient(config: KafkaSettings, logger: Logger, clientIdSuffix = '-checkpoint'): CheckpointClient {
  return config.client === 'rdkafka' ? new RdKafkaCheckpointClient(config, logger) : new KafkaJsCheckpointClient(createKafkaClient(config, logger, clientIdSuffix));
}

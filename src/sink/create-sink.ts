import type { Logger } from 'pino';
import type { RelayConfig } from '../config/relay-config.js';
import { KafkaSink } from './kafka-sink.js';
import { RdKafkaSink } from './rdkafka-sink.js';
import type { Sink } from './sink.js';

/** The sink for `kafka.client`. */
export async function createSink(config: RelayConfig['kafka'], logger: Logger): Promise<Sink> {
  return config.client === 'rdkafka' ? RdKafkaSink.create(config, logger) : new KafkaSink(config, logger);
}

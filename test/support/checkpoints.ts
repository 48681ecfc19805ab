import { createCheckpointClient } from '../../src/checkpoint/create-checkpoint-client.js';
import { KafkaCheckpointStore } from '../../src/checkpoint/kafka-checkpoint-store.js';
import { readTopicPolicy } from '../../src/checkpoint/topic-policy.js';
import type { RelayError } from '../../src/errors.js';
import { loadConfig } from '../../src/config/relay-config.js';
import { silentLogger } from '../../src/logger.js';
import { stack, uniqueName } from './services.js';

/** What the relay finds wrong with the checkpoint topic `topic`'s policy (readTopicPolicy), on the test stack (or `brokers`). */
export function checkpointTopicPolicy(topic: string, brokers = stack().brokers): Promise<RelayError | undefined> {
  const config = loadConfig({ flags: { 'kafka.brokers': brokers.join(',') }, env: {} });
  return readTopicPolicy(config.kafka, silentLogger(), topic);
}

/** The checkpoint topic `topic` on the test stack (or `brokers`), read and written as the relay does (its default client, or `client`). */
export function checkpointStore(topic = uniqueName('checkpoints'), brokers = stack().brokers, client?: 'rdkafka' | 'kafkajs'): KafkaCheckpointStore {
  const config = loadConfig({ flags: { 'kafka.brokers': brokers.join(','), ...(client ? { 'kafka.client': client } : {}) }, env: {} });
  return new KafkaCheckpointStore(createCheckpointClient(config.kafka, silentLogger()), topic, config.kafka.brokers);
}

import type { KafkaSettings } from '../config/types.js';
import { bootstrapServers } from './topic-check.js';

/**
 * The kafka-acls.sh that grants the relay's principal `operations` on `resources` (kafka-acls.sh's resource flags
 * with their names), as a fix prints it: with kafka.brokers, since the tool has no default. The principal stays a
 * placeholder: the relay cannot tell how the brokers name it (User:<SASL user>, a certificate's DN, a principal
 * builder's own). Kafka's names of topics and transactional ids need no shell quoting (letters, digits, . _ -).
 */
export function aclGrant(brokers: KafkaSettings['brokers'], operations: readonly string[], resources: string): string {
  const ops = operations.map((operation) => ` --operation ${operation}`).join('');
  return `kafka-acls.sh --bootstrap-server ${bootstrapServers(brokers)} --add --allow-principal <principal>${ops} ${resources}`;
}

/** WRITE and DESCRIBE on `topics` (produce, and the topic check before it): one --topic each. */
export function topicWriteGrant(brokers: KafkaSettings['brokers'], topics: readonly string[]): string {
  return aclGrant(brokers, ['Write', 'Describe'], topics.map((topic) => `--topic ${topic}`).join(' '));
}

import type { KafkaSettings } from '../config/types.js';
import { RelayError } from '../errors.js';

/** kafka.brokers as one comma-separated list: librdkafka's bootstrap.servers, kafka-topics.sh's --bootstrap-server. */
export function bootstrapServers(brokers: KafkaSettings['brokers']): string {
  // The relay's configuration always gives a list; kafkajs' type also allows a function.
  return (brokers as string[]).join(',');
}

/** A partition as both clients' admin metadata name it: its leader's broker id, -1 without one. */
export interface PartitionLeader {
  partitionId: number;
  leader: number;
}

/**
 * Asks the broker about each topic once, before its first produce, so that a missing topic is reported as
 * such right away instead of after the client's metadata retries (or librdkafka's propagation timeout).
 */
export class TopicCheck {
  private readonly known = new Set<string>();

  constructor(
    private readonly fetchMetadata: (topic: string) => Promise<readonly PartitionLeader[]>,
    private readonly isUnknownTopic: (err: unknown) => boolean,
    /** kafka.brokers: the fix's kafka-topics.sh needs them (it has no default) to run as printed. */
    private readonly brokers: KafkaSettings['brokers'],
  ) {}

  async check(topics: Iterable<string>): Promise<void> {
    for (const topic of topics) {
      if (this.known.has(topic)) continue;
      await this.partitions(topic);
      this.known.add(topic);
    }
  }

  knows(topic: string): boolean {
    return this.known.has(topic);
  }

  /** Kafka said a topic was missing where it was known: asked again before its next produce (a deleted topic). */
  forget(topics: Iterable<string>): void {
    for (const topic of topics) this.known.delete(topic);
  }

  /**
   * Asks the broker again, whatever is known: rejects unless every partition of each topic has a leader, which
   * takes its writes. (Not proof against all: a partition below min.insync.replicas still refuses acks=all.)
   */
  async leaders(topics: Iterable<string>): Promise<void> {
    for (const topic of topics) {
      const leaderless = (await this.partitions(topic)).filter((p) => p.leader < 0).map((p) => p.partitionId);
      if (leaderless.length > 0) {
        throw new RelayError('KAFKA_UNAVAILABLE', `partitions ${leaderless.join(', ')} of topic "${topic}" have no leader`, { retriable: true, details: { topic } });
      }
    }
  }

  private async partitions(topic: string): Promise<readonly PartitionLeader[]> {
    try {
      return await this.fetchMetadata(topic);
    } catch (err) {
      if (this.isUnknownTopic(err)) {
        throw new RelayError('TOPIC_NOT_FOUND', `topic "${topic}" does not exist`, {
          // Whatever the broker's auto.create.topics.enable: the producers ask with auto-creation off
          // (allow.auto.create.topics, allowAutoTopicCreation), and a metadata request of an admin client never creates.
          hint: `create it (kafka-topics.sh --bootstrap-server ${bootstrapServers(this.brokers)} --create --topic ${topic}): the relay never creates event topics, nor lets the broker auto-create them`,
          details: { topic },
        });
      }
      throw err;
    }
  }
}

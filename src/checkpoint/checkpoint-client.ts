/**
 * What the checkpoint store and writer need from a Kafka client, so that both go through the client selected by
 * `kafka.client` (the replicated-cluster-safe librdkafka producer by default) instead of kafkajs directly.
 */
export interface CheckpointRecord {
  key: string;
  value: Buffer;
}

export interface TopicSpec {
  topic: string;
  partitions: number;
  config: Record<string, string>;
}

export interface CheckpointClient {
  /** Creates the topic unless it exists; waits until it has a leader. */
  createTopic(spec: TopicSpec): Promise<void>;
  /**
   * Every committed record of the topic, from its beginning to its end at the time of the call (read_committed:
   * records of aborted transactions are skipped), in offset order per partition. False when the topic does not
   * exist; never creates it (`status` must not).
   */
  readAll(topic: string, onRecord: (record: { key: string | undefined; value: Buffer | null; partition: number }) => void, timeoutMs: number): Promise<boolean>;
  /** An idempotent acks=all producer for plain checkpoint writes. */
  producer(): CheckpointProducer;
}

export interface CheckpointProducer {
  /** Rejects with the client's classification of the failure (KAFKA_AUTH, RECORD_TOO_LARGE, KAFKA_UNAVAILABLE, …). */
  send(topic: string, record: CheckpointRecord): Promise<void>;
  close(): Promise<void>;
}

/** Reading did not reach the end in time: told apart from a failure, because its cause is usually an open transaction. */
export class ReadTimeout extends Error {}

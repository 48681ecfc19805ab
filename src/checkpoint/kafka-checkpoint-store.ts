import { randomBytes } from 'node:crypto';
import type { Kafka, Message } from 'kafkajs';
import { RelayError, errorMessage } from '../errors.js';
import { decodeCheckpoint, encodeCheckpoint, type Checkpoint } from './checkpoint.js';

/** Compaction keeps one record per slot; short segments let it run within the hour, so a restart reads little. */
const TOPIC_CONFIG = [
  { name: 'cleanup.policy', value: 'compact' },
  { name: 'segment.ms', value: String(60 * 60_000) },
  { name: 'min.cleanable.dirty.ratio', value: '0.1' },
];

const READ_TIMEOUT_MS = 30_000;

/**
 * Checkpoints in a compacted Kafka topic, key = slot name. Kafka rather than a table in PostgreSQL because the
 * exactly-once mode must commit the checkpoint in the same Kafka transaction as the events it covers; the other
 * modes use the same store so that `status` and replays have one place to look. It survives a container restart
 * without a volume, like the slot itself.
 */
export class KafkaCheckpointStore {
  /** Written into every checkpoint record (see Checkpoint.replayWindow); set once the start decided the window. */
  replayWindow: string | undefined;

  constructor(
    private readonly kafka: Kafka,
    readonly topic: string,
  ) {}

  /** Creates the topic (compacted, one partition) unless it exists. */
  async ensureTopic(): Promise<void> {
    const admin = this.kafka.admin();
    try {
      await admin.connect();
      await admin.createTopics({ topics: [{ topic: this.topic, numPartitions: 1, configEntries: TOPIC_CONFIG }], waitForLeaders: true });
    } catch (err) {
      throw this.failure('cannot create the checkpoint topic', err, `create it yourself: kafka-topics.sh --create --topic ${this.topic} --partitions 1 --config cleanup.policy=compact, or grant the relay CREATE on it`);
    } finally {
      await admin.disconnect();
    }
  }

  /** The record to produce (plainly or inside a Kafka transaction). */
  message(checkpoint: Checkpoint): Message {
    const replayWindow = this.replayWindow ?? checkpoint.replayWindow;
    return { key: checkpoint.slot, value: encodeCheckpoint(replayWindow === undefined ? checkpoint : { ...checkpoint, replayWindow }) };
  }

  /**
   * The last committed checkpoint of `slot` (read_committed: a checkpoint of an aborted Kafka transaction is
   * never seen). Reads the topic to its end; compaction keeps that short.
   */
  async read(slot: string, timeoutMs = READ_TIMEOUT_MS): Promise<Checkpoint | undefined> {
    // A missing topic simply holds no checkpoint yet; creating it here spares the offset lookup kafkajs' metadata retries.
    await this.ensureTopic();
    const remaining = await this.endOffsets();
    if (remaining.size === 0) return undefined;
    const consumer = this.kafka.consumer({ groupId: `outbox-relay-checkpoint-reader-${randomBytes(6).toString('hex')}`, readUncommitted: false, maxWaitTimeInMs: 100 });
    let latest: Checkpoint | undefined;
    let failed: RelayError | undefined;
    let reachedEnd!: () => void;
    const done = new Promise<void>((resolve) => (reachedEnd = resolve));
    // Transaction markers are never handed to eachMessage, so the end is recognised from the batches' last offsets.
    consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
      const last = remaining.get(payload.partition);
      if (last !== undefined && BigInt(payload.lastOffset) >= last) remaining.delete(payload.partition);
      if (remaining.size === 0) reachedEnd();
    });
    let timer: NodeJS.Timeout | undefined;
    try {
      await consumer.connect();
      await consumer.subscribe({ topic: this.topic, fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        eachMessage: async ({ message }) => {
          if (message.key?.toString() !== slot || !message.value) return;
          try {
            latest = decodeCheckpoint(message.value, this.topic);
          } catch (err) {
            failed = err as RelayError;
          }
        },
      });
      const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), timeoutMs)));
      if (await Promise.race([done.then(() => false), timedOut])) {
        throw new RelayError('CHECKPOINT_FAILED', `reading the checkpoint topic "${this.topic}" did not reach its end within ${timeoutMs / 1000} s`, {
          retriable: true,
          hint: 'a transaction of another producer may be open on the topic (it is aborted after its transaction timeout); check the brokers',
        });
      }
    } catch (err) {
      throw this.failure('cannot read the checkpoint topic', err, 'check the brokers and that the relay may READ the topic');
    } finally {
      clearTimeout(timer);
      await consumer.disconnect();
    }
    if (failed) throw failed;
    return latest;
  }

  /** Last offset per non-empty partition. */
  private async endOffsets(): Promise<Map<number, bigint>> {
    const admin = this.kafka.admin();
    try {
      await admin.connect();
      const offsets = await admin.fetchTopicOffsets(this.topic);
      return new Map(offsets.filter((o) => BigInt(o.high) > BigInt(o.low)).map((o) => [o.partition, BigInt(o.high) - 1n]));
    } catch (err) {
      throw this.failure('cannot read the checkpoint topic offsets', err, 'check the brokers and that the relay may DESCRIBE the topic');
    } finally {
      await admin.disconnect();
    }
  }

  private failure(what: string, err: unknown, hint: string): RelayError {
    if (err instanceof RelayError) return err;
    return new RelayError('CHECKPOINT_FAILED', `${what} "${this.topic}": ${errorMessage(err)}`, { cause: err, retriable: true, hint });
  }
}

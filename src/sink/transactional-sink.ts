import { CompressionTypes, Partitioners, type Producer, type Transaction } from 'kafkajs';
import type { Logger } from 'pino';
import type { Checkpoint } from '../checkpoint/checkpoint.js';
import type { KafkaCheckpointStore } from '../checkpoint/kafka-checkpoint-store.js';
import type { RelayConfig } from '../config/relay-config.js';
import { RelayError, errorMessage } from '../errors.js';
import { classifyKafkaError, rootCause } from './kafka-errors.js';
import { groupByTopic } from './topic-messages.js';
import { createKafkaClient } from './kafka-sink.js';
import type { SinkRecord, TransactionalSink } from './sink.js';

/** Long enough for a large source transaction spread over many produce requests; a crashed instance's open transaction is aborted by the broker after it at the latest (or at once by the next instance's fencing). */
const TRANSACTION_TIMEOUT_MS = 60_000;

/** Kafka's answers to a producer whose transactional id was taken over by a newer instance. */
const FENCED_TYPES = new Set(['INVALID_PRODUCER_EPOCH', 'PRODUCER_FENCED']);
const FENCED_CODE = 90;

/** One transactional id per slot: two relays on the same slot fence each other instead of both committing. */
export function transactionalId(slot: string): string {
  return `outbox-relay.${slot}`;
}

export function isFenced(err: unknown): boolean {
  const root = rootCause(err) as { type?: string; code?: number };
  return FENCED_TYPES.has(root.type ?? '') || root.code === FENCED_CODE;
}

function fencedError(slot: string, err: unknown): RelayError {
  return new RelayError('PRODUCER_FENCED', `another relay instance took over transactional id "${transactionalId(slot)}" (slot "${slot}"): this instance was fenced and stops`, {
    cause: err,
    hint: 'exactly-once allows one writer per slot: the newer instance continues from the last committed checkpoint; stop this one (or stop the other and restart this one)',
  });
}

/**
 * The exactly-once producer: records go into an open Kafka transaction (`send` begins one when none is open),
 * and `commit` adds the checkpoint record and commits, so a read_committed consumer sees the events and the
 * checkpoint together or not at all. connect() registers the transactional id, which fences any older producer
 * with the same id and aborts its open transaction (verified: without that, an older kafkajs producer keeps
 * committing until the newer one begins its first transaction).
 */
export class KafkajsTransactionalSink implements TransactionalSink {
  private readonly producer: Producer;
  private readonly compression: CompressionTypes;
  private txn: Transaction | undefined;

  constructor(
    config: RelayConfig['kafka'],
    private readonly slot: string,
    private readonly checkpoints: KafkaCheckpointStore,
    private readonly logger: Logger,
  ) {
    // A missing topic surfaces from the produce itself (UNKNOWN_TOPIC_OR_PARTITION), which halts: nothing of the transaction was committed.
    const options = { transactionalId: transactionalId(slot), transactionTimeout: TRANSACTION_TIMEOUT_MS, idempotent: true, maxInFlightRequests: 1 };
    this.producer = createKafkaClient(config, logger, '-txn').producer({ ...options, allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner });
    this.compression = config.compression === 'gzip' ? CompressionTypes.GZIP : CompressionTypes.None;
  }

  async connect(): Promise<void> {
    try {
      await this.checkpoints.ensureTopic();
      await this.producer.connect();
      // kafkajs registers the transactional id only when the first transaction begins; an empty one registers it
      // now, which fences older producers and aborts what they left open before the checkpoint is read.
      await (await this.producer.transaction()).abort();
    } catch (err) {
      throw this.classify(err);
    }
  }

  async send(records: readonly SinkRecord[]): Promise<void> {
    const topicMessages = groupByTopic(records);
    try {
      this.txn ??= await this.producer.transaction();
      await this.txn.sendBatch({ topicMessages, acks: -1, compression: this.compression });
    } catch (err) {
      throw this.classify(err);
    }
  }

  /** Writes the checkpoint into the open transaction (opening one if needed) and commits. */
  async commit(checkpoint: Checkpoint): Promise<void> {
    try {
      this.txn ??= await this.producer.transaction();
      await this.txn.send({ topic: this.checkpoints.topic, messages: [this.checkpoints.message(checkpoint)], acks: -1 });
      await this.txn.commit();
      this.txn = undefined;
    } catch (err) {
      throw this.classify(err);
    }
  }

  /**
   * Aborts the open transaction. When the abort itself fails, the producer is reconnected: registering the
   * transactional id again aborts whatever this producer left open.
   */
  async abort(): Promise<void> {
    const txn = this.txn;
    this.txn = undefined;
    if (!txn) return;
    try {
      await txn.abort();
    } catch (abortError) {
      if (isFenced(abortError)) throw this.classify(abortError);
      try {
        await this.producer.disconnect();
        await this.producer.connect();
      } catch (err) {
        throw this.classify(err);
      }
    }
  }

  async close(): Promise<void> {
    const results = await Promise.allSettled([this.abort().then(() => this.producer.disconnect())]);
    // Nothing is lost by a failed close: an open transaction is aborted by the broker or by the next instance.
    for (const r of results) if (r.status === 'rejected') this.logger.warn({ err: errorMessage(r.reason) }, 'closing the transactional producer failed');
  }

  private classify(err: unknown): RelayError {
    return isFenced(err) ? fencedError(this.slot, err) : classifyKafkaError(err);
  }
}

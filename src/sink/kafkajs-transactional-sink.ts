import { Partitioners, type Producer, type Transaction as KafkaJsTransaction } from 'kafkajs';
import type { Logger } from 'pino';
import type { Checkpoint } from '../checkpoint/checkpoint.js';
import type { KafkaCheckpointStore } from '../checkpoint/kafka-checkpoint-store.js';
import type { KafkaSettings } from '../config/types.js';
import { errorMessage, type RelayError } from '../errors.js';
import { classifyKafkaError } from './kafka-errors.js';
import { createKafkaClient, kafkajsCompression } from './kafka-sink.js';
import type { SinkRecord, TransactionalSink } from './sink.js';
import { groupByTopic } from './topic-messages.js';
import { epochError, isEpochError, transactionalId, withFlags } from './transaction-errors.js';

/**
 * The exactly-once producer on kafkajs (kafka.client kafkajs; see TransactionalSink for the contract). kafkajs
 * cannot continue a transaction after a failed call, so every failure requires an abort; a failed commit may
 * still have committed (ambiguous). Its idempotent producer insists on retrying internally (at least once), which
 * is bounded here; the replicated-cluster limits of kafkajs are in docs/delivery-guarantees.md.
 */
export class KafkaJsTransactionalSink implements TransactionalSink {
  private readonly producer: Producer;
  private readonly compression;
  private txn: KafkaJsTransaction | undefined;
  private openedAtMs: number | undefined;

  constructor(
    config: KafkaSettings,
    private readonly slot: string,
    private readonly transactionTimeoutMs: number,
    private readonly checkpoints: KafkaCheckpointStore,
    private readonly logger: Logger,
  ) {
    // A missing topic surfaces from the produce itself (UNKNOWN_TOPIC_OR_PARTITION), which halts: nothing of the transaction was committed.
    this.producer = createKafkaClient(config, logger, '-txn').producer({
      transactionalId: transactionalId(slot),
      transactionTimeout: transactionTimeoutMs,
      idempotent: true,
      maxInFlightRequests: 1,
      // kafkajs refuses fewer than 1 retry for an idempotent producer and otherwise retries forever.
      retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 1000 },
      allowAutoTopicCreation: false,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
    this.compression = kafkajsCompression(config);
  }

  async connect(): Promise<void> {
    try {
      await this.checkpoints.ensureTopic();
      await this.producer.connect();
      // kafkajs registers the transactional id only when the first transaction begins; an empty one registers it
      // now, which fences older producers and aborts what they left open before the checkpoint is read.
      await (await this.producer.transaction()).abort();
    } catch (err) {
      throw this.classify(err, false);
    }
  }

  private async open(): Promise<KafkaJsTransaction> {
    if (!this.txn) {
      this.txn = await this.producer.transaction();
      this.openedAtMs = Date.now();
    }
    return this.txn;
  }

  async send(records: readonly SinkRecord[]): Promise<void> {
    const topicMessages = groupByTopic(records);
    try {
      await (await this.open()).sendBatch({ topicMessages, acks: -1, compression: this.compression });
    } catch (err) {
      throw this.classify(err, false);
    }
  }

  /** Writes the checkpoint into the open transaction (opening one if needed) and commits. */
  async commit(checkpoint: Checkpoint): Promise<void> {
    try {
      const txn = await this.open();
      await txn.send({ topic: this.checkpoints.topic, messages: [this.checkpoints.message(checkpoint)], acks: -1 });
      await txn.commit();
      this.txn = undefined;
    } catch (err) {
      throw this.classify(err, true);
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
      const error = this.classify(abortError, false);
      if (error.code === 'PRODUCER_FENCED') throw error;
      try {
        await this.producer.disconnect();
        await this.producer.connect();
      } catch (err) {
        throw this.classify(err, false);
      }
    } finally {
      this.openedAtMs = undefined;
    }
  }

  async close(): Promise<void> {
    const results = await Promise.allSettled([this.abort().then(() => this.producer.disconnect())]);
    // Nothing is lost by a failed close: an open transaction is aborted by the broker or by the next instance.
    for (const r of results) if (r.status === 'rejected') this.logger.warn({ err: errorMessage(r.reason) }, 'closing the transactional producer failed');
  }

  private classify(err: unknown, committing: boolean): RelayError {
    if (isEpochError(err)) return epochError({ slot: this.slot, openedAtMs: this.openedAtMs, timeoutMs: this.transactionTimeoutMs }, err);
    return withFlags(classifyKafkaError(err), { txnRequiresAbort: true, txnRetriable: false, txnFatal: false, ambiguous: committing });
  }
}

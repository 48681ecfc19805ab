import type { KafkaJS } from '@confluentinc/kafka-javascript';
import type { Logger } from 'pino';
import type { Checkpoint } from '../checkpoint/checkpoint.js';
import type { KafkaCheckpointStore } from '../checkpoint/kafka-checkpoint-store.js';
import type { KafkaSettings } from '../config/types.js';
import { RelayError, errorMessage } from '../errors.js';
import { BrokerConnectFailures } from './broker-connect-failures.js';
import { flushWithin, refuseIfClosed } from './closed-client.js';
import { abortKafkaJsTransaction, createRdKafkaClient, disconnectKafkaJsProducer, producerProperties, RdKafkaAdmin } from './rdkafka-client.js';
import { classifyRdKafkaError, failedWithoutCause, isFatalRdKafkaError, TRANSACTIONAL_ID_AUTHORIZATION_FAILED, UNSUPPORTED_FEATURE, type RdKafkaLikeError } from './rdkafka-errors.js';
import type { AfterAbort, CloseOptions, SinkRecord, TransactionalSink } from './sink.js';
import type { TopicCheck } from './topic-check.js';
import { groupByTopic } from './topic-messages.js';
import { epochError, isEpochError, RefusedTransactionTopics, transactionalId, transactionalIdRefused, transactionTopicRefused, withFlags } from './transaction-errors.js';

/** librdkafka's _TIMED_OUT: a transactional call (init, commit, abort) that did not finish in time and may be repeated. */
const TIMED_OUT = -185;
/** TOPIC_AUTHORIZATION_FAILED: a transactional call of a transaction the coordinator refused a topic (abortable). */
const TOPIC_AUTHORIZATION_FAILED = 29;
/** INVALID_TRANSACTION_TIMEOUT: the claim's InitProducerId asked for a transaction timeout above the brokers' transaction.max.timeout.ms. */
const INVALID_TRANSACTION_TIMEOUT = 50;
/** How long a close waits for librdkafka to abort the open transaction (the KafkaJS layer's own bound), at most. */
const CLOSE_ABORT_MS = 5000;
/** How long a close flushes the producer (the KafkaJS layer's own bound), at most. */
const DISCONNECT_FLUSH_MS = 5000;

/**
 * The exactly-once producer on librdkafka (the default client; see TransactionalSink for the contract).
 * librdkafka retries produce requests inside the transaction until kafka.deliveryTimeout, so a leader change
 * costs no abort; what it cannot hide it classifies: abortable (abort, re-send), retriable (repeat the call:
 * a commit that timed out is committed again, without a second checkpoint record), fatal (the producer is
 * replaced on abort, or let go when only a claim follows: AfterAbort). The KafkaJS-compatible API keeps its
 * transaction flag set after a failed abort, so a producer whose abort failed is replaced (or let go) too. It
 * stays on that API (a promise per record, settled at the first failed record) rather than the plain sink's native
 * produce: a failed send aborts the whole transaction, so no re-send can overtake records of it still queued.
 */
export class RdKafkaTransactionalSink implements TransactionalSink {
  private kafka: KafkaJS.Kafka | undefined;
  private admin: KafkaJS.Admin | undefined;
  private readonly adminCalls: RdKafkaAdmin;
  private producer: KafkaJS.Producer | undefined;
  private readonly topics: TopicCheck;
  private openedAtMs: number | undefined;
  /** The checkpoint already produced into the open transaction: a repeated commit must not add a second. */
  private checkpointSent: Checkpoint | undefined;
  /** Set by an error after which this producer can neither commit nor abort. */
  private unusable = false;
  /** The producer's epoch ended with its transaction older than delivery.transactionTimeout (see dropProducer). */
  private expired = false;
  /** Set once fenced: nothing more is sent until the relay claims the slot again, having found it free. */
  private fenced: RelayError | undefined;
  /** Why its client could not connect, where librdkafka logged it (a connect error says only "transport failure"). */
  private readonly failures: BrokerConnectFailures;
  /** The open transaction's abort, once one began: the error it failed with, or undefined (see causeOf). */
  private aborting: Promise<unknown> | undefined;
  /** Set by close(): a client whose connect ends after it is let go, not kept (refuseIfClosed). */
  private closed = false;
  /** The topics the coordinator refused to add to the open transaction, from the client's log. */
  private readonly refusedTopics = new RefusedTransactionTopics();

  constructor(
    private readonly config: KafkaSettings,
    private readonly slot: string,
    private readonly transactionTimeoutMs: number,
    private readonly checkpoints: KafkaCheckpointStore,
    private readonly logger: Logger,
  ) {
    this.failures = new BrokerConnectFailures(config.brokers);
    this.adminCalls = new RdKafkaAdmin(() => this.admin, this.config.brokers);
    this.topics = this.adminCalls.topics;
  }

  private properties(): KafkaJS.ProducerConstructorConfig {
    const props = producerProperties(this.config, '-txn');
    const timeout = this.transactionTimeoutMs;
    return {
      ...props,
      'transactional.id': transactionalId(this.slot),
      'transaction.timeout.ms': timeout,
      // librdkafka requires both within the transaction timeout: a record cannot outlive its transaction.
      'message.timeout.ms': Math.min(this.config.deliveryTimeoutMs, timeout),
      'socket.timeout.ms': Math.min(this.config.requestTimeoutMs, timeout),
    } as KafkaJS.ProducerConstructorConfig;
  }

  /** Reaches Kafka and the checkpoint topic; the transactional id is registered only by claim(). */
  async connect(): Promise<void> {
    try {
      await this.failures.during(async () => {
        this.kafka ??= await createRdKafkaClient(this.config, this.logger, '-txn', this.failures, this.refusedTopics.observe);
        if (!this.admin) {
          const admin = this.kafka.admin();
          await admin.connect();
          await refuseIfClosed(this.closed, () => admin.disconnect());
          this.admin = admin;
        }
        await this.checkpoints.ensureTopic();
      });
    } catch (err) {
      throw this.classify(err, false);
    }
  }

  /**
   * Registers the transactional id with a new producer at every session start: the relay calls this only once it
   * found the slot free, so the producer it fences is that of the instance which held the slot before (or this
   * instance's own, after a reconnect), and what that one left open is aborted before the checkpoint is read.
   */
  async claim(): Promise<void> {
    if (!this.kafka) throw this.notConnected();
    this.fenced = undefined;
    try {
      await this.replaceProducer();
    } catch (err) {
      throw this.classify(err, false);
    }
  }

  /**
   * Lets go of the producer without registering the id again: the next claim() opens a new one. For a transaction
   * the broker aborted after delivery.transactionTimeout, or that a new holder of the slot fenced in that window
   * (epochError cannot tell): registered again here, without the slot's lock, the id would fence that holder.
   */
  private async dropProducer(): Promise<void> {
    const old = this.producer;
    this.producer = undefined;
    this.expired = false;
    this.forgetTransaction();
    if (old) await disconnectKafkaJsProducer(old, 0);
  }

  /** A new producer, or none: nothing of the last one's transaction (its state, its abort) applies to it. */
  private forgetTransaction(): void {
    this.unusable = false;
    this.openedAtMs = undefined;
    this.checkpointSent = undefined;
    this.aborting = undefined;
    this.refusedTopics.clear();
  }

  /** A new producer: its connect() registers the transactional id, which fences older producers and aborts what they left open. */
  private async replaceProducer(): Promise<void> {
    const old = this.producer;
    this.producer = undefined;
    // The old producer is replaced because it failed: its disconnect may fail too, and the new one fences it anyway.
    await old?.disconnect().catch(() => undefined);
    const producer = this.kafka!.producer(this.properties());
    try {
      await producer.connect();
    } catch (err) {
      // The connect's error is the one to report; this only lets go of the handle.
      await producer.disconnect().catch(() => undefined);
      throw err;
    }
    await refuseIfClosed(this.closed, () => disconnectKafkaJsProducer(producer, 0));
    this.producer = producer;
    this.forgetTransaction();
  }

  private async open(): Promise<KafkaJS.Producer> {
    if (this.fenced) throw this.fenced;
    const producer = this.producer;
    if (!producer) throw this.notConnected();
    if (this.openedAtMs === undefined) {
      await producer.transaction();
      this.openedAtMs = Date.now();
      this.aborting = undefined;
      this.refusedTopics.clear();
    }
    return producer;
  }

  async send(records: readonly SinkRecord[]): Promise<void> {
    const topicMessages = groupByTopic(records);
    let producer: KafkaJS.Producer | undefined;
    try {
      await this.topics.check(topicMessages.map((t) => t.topic));
      producer = await this.open();
      await producer.sendBatch({ topicMessages });
    } catch (err) {
      // Not the topic check's refusal (producer undefined): no transaction was refused anything.
      throw this.classify(await this.causeOf(producer, err), false, producer !== undefined);
    }
  }

  async commit(checkpoint: Checkpoint): Promise<void> {
    let producer: KafkaJS.Producer | undefined;
    try {
      producer = await this.open();
      if (this.checkpointSent?.lsn !== checkpoint.lsn) {
        await producer.send({ topic: this.checkpoints.topic, messages: [this.checkpoints.message(checkpoint)] });
        this.checkpointSent = checkpoint;
      }
      await producer.commit();
      this.openedAtMs = undefined;
      this.checkpointSent = undefined;
    } catch (err) {
      throw this.classify(await this.causeOf(producer, err), true, producer !== undefined);
    }
  }

  /**
   * A record of a producer that failed says only ERR__FATAL ("Local: Fatal error") or, still queued, "Purged in
   * queue"; the producer's transactional calls fail with the error that made it unusable. That is how a transaction
   * the broker aborted after delivery.transactionTimeout shows (Kafka 4.4, librdkafka 2.15): a produce request
   * answered INVALID_PRODUCER_EPOCH makes the producer fatal (_FENCED), and its records fail with those two.
   * Classified as they are, it was an outage (KAFKA_UNAVAILABLE): the source transaction streamed again and again,
   * timing out each time, until retry.maxDuration. The abort asks: nothing of the transaction can commit any more,
   * and the engine aborts it next anyway (abort() then takes this one's outcome, as do the other failed sends).
   */
  private async causeOf(producer: KafkaJS.Producer | undefined, err: unknown): Promise<unknown> {
    if (!producer || producer !== this.producer || this.openedAtMs === undefined || !failedWithoutCause(err)) return err;
    return (await this.abortOpen(producer)) ?? err;
  }

  /** Aborts the open transaction once, however many ask: the error the abort failed with, or undefined. */
  private abortOpen(producer: KafkaJS.Producer): Promise<unknown> {
    this.aborting ??= producer.abort().then(
      () => {
        this.openedAtMs = undefined;
        this.checkpointSent = undefined;
        return undefined;
      },
      (err: unknown) => err,
    );
    return this.aborting;
  }

  async abort(next: () => AfterAbort): Promise<void> {
    if (this.fenced) throw this.fenced;
    if (this.openedAtMs === undefined && !this.unusable) return;
    try {
      if (!this.unusable && this.producer) {
        const abortError = await this.abortOpen(this.producer);
        if (abortError === undefined) return;
        const error = this.classify(abortError, false);
        if (error.code === 'PRODUCER_FENCED') throw error;
      }
      // Timed out, or fenced in the timeout's window by a new holder of the slot; or only a claim follows (the
      // session may have ended, and another instance hold the slot): let go (see dropProducer). Otherwise
      // registering the transactional id again aborts whatever this producer left open. Asked only now: the
      // session may have ended while the abort waited for the broker, and a registration decided when it began
      // fenced an instance that took the slot meanwhile.
      if (this.expired || next() === 'claim') await this.dropProducer();
      else await this.replaceProducer();
    } catch (err) {
      throw this.classify(err, false);
    }
  }

  async close(options: CloseOptions = { flush: true }): Promise<void> {
    this.closed = true;
    // Nothing is lost by a failed close: nothing of an open transaction was confirmed, and what is not aborted here
    // is aborted by the broker after delivery.transactionTimeout, or by the next claim of the transactional id. A
    // stop that gave up on Kafka does not wait for an abort that Kafka would not answer either.
    // Only this producer's own abort: registering the id again at a stop (abort()'s fallback) would fence a standby
    // that takes the slot as this instance lets go of it.
    // The abort and the flush end by the stop's closeBy: the KafkaJS layer waits a fixed 5 s for each, which a
    // coordinator that does not answer takes whole, past the watchdog when less was left (a halt that left the
    // transaction open late in the drain, or a halted relay stopped with a short grace): exit 1, SHUTDOWN_TIMEOUT.
    if (!this.fenced && options.flush && this.producer && !this.unusable && this.openedAtMs !== undefined) {
      await abortKafkaJsTransaction(this.producer, flushWithin(options, CLOSE_ABORT_MS)).catch((err: unknown) => this.logger.warn({ err: errorMessage(err) }, 'aborting the open Kafka transaction on close failed'));
    }
    const producer = this.producer && disconnectKafkaJsProducer(this.producer, flushWithin(options, DISCONNECT_FLUSH_MS));
    await Promise.allSettled([producer, this.adminCalls.disconnect(flushWithin(options, DISCONNECT_FLUSH_MS))]);
    this.producer = undefined;
    this.admin = undefined;
  }

  private notConnected(): RelayError {
    return withFlags(classifyRdKafkaError(new Error('the transactional producer is not connected')), { txnRequiresAbort: true, txnRetriable: false, txnFatal: true, ambiguous: false });
  }

  /** `inTransaction`: the error of a call of the open transaction's (a send, the checkpoint's, the commit). */
  private classify(err: unknown, committing: boolean, inTransaction = false): RelayError {
    if (err === this.fenced) return this.fenced!;
    if (isEpochError(err)) {
      const error = epochError({ slot: this.slot, openedAtMs: this.openedAtMs, timeoutMs: this.transactionTimeoutMs }, err);
      this.unusable = true;
      if (error.code === 'PRODUCER_FENCED') this.fenced = error;
      else this.expired = true;
      return error;
    }
    const flags = err as RdKafkaLikeError & { isRetriable?: boolean; isTxnRequiresAbort?: boolean };
    // What the brokers refuse at every claim alike: retried as an outage, it held the start for retry.maxDuration
    // and then gave up telling to check that the brokers are up.
    const refused = this.refusedForGood(flags.code, err);
    if (refused) return withFlags(refused, { txnRequiresAbort: false, txnRetriable: false, txnFatal: true, ambiguous: false });
    // The KafkaJS-compatible layer (1.10) builds its error from the binding's LibrdKafkaError by reading
    // `retriable`, `abortable`, `fatal`, which that error names isRetriable, isTxnRequiresAbort, isFatal: every
    // flag arrives false. What librdkafka calls retriable in a transactional call is a timeout (commit and abort
    // go on in the background and may be called again), so the code stands in for the lost flag.
    const retriable = flags.retriable === true || flags.isRetriable === true || flags.code === TIMED_OUT;
    const abortable = flags.abortable === true || flags.isTxnRequiresAbort === true;
    // Outside a transaction (connect) nothing needs aborting; inside, anything the client does not call retriable does.
    const requiresAbort = this.openedAtMs !== undefined && (abortable || !retriable);
    // A failed commit is ambiguous unless librdkafka says it must be aborted (then it was not committed).
    const ambiguous = committing && !abortable;
    // A fatal error, or a state the KafkaJS wrapper cannot leave (_STATE), only a new producer recovers from.
    if (isFatalRdKafkaError(err) || flags.code === -172) this.unusable = true;
    const refusal = flags.code === TRANSACTIONAL_ID_AUTHORIZATION_FAILED ? transactionalIdRefused(this.slot, this.config.brokers, err) : inTransaction ? this.topicRefusal(flags.code, err) : undefined;
    return withFlags(refusal ?? classifyRdKafkaError(err), { txnRequiresAbort: requiresAbort, txnRetriable: retriable, txnFatal: this.unusable, ambiguous });
  }

  /**
   * A topic's ACL refused in the transaction: the refused topics named, the checkpoint topic by its setting. The
   * checkpoint record goes in the same transaction, and a refusal of its topic was told with the fix of every
   * refusal (WRITE and DESCRIBE on "the topics"), or, its record purged and the abort fine, as "Purged in queue"
   * (an outage, no fix) like a refusal of an event topic: librdkafka names the refused topics only in its log.
   */
  private topicRefusal(code: number | undefined, err: unknown): RelayError | undefined {
    const refused = this.refusedTopics.list();
    if (code !== TOPIC_AUTHORIZATION_FAILED && !(failedWithoutCause(err) && refused.length > 0)) return undefined;
    return transactionTopicRefused(refused, this.checkpoints.topic, this.config.brokers, err);
  }

  /** A claim no retry gets past: a transaction timeout the brokers refuse, or brokers without transactions. */
  private refusedForGood(code: number | undefined, err: unknown): RelayError | undefined {
    if (code === INVALID_TRANSACTION_TIMEOUT) {
      return new RelayError('CONFIG_INVALID', `the brokers refuse delivery.transactionTimeout (${this.transactionTimeoutMs / 1000} s) for transactional id "${transactionalId(this.slot)}": ${errorMessage(err)}`, {
        cause: err,
        hint: "lower delivery.transactionTimeout to at most the brokers' transaction.max.timeout.ms, or raise that broker setting",
      });
    }
    if (code === UNSUPPORTED_FEATURE) {
      return new RelayError('CONFIG_INVALID', `the brokers do not support the Kafka transactions delivery.guarantee exactly-once needs: ${errorMessage(err)}`, {
        cause: err,
        hint: 'with these brokers (a Kafka-compatible service without transactions) set delivery.guarantee to at-least-once (--delivery-guarantee, OUTBOX_RELAY_DELIVERY_GUARANTEE); or use brokers with transactions',
      });
    }
    return undefined;
  }
}

import type { Checkpoint } from '../checkpoint/checkpoint.js';
import type { RelayError } from '../errors.js';

/**
 * The seam between the pipeline and a broker. `send` resolves once the broker acknowledged every record of the
 * batch (acks=all), or rejects with a classified error. Records within a batch keep their order per partition.
 */
export interface SinkRecord {
  topic: string;
  /** A string goes as its UTF-8 bytes. */
  key: string | Buffer | null;
  value: Buffer | null;
  headers: Record<string, string | Buffer>;
  /** Kafka record timestamp (ms since the epoch), from the mapping's event-time column; absent: the send time. */
  timestampMs?: number;
}

export interface Sink {
  /**
   * How many send() calls the delivery may have in flight at once (default 1). Above 1 the sink promises that
   * records of successive calls reach each partition in call order, that a retried call cannot overtake a later
   * one (the idempotent producer's ordering), and that a call whose records it could not all hand over (a failed
   * topic check, a record refused before sending) fails every call made before that failure was reported, none of
   * their records handed over: they are produced again after it, in order.
   */
  readonly pipelineDepth?: number;
  connect(): Promise<void>;
  /**
   * Called before every session streams, once the slot was found free, so never by a standby: a sink that must be
   * the slot's only writer takes that role here (exactly-once registers its transactional id, which fences the
   * producer of the instance that held the slot before). The start position is read after it.
   */
  claim?(): Promise<void>;
  send(records: readonly SinkRecord[]): Promise<void>;
  /**
   * `flush: false` (a stop whose grace ran out before Kafka acknowledged everything): what is still queued is given
   * up, not waited for; none of it was confirmed, so it is sent again after the restart.
   */
  close(options?: CloseOptions): Promise<void>;
}

/** The sink of at-least-once and at-most-once, on either client. */
export interface PlainSink extends Sink {
  /**
   * Asks the brokers now (nothing cached) for the metadata of `topics`: resolves when every partition of each has a
   * leader, else rejects with a classified error; one request per topic, each bounded by the client's timeout.
   * At-most-once asks it while idle in an outage that dropped batches, where no batch comes to show Kafka is back.
   */
  checkLeaders(topics: Iterable<string>): Promise<void>;
  /**
   * Resolves once each of `topics` exists (the brokers are asked once per topic, as before its first produce);
   * else rejects with a classified error: TOPIC_NOT_FOUND naming the topic, or why Kafka could not say.
   * At-most-once asks it before a hand-off, while a refusal can still meet the poison policy.
   */
  checkTopics(topics: Iterable<string>): Promise<void>;
  /**
   * Whether `topic` was found to exist (by checkTopics or a send's own check) and no send was refused for it as
   * missing since: at-most-once asks checkTopics about the others only, deciding so on its hand-off path.
   */
  knowsTopic(topic: string): boolean;
  /**
   * Tells `lost` when the producer became unusable with no send to report it: librdkafka asks for the idempotent
   * producer's id as soon as the producer exists, and a refusal (no IdempotentWrite grant, brokers without idempotence)
   * is fatal, hours before the first event may come. The sink has let go of that producer; `check` resolves once a new
   * one would get its id, else rejects with the classified error. Delivery counts it as a failed send (its outage).
   */
  watchLost?(lost: (error: RelayError, check: () => Promise<void>) => void): void;
}

export interface CloseOptions {
  flush: boolean;
  /**
   * When the stop must be over (ms since the epoch): Relay's closeBy, the deadline the replication connection's close
   * and the last checkpoint write get too. A sink's flush ends by then, however long its own bound (5 s): after a
   * drain that took the grace it outlasted the shutdown watchdog (exit 1, SHUTDOWN_TIMEOUT). The transactional sink's
   * abort of a transaction left open ends by then too.
   */
  closeBy?: number;
}

/**
 * What follows an abort (TransactionalSink.abort): 'produce', more records of the session on this producer (a probe
 * after a refused record): a producer that is unusable, or whose abort failed, is replaced, and registering the
 * transactional id again aborts what it left open. 'claim', nothing before the next claim() (everything uncommitted
 * was dropped: the source restarts, or the session ended, its slot's lock released, and another instance may hold
 * the slot now, whose producer a registration would fence): such a producer is let go, and the claim registers the
 * id under the lock, aborting what it left open.
 *
 * The sink asks (`next()`) only once the abort failed or found the producer unusable, right before it replaces or
 * lets go of the producer, not when the abort begins: an abort waits for the broker (up to the request timeout when
 * it does not answer), and the session may end meanwhile.
 */
export type AfterAbort = 'produce' | 'claim';

/**
 * The exactly-once contract (one implementation per client). `send` opens a Kafka transaction when none is open;
 * `commit` adds the checkpoint record to it and commits, so a read_committed consumer sees the events and the
 * checkpoint together or not at all; `abort` drops the open transaction (and replaces or lets go of the producer
 * when it is unusable: AfterAbort). `claim` registers the transactional id of the slot, which fences older
 * producers and aborts what they left open; `connect` only reaches Kafka, so a standby fences nobody. Errors are
 * RelayErrors: PRODUCER_FENCED (another producer registered the id: nothing more of this one commits),
 * KAFKA_TXN_TIMEOUT (the broker aborted a transaction older than delivery.transactionTimeout), record errors,
 * otherwise retriable; `details` carries the TransactionFlags (transaction-errors.ts) telling whether to retry the
 * call, abort, and whether a failed commit may have committed.
 */
export interface TransactionalSink extends Sink {
  claim(): Promise<void>;
  commit(checkpoint: Checkpoint): Promise<void>;
  abort(next: () => AfterAbort): Promise<void>;
}

import type { AckTracker, SourceTransaction } from '../checkpoint/ack-tracker.js';
import type { RelayError } from '../errors.js';
import type { Lsn } from '../lsn.js';
import type { OutboxEvent } from '../route/event.js';

export interface DeliveryLimits {
  maxInFlightEvents: number;
  maxInFlightBytes: number;
  batchMaxEvents: number;
  batchMaxBytes: number;
  /** A batch that is not full waits this long after its oldest event arrived, for more (0: sent at once). */
  coalesceMs: number;
}

/**
 * What the poison policy decided for a record Kafka will never accept: `skip` means it was dealt with
 * (dead-lettered); `stopped`, that delivery stopped first and nothing was decided (the event is read again);
 * `halt` halts on the event's error, `{ halt }` on the policy's own (a dead letter that could not be written).
 */
export type PoisonDecision = 'skip' | 'halt' | 'stopped' | { halt: RelayError };

/**
 * Delivery's Kafka outage as the poison policy's produce requests meet it (DeliveryCallbacks.poison): a request
 * Kafka leaves unanswered and one it refuses are attempts of the same outage as the engine's own, whichever came
 * first, so the outage has one start line, one end line and one retry.maxDuration bound.
 */
export interface KafkaWatch {
  /** Resolves or rejects as `sending` does, watched meanwhile for a broker that never answers it (kafka.deliveryTimeout). */
  send<T>(sending: Promise<T>): Promise<T>;
  /**
   * Kafka refused a request with a retriable error: an attempt of the outage, and its backoff. False once delivery
   * stopped, or when the outage lasted retry.maxDuration: the policy then halts on its own error.
   */
  backOff(error: RelayError): Promise<boolean>;
}

/** `count` events of one source transaction and topic that may be confirmed (`skipped`: dealt with by the poison policy, no record). */
export interface Receipt {
  txn: SourceTransaction;
  topic: string;
  count: number;
  bytes: number;
  skipped: boolean;
}

/** A replication session, as the delivery knows it: the tracker that confirms its transactions. */
export type SessionId = AckTracker;

export interface DeliveryCallbacks {
  /**
   * These events may count as delivered for the acknowledgement rule (when depends on the guarantee). `latencyMs`:
   * the produce round trip, undefined when none was timed (a row the poison policy dealt with). at-most-once's
   * hand-offs count through handOff.
   */
  delivered(receipts: readonly Receipt[], latencyMs: number | undefined): void;
  /**
   * The seam for dead-letter policies: called once per record that cannot be produced; `stop` aborts when delivery
   * stops. Each produce request of the policy goes through `kafka.send`, and each one Kafka refused with a
   * retriable error through `kafka.backOff` before the next: its trouble with Kafka is delivery's outage.
   */
  poison(event: OutboxEvent, error: RelayError, stop: AbortSignal, kafka: KafkaWatch): Promise<PoisonDecision>;
  /** Delivery stopped for good: a halt decision, or the broker unreachable for longer than retry.maxDuration. */
  stopped(error: RelayError): void;
  /** The in-flight window has room again after being full (only while the session is open). */
  windowOpen(): void;
  /** Kafka is unavailable (a failed produce, or no answer within kafka.deliveryTimeout): the first call of an outage logs it. */
  retrying(error: RelayError, attempt: number, delayMs: number): void;
  /**
   * Kafka rejected `event`; it is produced again after `delayMs` (retry.recordMaxAttempts / recordMaxDuration).
   * `spent`: what follows when the retries are spent, the poison policy or (exactly-once, which cannot
   * dead-letter inside a Kafka transaction) the halt.
   */
  recordRetrying(event: OutboxEvent, error: RelayError, attempt: number, delayMs: number, spent: 'poison policy' | 'halt'): void;
  recovered(downMs: number, attempts: number): void;
  /** at-most-once: Kafka refused a batch that was already confirmed; it is lost, by that mode's contract. */
  dropped(count: number, error: RelayError): void;
  /**
   * The delivery dropped what it had not committed (an aborted Kafka transaction cannot be re-sent from memory):
   * the source must stream again from the last committed checkpoint. `attempt`: the restart is one attempt of a
   * retry already told of (`retrying`'s Kafka outage, a transaction the broker timed out during it included, or
   * `recordRetrying`); false for a fence and for a transaction too long for the Kafka transaction timeout.
   */
  restartSource(error: RelayError, attempt: boolean): void;
  /**
   * exactly-once: Kafka acknowledged a produce into the open Kafka transaction. Nothing counts as delivered before
   * its commit, which waits for the source transaction's; this says the pipeline moves meanwhile (the in-flight
   * gauges, and /healthz, which took one long source transaction for a wedged relay).
   */
  progressed(): void;
  /**
   * at-most-once, before a batch goes to Kafka: counts `receipts` as delivered and reports that position to
   * PostgreSQL; resolves true once PostgreSQL holds it, false when it cannot be shown to (the session ended first).
   * The batch (`events`) is sent only after true; after false it is withheld, never sent: the relay resumes before
   * it, and the next session streams it again unless PostgreSQL took its position after all. `decidedThrough`: the
   * end of the last of its transactions with an event the poison policy dealt with before the hand-off (its dead
   * letter written): the relay resumes no earlier, so that none meets the policy twice.
   */
  handOff(receipts: readonly Receipt[], events: readonly OutboxEvent[], decidedThrough: Lsn | undefined): Promise<boolean>;
  /** A session can still report a position (its replication connection is open): at-most-once hands nothing off without one. */
  positionReportable(): boolean;
}

/** What waits between the decoder and Kafka, as the probes and the metrics read it. */
export interface InFlightState {
  events: number;
  bytes: number;
  /** See Delivery.windowFullMs and windowFullSinceMs. */
  windowFullMs: number;
  windowFullSinceMs: number | undefined;
}

/**
 * What the source pushes events into. The session lifecycle is explicit: the relay opens a session, pushes its
 * events and commits in stream order, and ends it; events of an ended or discarded session are refused.
 */
export interface Delivery {
  readonly inFlightEvents: number;
  readonly inFlightBytes: number;
  /**
   * at-most-once: those of inFlightEvents whose position PostgreSQL holds and that Kafka has not acknowledged. No
   * session streams them again: unsent when the relay exits, they are lost. Absent, or 0, under the other guarantees.
   */
  readonly positionHeldEvents?: number;
  /** Time the window was full in total, in ms: the source read nothing meanwhile (Kafka set the pace). */
  readonly windowFullMs: number;
  /** Since when the window has been full (Date.now() ms), undefined while the source may read. */
  readonly windowFullSinceMs: number | undefined;
  openSession(session: SessionId): void;
  /**
   * The current session's events are still taken (a full window only holds them back): false once its intake ended,
   * delivery stopped, or (exactly-once) everything uncommitted was dropped and the source is to stream again. Then
   * nothing more of an open source transaction reaches Kafka, and a stop need not read it to its commit.
   */
  readonly accepting: boolean;
  /** Takes an event; false when the window is full (or the session no longer takes events): stop reading. */
  push(event: OutboxEvent): boolean;
  /** The source transaction's Commit arrived: no more events of it follow. */
  committed(txn: SourceTransaction): void;
  /** No more events of `session` follow; what it left incomplete is dropped (exactly-once: aborted). */
  endSession(session: SessionId): void;
  /**
   * The current session streamed past its start (a transaction to its commit, a keepalive beyond the start), or
   * for its receive timeout plus retry.maxDelay on an idle server: where the relay ends its own session outage. The
   * relay starts a session only once Kafka answered its start (exactly-once: the claim of the transactional id and
   * the checkpoint read), so with nothing left to produce or commit this ends exactly-once's Kafka outage, which
   * otherwise only a commit ends; not when the session started (`startLsn`) at or below a transaction an abort
   * dropped, which it streams again.
   */
  sourceProgressed(startLsn: Lsn): void;
  /** Resolves when nothing is left to produce, acknowledge or commit (or delivery stopped). */
  whenIdle(): Promise<void>;
  /**
   * A stop begins: no session follows. Delivery goes on for what was handed over, but a wait that ends only in a
   * source restart (exactly-once's backoff after it dropped everything uncommitted, and the retries of its abort)
   * ends now, and from now on at once, without the restart, so whenIdle does not wait for it: what was dropped
   * streams again at the next start, from the checkpoint. Resolves once the current session's events are taken no
   * more (accepting false): a stop reading the open source transaction to its commit ends its intake then, as none
   * of it can be confirmed any more once exactly-once dropped it (a failure during that read).
   */
  drain(): Promise<void>;
  /** Stops sending and retrying at once (shutdown's grace period ran out, or the relay gave up). */
  stop(): void;
}

export type CreateDelivery = (callbacks: DeliveryCallbacks) => Delivery;

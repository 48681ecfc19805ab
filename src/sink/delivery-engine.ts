import type { SourceTransaction } from '../checkpoint/ack-tracker.js';
import type { Guarantee } from '../config/guarantee-config.js';
import type { KafkaSettings, RetryPolicy } from '../config/types.js';
import { DEAD_LETTER_ALTERNATIVE, RelayError } from '../errors.js';
import { formatLsn, maxLsn, type Lsn } from '../lsn.js';
import type { OutboxEvent } from '../route/event.js';
import { namedEvent } from '../route/logged-id.js';
import { backoffDelay, sleep } from '../retry.js';
import type { Delivery, DeliveryCallbacks, DeliveryLimits, Receipt, SessionId } from './delivery.js';
import { InFlightWindow } from './in-flight-window.js';
import { classifyKafkaError, isCollateral, isIncurable, isRecordError, namingRefusedTopics } from './kafka-errors.js';
import { bytesOf, receiptsOf } from './receipts.js';
import { RecordRetries } from './record-retry.js';
import type { AfterAbort, PlainSink, TransactionalSink } from './sink.js';
import { transactionFlags } from './transaction-errors.js';

/** One produce request on its way: settled when Kafka answered. */
interface Flight {
  batch: OutboxEvent[];
  sentAt: number;
  settled: boolean;
  error?: RelayError;
  /** at-most-once: waiting for PostgreSQL to hold its position; Kafka has not seen it (no stall of Kafka's). */
  awaitingPosition?: boolean;
  /**
   * at-most-once: never sent, its position not shown to be held before the session ended: the next session on the
   * slot streams it again, unless PostgreSQL took the position after all (then it is lost). Never sent twice.
   */
  withheld?: boolean;
}

/** Delivery's Kafka outage under way. */
interface Outage {
  since: number;
  attempts: number;
  /** at-most-once: the topics of the batches it dropped, which checkKafka() asks about. */
  dropped?: Set<string>;
  /** at-most-once: the error of the batch dropped last, while nothing more is handed off (handOffsHeld). */
  holding?: RelayError;
  /** A checkKafka() loop runs for it. */
  checking?: boolean;
  /** The sink lost its producer while idle (PlainSink.watchLost): resolves once a new one would be usable. */
  check?: () => Promise<void>;
}

/** exactly-once: what producing a refused request's events one by one found (DeliveryEngine.probe). */
type Probe = { refused: OutboxEvent; error: RelayError } | { accepted: true } | { failed: RelayError };

/**
 * exactly-once: how often a probe is tried when an attempt fails for another reason than a refused record. One
 * such reason is librdkafka's own: an abort purges the partitions' queues without waiting for the broker threads
 * ("Purging queues with flags queue,non-blocking"), and a record produced at once after the abort was purged with
 * it ("Local: Purged in queue", seen in the first probe of every run of the relay.poison test).
 */
const PROBE_ATTEMPTS = 3;

/** How a guarantee produces: plainly, or inside Kafka transactions that carry the checkpoint (exactly-once). */
export type Producing = { guarantee: 'at-least-once' | 'at-most-once'; sink: PlainSink } | { guarantee: 'exactly-once'; sink: TransactionalSink; slot: string };

export interface EngineOptions {
  producing: Producing;
  limits: DeliveryLimits;
  retry: RetryPolicy;
  /** A produce request unanswered this long is an outage (a hung broker), reported like a failed one. */
  stallTimeoutMs: number;
  callbacks: DeliveryCallbacks;
  /** kafka.brokers: the printed grant of a topic's refusal (namingRefusedTopics) needs them to run as printed. */
  brokers: KafkaSettings['brokers'];
}

/** How often a pending produce request is checked against the stall timeout. */
const STALL_CHECK_MS = 1000;

/**
 * The largest batch, in events and bytes: delivery.batchMaxEvents and batchMaxBytes, and at most half the window
 * over the batches kept in flight. A full window reopens at half (InFlightWindow); batches that small leave
 * `depth` of them in flight at that moment, so Kafka keeps working while the relay reads again. With the defaults'
 * 900 KiB batches in a 2 MiB window, two batches filled it and it reopened only once both were acknowledged:
 * Kafka idled while the relay read, decoded and produced the next ones.
 */
export function batchLimits(limits: DeliveryLimits, depth: number): { events: number; bytes: number } {
  return {
    events: Math.max(1, Math.min(limits.batchMaxEvents, Math.floor(limits.maxInFlightEvents / (2 * depth)))),
    bytes: Math.min(limits.batchMaxBytes, Math.floor(limits.maxInFlightBytes / (2 * depth))),
  };
}


/**
 * The one delivery engine behind every guarantee: the bounded in-flight window, batching, several produce
 * requests in flight (as many as the sink keeps in order), retries with backoff, record isolation, the poison
 * policy and the session lifecycle. The guarantees differ only in how a batch is produced and when its events
 * count as delivered:
 * - at-least-once: when Kafka acknowledged the batch and every earlier one. A failed batch and every batch
 *   behind it are re-sent in order (duplicates, never gaps).
 * - at-most-once: before the hand-off, once the position covering it reached PostgreSQL; only whole source
 *   transactions are handed off (unless one fills the window), and a failed batch is dropped.
 * - exactly-once: at the commit of the Kafka transaction that holds the batch and a checkpoint record. Events
 *   leave the window once produced; what waits for the commit is a count per transaction. Anything uncommitted
 *   cannot be re-sent from memory: a failure aborts it and the source streams again from the checkpoint.
 */
export class DeliveryEngine implements Delivery {
  /** Events from `head` on wait to be sent; the slots before it were taken by batches and hold nothing. */
  private queue: (OutboxEvent | undefined)[] = [];
  private head = 0;
  /** Batches behind a failed one, re-sent in order before anything new. */
  private held: OutboxEvent[][] = [];
  private flights: Flight[] = [];
  private readonly window: InFlightWindow;
  private readonly depth: number;
  /** The largest batch: batchLimits(). */
  private readonly batchMaxEvents: number;
  private readonly batchMaxBytes: number;
  private session: SessionId | undefined;
  /** The current session still takes events. */
  private intake = false;
  /** A sequential step runs (recovery, poison policy, commit, abort): nothing new is launched meanwhile. */
  private busy = false;
  private dead = false;
  private scheduled = false;
  /** When the oldest queued event not yet in a batch arrived (coalescing). */
  private waitingSince = 0;
  private coalesceTimer: NodeJS.Timeout | undefined;
  private idleWaiters: (() => void)[] = [];
  /** drain()'s callers, told once the current session's events are taken no more (accepting turned false). */
  private refusingWaiters: (() => void)[] = [];
  private outage: Outage | undefined;
  private stallTimer: NodeJS.Timeout | undefined;
  /** When the send outside the flights still waiting started (a re-send, a record alone, a dead letter). */
  private soloSince: number | undefined;
  /** at-most-once: the transaction whose events still queued were counted as delivered at an earlier hand-off. */
  private countedAhead: SourceTransaction | undefined;
  /** at-most-once: unmappable events the poison policy skipped before any of their transaction was handed off (decideAhead). */
  private readonly decidedAhead = new Set<OutboxEvent>();
  /** at-most-once: the end of the last transaction of the next hand-off with such an event (Session.handOff's passedIfWithheld). */
  private decidedThrough: Lsn | undefined;
  /** at-most-once: the newest committed transaction found to hold no undecided unmappable event (undecidedAhead). */
  private checkedAhead: SourceTransaction | undefined;
  /** at-most-once: the newest committed transaction whose topics the sink all knows to exist (unvettedAhead). */
  private vettedAhead: SourceTransaction | undefined;
  private readonly abort = new AbortController();
  /**
   * exactly-once: aborted once no source restart follows (a stop's drain, or delivery stopped). The backoff before a
   * restart (discard, fenced, refusedRetry) and the retries of discard's abort wait on it: what waits there dropped
   * everything uncommitted, nothing of it is left to drain, and a stop that waited it out met the grace period
   * instead (whenIdle waits for it). A refused record's isolation ends on it too (isolating).
   */
  private readonly restartWait = new AbortController();
  private readonly recordRetries: RecordRetries;
  private readonly callbacks: DeliveryCallbacks;
  /** The sink lost its producer while nothing was in flight (producerLost), until step() takes it up. */
  private lost: { error: RelayError; check: () => Promise<void> } | undefined;
  /** at-least-once: the ended session a refused record of whose unfinished transaction was dropped unconfirmed (poison): nothing more of it is produced. */
  private abandoned: SessionId | undefined;
  /** The transaction of the newest event handed to the sink. */
  private lastLaunched: SourceTransaction | undefined;
  /** exactly-once: what the open Kafka transaction holds, acknowledged at its commit. */
  private uncommitted: Receipt[] = [];
  private uncommittedSince = 0;
  private launchedSinceCommit = false;
  private checkpointFloor: Lsn = 0n;
  /** exactly-once: the commit time of the checkpoint at checkpointFloor, written with it while the floor wins (a replay below it). */
  private floorCommitTimeMs: number | undefined;
  /** exactly-once: the source transaction whose Kafka transaction the broker last timed out. */
  private timedOut: Lsn | undefined;
  /** exactly-once: the fences met since the last commit, when the first and the last of them were (see fenced()). */
  private fences: { since: number; last: number; count: number } | undefined;
  /**
   * exactly-once: the newest commit LSN of the source transactions dropped uncommitted since the last commit: a
   * session that starts at or below it streams them again, and only their commit ends the outage (sourceProgressed).
   */
  private resendUpTo: Lsn | undefined;

  constructor(private readonly options: EngineOptions) {
    this.callbacks = options.callbacks;
    this.window = new InFlightWindow(options.limits);
    this.recordRetries = new RecordRetries(options.retry);
    // At-most-once confirms before each hand-off, which only holds in order with one request at a time.
    this.depth = options.producing.guarantee === 'at-most-once' ? 1 : Math.max(1, options.producing.sink.pipelineDepth ?? 1);
    ({ events: this.batchMaxEvents, bytes: this.batchMaxBytes } = batchLimits(options.limits, this.depth));
    if (options.producing.guarantee !== 'exactly-once') options.producing.sink.watchLost?.((error, check) => this.producerLost(error, check));
  }

  get inFlightEvents(): number {
    return this.window.events;
  }

  get inFlightBytes(): number {
    return this.window.bytes;
  }

  /** at-most-once: handed off and not yet answered, or the queued rest of a transaction counted whole at an earlier hand-off. */
  get positionHeldEvents(): number {
    if (this.guarantee !== 'at-most-once') return 0;
    // A flight still awaiting its position is not handed off: withheld if the session ends first.
    let events = this.flights.reduce((n, flight) => (flight.settled || flight.awaitingPosition ? n : n + flight.batch.length), 0);
    for (let i = this.head; i < this.queue.length && this.queue[i]!.txn === this.countedAhead; i++) events++;
    return events;
  }

  get windowFullMs(): number {
    return this.window.fullMs;
  }

  get windowFullSinceMs(): number | undefined {
    return this.window.fullSinceMs;
  }

  /** Without a coalescing window (the rdkafka default) nothing on the hot path reads the clock for it. */
  private get coalesceMs(): number {
    return this.options.limits.coalesceMs;
  }

  private get guarantee(): Guarantee {
    return this.options.producing.guarantee;
  }

  /** Why a produce of `batch` failed: a topic-ACL refusal names the batch's topics (Kafka's answer names none). */
  private produceFailure(err: unknown, batch: readonly OutboxEvent[]): RelayError {
    return namingRefusedTopics(classifyKafkaError(err), batch, this.options.brokers);
  }

  /** exactly-once: checkpoints are never written below the one streaming started from (committed at `commitTimeMs`). */
  startFrom(checkpoint: Lsn, commitTimeMs?: number): void {
    if (checkpoint <= this.checkpointFloor) return;
    this.checkpointFloor = checkpoint;
    this.floorCommitTimeMs = commitTimeMs;
  }

  openSession(session: SessionId): void {
    this.session = session;
    this.intake = true;
    this.lastLaunched = undefined;
  }

  push(event: OutboxEvent): boolean {
    if (this.dead || !this.intake || event.txn.tracker !== this.session) return false;
    if (this.coalesceMs > 0 && this.head === this.queue.length) this.waitingSince = Date.now();
    this.queue.push(event);
    this.schedule();
    return this.window.enter(event.size);
  }

  committed(txn: SourceTransaction): void {
    if (txn.tracker === this.session) this.schedule();
  }

  endSession(session: SessionId): void {
    if (session !== this.session || !this.intake) return;
    this.closeIntake();
    this.dropIncompleteTail();
    this.schedule();
  }

  /**
   * exactly-once: a restart after an aborted transaction may find nothing to send again (the ambiguous commit went
   * through, or the outbox is idle); no commit follows then, and left to commit() the outage stayed open (/readyz
   * 503) until the next outbox event. Only while nothing is queued, in flight or uncommitted: events still pending
   * (an event topic without a leader while the checkpoint topic answers the session's start) keep the outage and
   * its retry.maxDuration bound running across restarts.
   */
  sourceProgressed(startLsn: Lsn): void {
    // Transactions dropped by the abort and streamed again from the start: their events may not have arrived yet
    // (a large one reaches the relay only once PostgreSQL decoded it to its commit, while its keepalives pass the
    // start). Ended then, the outage ended at every restart and its retry.maxDuration bound never ran out.
    if (this.resendUpTo !== undefined && startLsn <= this.resendUpTo) return;
    if (this.guarantee === 'exactly-once' && !this.dead && this.idle) this.outageOver();
  }

  get accepting(): boolean {
    return this.intake && !this.dead;
  }

  whenIdle(): Promise<void> {
    if (this.dead || this.idle) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  drain(): Promise<void> {
    this.restartWait.abort();
    if (!this.accepting) return Promise.resolve();
    return new Promise((resolve) => this.refusingWaiters.push(resolve));
  }

  stop(): void {
    if (this.dead) return;
    this.dead = true;
    this.shutDown();
  }

  private get idle(): boolean {
    return !this.busy && this.flights.length === 0 && this.held.length === 0 && this.head >= this.queue.length && !this.uncommittedWork;
  }

  /** exactly-once: something was produced (or dealt with by the poison policy) that no commit covers yet. */
  private get uncommittedWork(): boolean {
    return this.guarantee === 'exactly-once' && (this.launchedSinceCommit || this.uncommitted.length > 0);
  }

  /** Deferred, so that every event decoded from the same socket read joins one batch. */
  private schedule(): void {
    if (this.scheduled || this.dead) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.step();
    });
  }

  /** Decides what happens next; called after every change. */
  private step(): void {
    if (this.dead || this.busy) return;
    while (this.flights[0]?.settled && !this.flights[0].error) this.sent(this.flights.shift()!);
    // Nothing new goes out behind a failed request, even while one before it is still in flight: it would reach
    // Kafka ahead of the failed one's re-send. Once all have answered, the first failed one is at the head.
    if (this.flights.some((f) => f.error)) {
      if (this.flights.every((f) => f.settled)) this.sequential(() => this.recover());
      return;
    }
    if (this.guarantee === 'exactly-once' && this.flights.length === 0) {
      if (!this.intake && this.lastLaunched && this.lastLaunched.endLsn === undefined) {
        const error = new RelayError('PG_STREAM_FAILED', 'the replication session ended inside a source transaction', { retriable: true });
        return this.sequential(() => this.discard(error, false));
      }
      if (this.atCommitBoundary()) return this.sequential(() => this.commit());
    }
    // Once the session ended, what no hand-off counted is not handed off where its position cannot reach PostgreSQL
    // first, nor into an outage whose hand-offs are held (handOffsHeld): the next session streams it again.
    if (this.guarantee === 'at-most-once' && !this.intake && this.head < this.queue.length && (this.outage?.holding || !this.callbacks.positionReportable())) this.dropUnreportable();
    if (this.guarantee === 'at-most-once' && this.flights.length === 0) {
      // Held, the question waits for the leader check (checkKafka) like the hand-off it comes before.
      const topics = this.handOffsHeld() ? undefined : this.unvettedAhead(this.head);
      if (topics) return this.sequential(() => this.vet(topics));
      const unmappable = this.undecidedAhead(this.head);
      if (unmappable) return this.sequential(() => this.decideAhead(unmappable));
    }
    const lost = this.lost;
    this.lost = undefined;
    if (lost && this.idle) return this.sequential(() => this.lostWhileIdle(lost.error, lost.check));
    const holding = this.handOffsHeld();
    while (!holding && this.flights.length < this.depth) {
      if (this.held.length === 0 && this.coalescing()) break;
      const batch = this.nextBatch();
      if (!batch) break;
      if (this.abandon(batch)) continue;
      if (batch[0]!.error) return this.sequential(() => this.unmappable(batch[0]!));
      this.launch(batch);
    }
    if ((holding || this.idle) && (this.outage?.dropped || this.outage?.check) && !this.outage.checking) void this.checkKafka(this.outage);
    if (this.idle) this.wakeIdle();
  }

  /**
   * at-most-once, after Kafka refused a batch for a reason other than its records: nothing more is handed off while
   * the session lasts until Kafka may take it (checkKafka). Each hand-off confirms its position first, so one into
   * an outage is a loss: with 2 of 3 brokers down for 45 s (`npm run faults`), the relay with kafkajs went on handing
   * off batches that failed, and dropped 110,876 of the 153,097 events committed in the run (4,223 now). Held, the
   * events wait unconfirmed in the window, which holds the source back: the WAL waits in PostgreSQL. What goes next
   * holds one source transaction (nextBatch). Once the session ended (a stop, a lost connection), what no hand-off
   * counted is dropped unconfirmed instead (step()), and the next session streams it again; the rest of a
   * transaction counted at an earlier hand-off goes (its position reached PostgreSQL: it is never streamed again).
   */
  private handOffsHeld(): boolean {
    return this.guarantee === 'at-most-once' && this.intake && this.outage?.holding !== undefined;
  }

  /**
   * A batch that is not full waits until its oldest event is delivery.coalesce old, so that at low rates several
   * source transactions share one produce request. Nothing waits once no more events can come: the session ended,
   * or the window is full.
   */
  private coalescing(): boolean {
    const waiting = this.queue.length - this.head;
    if (this.coalesceMs === 0 || waiting === 0 || waiting >= this.batchMaxEvents || !this.intake || this.window.closed) return false;
    const remainingMs = this.waitingSince + this.coalesceMs - Date.now();
    if (remainingMs <= 0) return false;
    this.coalesceTimer ??= setTimeout(() => {
      this.coalesceTimer = undefined;
      this.step();
    }, remainingMs);
    return true;
  }

  private sequential(work: () => Promise<unknown>): void {
    this.busy = true;
    work().then(
      () => {
        this.busy = false;
        this.step();
      },
      (err: unknown) => this.fail(err instanceof RelayError ? err : new RelayError('INTERNAL', `delivery failed: ${String(err)}`, { cause: err })),
    );
  }

  /** exactly-once: everything produced since the last commit ends with a complete source transaction, and nothing of it is still queued. */
  private atCommitBoundary(): boolean {
    const last = this.lastLaunched;
    if (!this.launchedSinceCommit || !last || last.endLsn === undefined) return false;
    return this.peek()?.txn !== last;
  }

  private peek(): OutboxEvent | undefined {
    return this.held[0]?.[0] ?? this.queue[this.head];
  }

  private nextBatch(): OutboxEvent[] | undefined {
    if (this.held.length > 0) return this.held.shift();
    // exactly-once: a batch after a complete transaction waits for the commit, so commits happen between batches.
    if (this.guarantee === 'exactly-once' && this.atCommitBoundary()) return undefined;
    const { batchMaxEvents, batchMaxBytes } = this;
    const start = this.head;
    let bytes = 0;
    while (this.head < this.queue.length && this.head - start < batchMaxEvents) {
      const next = this.queue[this.head]!;
      // An unmappable row goes through the poison policy alone, once everything before it was produced.
      const unmappable = this.undecided(next);
      if (unmappable && (this.head > start || this.flights.length > 0)) break;
      // At-most-once hands off whole source transactions, so a crash never re-sends part of one; but not one that
      // alone keeps the window closed to the source (the batch begins in it): it would otherwise never be read to its
      // commit (closed until half empty, and nothing leaves it: a stall with nothing in flight). Behind committed
      // ones it waits: they go first, and their leaving may reopen the window (before, a closed window let any
      // transaction through, and a small one behind a window Kafka had filled went out in part before its commit).
      if (this.guarantee === 'at-most-once' && next.txn.endLsn === undefined && !(this.window.closed && next.txn === this.queue[start]!.txn)) break;
      // Nor one whose unmappable row's policy has not run, or with a topic not yet vetted: that runs first
      // (undecidedAhead, unvettedAhead). And in an outage that dropped a batch, one source transaction at a time: a
      // hand-off that tries whether Kafka takes requests again loses what it holds if not (metadata can name leaders
      // that are down: a broker without a controller quorum keeps its stale view), so it holds as little as can be
      // confirmed alone.
      // Nor after the rest of a transaction counted at an earlier hand-off: PostgreSQL holds its end, so it goes even
      // if the hand-off is withheld (Session.handOff checks a batch's own position, its last transaction's end).
      // Batched with the next transaction, whose position the session could end before PostgreSQL held, it was
      // withheld with it and lost: the next session starts past it.
      if (this.guarantee === 'at-most-once' && this.head > start && next.txn !== this.queue[this.head - 1]!.txn && (this.queue[this.head - 1]!.txn === this.countedAhead || this.outage?.dropped || this.undecidedAhead(this.head) || this.unvettedAhead(this.head))) break;
      if (this.head > start && bytes + next.size > batchMaxBytes) break;
      bytes += next.size;
      this.head++;
      if (unmappable) break;
    }
    if (this.head === start) return undefined;
    if (this.guarantee === 'exactly-once') this.head = this.lastTransactionEnd(start);
    let batch = this.queue.slice(start, this.head) as OutboxEvent[];
    // Skipped already, and counted (decideAhead): not produced.
    if (this.decidedAhead.size > 0) {
      batch = batch.filter((event) => {
        if (!this.decidedAhead.delete(event)) return true;
        this.decidedThrough = maxLsn(this.decidedThrough ?? 0n, event.txn.endLsn!);
        return false;
      });
    }
    // The batch holds its events from here on. Left in the queue until the next compaction (up to 4,096 slots),
    // they would outlive their acknowledgement: 32 MiB of payloads with 8 KiB events, past the 2 MiB window.
    this.queue.fill(undefined, start, this.head);
    // What stays queued arrived while this batch filled: it waits a full window from now at most.
    if (this.coalesceMs > 0) this.waitingSince = Date.now();
    if (this.head > 4096 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    return batch.length > 0 ? batch : this.nextBatch();
  }

  /** An unmappable row whose poison policy has not run yet. */
  private undecided(event: OutboxEvent): boolean {
    return event.error !== undefined && !this.decidedAhead.has(event);
  }

  /**
   * at-most-once: the first undecided unmappable event of the committed transaction whose first queued event is at
   * `index`, if none of that transaction was handed off yet. Its policy runs before any of it is: handed off up to the
   * unmappable row and then halted there, the transaction was streamed again at the restart and its first events
   * sent twice (the position stops before a transaction not wholly delivered).
   */
  private undecidedAhead(index: number): OutboxEvent | undefined {
    const txn = this.queue[index]?.txn;
    if (!txn || txn.endLsn === undefined || txn === this.lastLaunched || txn === this.countedAhead || txn === this.checkedAhead) return undefined;
    for (let i = index; i < this.queue.length && this.queue[i]!.txn === txn; i++) {
      if (this.undecided(this.queue[i]!)) return this.queue[i];
    }
    this.checkedAhead = txn;
    return undefined;
  }

  /** at-most-once: the poison policy of an unmappable event before its transaction's hand-off; skipped, it is not produced. */
  private async decideAhead(event: OutboxEvent): Promise<void> {
    if (await this.poison(event, event.error!, attemptsOf(event.error!))) this.decidedAhead.add(event);
  }

  /**
   * at-most-once: the topics of the events from `index` to the end of its transaction (as far as it is queued)
   * that Kafka was not asked about yet, if that stretch is about to be handed off (a committed transaction, or
   * part of one that alone keeps the window closed: nextBatch). A hand-off confirms its position before Kafka sees
   * it, so a record refused for its topic was dropped with its whole batch, past the poison policy; asked first,
   * the policy meets it in its place (vet). Only a refusal the broker alone knows of (a topic's smaller
   * max.message.bytes) still drops a batch.
   */
  private unvettedAhead(index: number): Set<string> | undefined {
    const txn = this.queue[index]?.txn;
    // The rest of a transaction counted at an earlier hand-off goes whatever Kafka says now: its position reached
    // PostgreSQL, and all of it was asked about before that hand-off (it was committed).
    if (!txn || txn === this.vettedAhead || txn === this.countedAhead || (txn.endLsn === undefined && !this.window.closed)) return undefined;
    let topics: Set<string> | undefined;
    for (let i = index; i < this.queue.length && this.queue[i]!.txn === txn; i++) {
      const event = this.queue[i]!;
      if (!event.error && !this.plain().knowsTopic(event.topic)) (topics ??= new Set()).add(event.topic);
    }
    if (!topics && txn.endLsn !== undefined) this.vettedAhead = txn;
    return topics;
  }

  /**
   * at-most-once: asks Kafka whether `topics` exist before any event for them is handed off. Nothing is confirmed
   * meanwhile: when Kafka cannot say, the question is this outage's (its backoff, its retry.maxDuration), and a
   * session that ends meanwhile leaves what is queued to the next one (dropped unconfirmed, streamed again).
   */
  private async vet(topics: Set<string>): Promise<void> {
    for (const topic of topics) {
      for (;;) {
        let error: RelayError;
        try {
          await this.watched(this.plain().checkTopics([topic]));
          break;
        } catch (err) {
          error = classifyKafkaError(err);
        }
        if (this.dead) return;
        if (isRecordError(error)) return this.refusedAhead(topic, error);
        if (!this.intake) return this.dropUnreportable();
        if (!(await this.backOff(error, (this.outage?.attempts ?? 0) + 1))) return;
      }
    }
  }

  /**
   * at-most-once: Kafka refused `topic` (missing, or an invalid name) before any event for it was handed off.
   * Retried as a refused record is (retry.recordMax*, counted on the first such event); then each event for it up
   * to its transaction's end meets the poison policy in its place, as an unmappable row does (undecidedAhead),
   * before its position is confirmed: a halt leaves it to the restart, a dead letter or a skip lets the rest go.
   */
  private async refusedAhead(topic: string, error: RelayError): Promise<void> {
    const txn = this.queue[this.head]?.txn;
    const refused: OutboxEvent[] = [];
    for (let i = this.head; i < this.queue.length && this.queue[i]!.txn === txn; i++) {
      const event = this.queue[i]!;
      if (!event.error && event.topic === topic) refused.push(event);
    }
    // None left: the session ended while Kafka was asked, and dropped the transaction's tail it will never commit.
    const first = refused[0];
    if (!first) return;
    const step = this.recordRetries.next(first);
    if (step.delayMs !== undefined) {
      this.callbacks.recordRetrying(first, error, step.attempts, step.delayMs, 'poison policy');
      await sleep(step.delayMs, this.abort.signal);
      return;
    }
    const spent = new RelayError(error.code, error.message, { cause: error.cause, hint: error.hint, retriable: error.retriable, details: { ...error.details, attempts: step.attempts } });
    for (const event of refused) event.error = spent;
    // Found to hold no unmappable event when it was scanned before (nextBatch): it holds some now.
    if (this.checkedAhead === txn) this.checkedAhead = undefined;
  }

  /**
   * exactly-once: where a batch of queue[start, head) ends so that a commit can follow it: after the last event of
   * the last source transaction it completes, if it completes one; else (a transaction larger than a batch) at
   * `head`. Cut by size alone, a batch of a steady stream of large transactions rarely ended on a transaction's
   * end, and without one there is no commit (atCommitBoundary): the Kafka transaction grew until
   * delivery.transactionTimeout aborted it, again and again, and the relay halted with KAFKA_TXN_TIMEOUT.
   */
  private lastTransactionEnd(start: number): number {
    const next = this.queue[this.head];
    const last = this.queue[this.head - 1]!;
    // Ends one already: the next event is another transaction's, or the queue holds all of a committed one.
    if (next ? next.txn !== last.txn : last.txn.endLsn !== undefined) return this.head;
    for (let end = this.head - 1; end > start; end--) {
      if (this.queue[end - 1]!.txn !== this.queue[end]!.txn) return end;
    }
    return this.head;
  }

  private launch(batch: OutboxEvent[]): void {
    const flight: Flight = { batch, sentAt: Date.now(), settled: false };
    this.flights.push(flight);
    this.lastLaunched = batch.at(-1)!.txn;
    if (!this.launchedSinceCommit) this.uncommittedSince = flight.sentAt;
    this.launchedSinceCommit = true;
    this.armStallCheck();
    const sending = this.guarantee === 'at-most-once' ? this.handOff(flight) : this.options.producing.sink.send(batch);
    sending.then(
      () => this.settle(flight),
      (err: unknown) => this.settle(flight, this.produceFailure(err, batch)),
    );
  }

  /**
   * at-most-once: the events count as delivered, and that position reaches PostgreSQL, before Kafka sees them.
   * A committed transaction larger than a batch counts whole at its first batch: counted batch by batch, the
   * position would pass it only at its last, and a crash before that would send its first batches again.
   */
  private async handOff(flight: Flight): Promise<void> {
    const batch = flight.batch;
    const ahead = this.countedAhead;
    const receipts = receiptsOf(ahead ? batch.filter((e) => e.txn !== ahead) : batch);
    const last = batch.at(-1)!.txn;
    if (last !== ahead) this.countedAhead = this.countAhead(last, receipts);
    // Counted before Kafka sees them, and sent only once PostgreSQL holds the position: written to the socket, it
    // was not yet PostgreSQL's, and a relay killed then sent the batch again from the older position (2 and 6 events
    // twice in two runs of `npm run faults`). A session that ends first never sends it: not sent twice.
    const decided = this.decidedThrough;
    this.decidedThrough = undefined;
    flight.awaitingPosition = true;
    const held = await this.callbacks.handOff(receipts, batch, decided);
    flight.awaitingPosition = false;
    if (!held) {
      flight.withheld = true;
      return;
    }
    flight.sentAt = Date.now();
    this.armStallCheck();
    await this.options.producing.sink.send(batch);
  }

  /**
   * at-most-once: adds the still queued rest of `txn`, if it is committed, to `receipts`; returns `txn` when it
   * did. Not with an unmappable row in the rest: the poison policy counts that one itself (a halt must stop
   * before it), so such a transaction counts batch by batch.
   */
  private countAhead(txn: SourceTransaction, receipts: Receipt[]): SourceTransaction | undefined {
    if (txn.endLsn === undefined) return undefined;
    let end = this.head;
    while (end < this.queue.length && this.queue[end]!.txn === txn) {
      if (this.undecided(this.queue[end]!)) return undefined;
      end++;
    }
    if (end === this.head) return undefined;
    receiptsOf((this.queue.slice(this.head, end) as OutboxEvent[]).filter((event) => !this.decidedAhead.has(event)), false, receipts);
    return txn;
  }

  private settle(flight: Flight, error?: RelayError): void {
    flight.settled = true;
    flight.error = error;
    this.step();
  }

  /** Kafka acknowledged a batch and every earlier one (at-most-once: or the hand-off withheld it). */
  private sent(flight: Pick<Flight, 'batch' | 'sentAt' | 'withheld'>): void {
    const latencyMs = Date.now() - flight.sentAt;
    // exactly-once delivers nothing before the commit: an acknowledged produce followed by a commit that keeps
    // failing is one outage, its backoff growing to retry.maxDuration (commit() ends it, or sourceProgressed()
    // with nothing left to commit), not one per session.
    if (this.guarantee !== 'exactly-once' && !flight.withheld) this.outageOver();
    const receipts = receiptsOf(flight.batch);
    if (this.guarantee === 'at-least-once') this.callbacks.delivered(receipts, latencyMs);
    else if (this.guarantee === 'exactly-once') this.uncommitted.push(...receipts);
    this.leave(flight.batch.length, bytesOf(flight.batch));
    if (this.guarantee === 'exactly-once') this.callbacks.progressed();
  }

  /** An event the poison policy dealt with: it counts as delivered without a record. */
  private skipped(event: OutboxEvent): void {
    const receipts = receiptsOf([event], true);
    if (this.guarantee === 'exactly-once') this.uncommitted.push(...receipts);
    else this.callbacks.delivered(receipts, undefined);
    this.leave(1, event.size);
  }

  private leave(count: number, bytes: number): void {
    if (this.window.leave(count, bytes) && this.intake) this.callbacks.windowOpen();
  }

  /** The head request failed and every request behind it has answered. */
  private async recover(): Promise<void> {
    const flights = this.flights;
    this.flights = [];
    const failed = flights[0]!;
    const error = failed.error!;
    if (this.guarantee === 'at-most-once') {
      for (const flight of flights) {
        if (flight.error) this.dropped(flight.batch, flight.error);
        else this.sent(flight);
      }
      // Not held and asked about after a backoff as an outage: each hand-off meanwhile would lose another batch.
      const incurable = flights.find((flight) => flight.error && isIncurable(flight.error));
      if (incurable) this.fail(incurable.error!);
      return;
    }
    if (this.guarantee === 'exactly-once') return this.transactionFailed(error, failed.batch);
    // Batches behind the failed one may have been written already; re-sending them after it keeps commit order.
    // Up to the last one Kafka refused a record of, they are re-sent here, one at a time, so that a refused one is
    // isolated in its turn: held and re-sent whole, it was refused again (with librdkafka a second producer
    // replaced, and the batches behind it cut off again) before its isolation.
    let refused = 0;
    flights.forEach((flight, i) => {
      if (flight.error && isRecordError(flight.error)) refused = i;
    });
    this.held = [...flights.slice(refused + 1).map((f) => f.batch), ...this.held];
    if (!(await this.retry(failed.batch, error))) return;
    for (const flight of flights.slice(1, refused + 1)) {
      // Stopped meanwhile (a shutdown, the stall check's RETRIES_EXHAUSTED): nothing more is produced or decided.
      if (this.dead) return;
      const again = flight.error && isRecordError(flight.error) ? flight.error : await this.resend(flight.batch);
      if (again && !(await this.retry(flight.batch, again))) return;
    }
  }

  /** at-least-once: produces `batch` again with backoff until Kafka takes it; false when delivery stopped. */
  private async retry(batch: OutboxEvent[], firstError: RelayError): Promise<boolean> {
    // A request that failed only because another one did (collateral: cut off when the sink replaced the producer
    // another request broke, say with a record the broker refused) says nothing about Kafka: re-sent once at once,
    // it starts no outage (a warn line, not ready, its end logged). Once only: failing again, it backs off as any.
    let error: RelayError | undefined = isCollateral(firstError) ? await this.resend(batch) : firstError;
    for (let attempt = 1; error; attempt++) {
      if (isRecordError(error)) return this.isolate(batch, error);
      if (!(await this.backOff(error, attempt))) return false;
      error = await this.resend(batch);
    }
    return true;
  }

  /** Produces `batch` alone, watched: undefined once Kafka took it, else why not. */
  private async resend(batch: OutboxEvent[]): Promise<RelayError | undefined> {
    if (this.abandon(batch)) return undefined;
    const sentAt = Date.now();
    try {
      await this.watched(this.options.producing.sink.send(batch));
      this.sent({ batch, sentAt });
      return undefined;
    } catch (err) {
      return this.produceFailure(err, batch);
    }
  }

  private async produceAlone(event: OutboxEvent): Promise<boolean> {
    // Stopped meanwhile (between the records of a refused batch, after a record retry's wait): nothing more is sent.
    if (this.dead) return false;
    if (this.abandon([event])) return true;
    const error = await this.resend([event]);
    return error === undefined || this.retry([event], error);
  }

  /** A batch with a record Kafka rejected: produce one by one, in order, so that only that record meets the poison policy. */
  private async isolate(batch: OutboxEvent[], error: RelayError): Promise<boolean> {
    if (batch.length > 1) {
      for (const event of batch) this.recordRetries.refusedWithOthers(event);
      for (const event of batch) if (!(await this.produceAlone(event))) return false;
      return true;
    }
    const event = batch[0]!;
    const step = this.recordRetries.next(event);
    if (step.delayMs !== undefined) {
      this.callbacks.recordRetrying(event, error, step.attempts, step.delayMs, 'poison policy');
      await sleep(step.delayMs, this.abort.signal);
      return this.produceAlone(event);
    }
    return this.poison(event, error, step.attempts);
  }

  /**
   * at-least-once: `batch` is of the session abandoned at a refused record it dropped (poison), behind that record: it
   * leaves the window unsent and unconfirmed, and its session's successor streams it again after the record. Sent, it
   * reached its partition ahead of the record.
   */
  private abandon(batch: readonly OutboxEvent[]): boolean {
    if (this.abandoned === undefined || batch[0]!.txn.tracker !== this.abandoned) return false;
    this.leave(batch.length, bytesOf(batch));
    return true;
  }

  /** A row that could not be turned into a record: it would fail the same way every time, so the policy applies at once. */
  private async unmappable(event: OutboxEvent): Promise<void> {
    this.lastLaunched = event.txn;
    if (!this.launchedSinceCommit) this.uncommittedSince = Date.now();
    this.launchedSinceCommit = true;
    await this.poison(event, event.error!, attemptsOf(event.error!));
  }

  /** `error` as the error of `event`: its id, commit LSN and topic in the message and the details. */
  private eventError(event: OutboxEvent, error: RelayError, extra: { hint?: string; attempts?: number } = {}): RelayError {
    const destination = event.topic ? ` to topic "${event.topic}"` : '';
    return new RelayError(error.code, `cannot produce ${namedEvent(event.eventId)} (commit LSN ${formatLsn(event.txn.commitLsn)})${destination}: ${error.message}`, {
      cause: error,
      hint: extra.hint ?? error.hint,
      details: { ...error.details, eventId: event.eventId, lsn: formatLsn(event.txn.commitLsn), topic: event.topic, ...(extra.attempts === undefined ? {} : { attempts: extra.attempts }) },
    });
  }

  private async poison(event: OutboxEvent, error: RelayError, attempts: number): Promise<boolean> {
    // at-least-once, the event's session ended (or a stop ended its intake) inside its transaction: the Commit never
    // comes, so nothing confirms the transaction, and the next session or start streams it again. Its dead letter now
    // was one too many: a refusal that passed meanwhile (a topic created) sent the event to its topic then, and to the
    // dead-letter topic too. Dropped unconfirmed instead, with the rest of its session behind it (abandon: the rest of
    // that transaction), streamed again after it. A committed transaction is confirmed by the drain: its policy runs.
    if (this.guarantee === 'at-least-once' && event.txn.endLsn === undefined && (event.txn.tracker !== this.session || !this.intake)) {
      this.abandoned = event.txn.tracker;
      this.leave(1, event.size);
      return true;
    }
    const poisoned = this.eventError(event, error, { attempts });
    // A dead letter is a produce too: a broker that never answers it or refuses it is this outage like any other.
    // Each of its requests is watched, not the policy as a whole: watched as one, a dead letter Kafka refused at
    // every attempt for longer than the stall timeout was also counted as unanswered.
    const decision = await this.callbacks.poison(event, poisoned, this.abort.signal, {
      send: (sending) => this.watched(sending),
      // The policy halts on its own error once the outage is spent: the halt names the event and its dead letter.
      backOff: async (refused) => !this.outageSpent() && this.backOff(refused, (this.outage?.attempts ?? 0) + 1),
    });
    if (decision === 'stopped') return false;
    if (decision !== 'skip') return this.fail(decision === 'halt' ? poisoned : decision.halt);
    // A dead letter Kafka took after a wait the stall check counted as an outage ends it: left open until the
    // next batch's acknowledgement, an idle outbox kept the relay not ready, and the outage's old start made the
    // next failure after retry.maxDuration a RETRIES_EXHAUSTED at its first attempt. (exactly-once: commit() ends it.)
    if (this.guarantee !== 'exactly-once') this.outageOver();
    this.skipped(event);
    return true;
  }

  /** at-most-once: the batch was confirmed before the hand-off; Kafka refused it, so it is lost (that mode's contract). */
  private dropped(batch: OutboxEvent[], error: RelayError): void {
    this.outage ??= { since: Date.now(), attempts: 0 };
    this.outage.attempts++;
    this.outage.dropped ??= new Set();
    // Refused for its records (too large, a topic that does not exist), it says nothing of the brokers.
    if (!isRecordError(error)) this.outage.holding = error;
    // The sink forgot the topic: a transaction found ahead to need no question (nextBatch looks one past a batch)
    // is asked about again before its hand-off, or it was confirmed and dropped on the answer Kafka just took back.
    if (error.code === 'TOPIC_NOT_FOUND') this.vettedAhead = undefined;
    for (const event of batch) this.outage.dropped.add(event.topic);
    this.callbacks.dropped(batch.length, error);
    this.leave(batch.length, bytesOf(batch));
  }

  /**
   * The sink lost its producer with nothing in flight to report it (PlainSink.watchLost: a producer id refused for a
   * missing IdempotentWrite grant): an idle relay stayed ready and silent, and the first event, maybe hours later,
   * met the refusal. Now it is a failed send's at once, when it happens: the outage's warn line with the fix, not
   * ready, retries_total. Only while idle: a send under way or to come meets the sink's new producer and reports
   * what it finds there.
   */
  private producerLost(error: RelayError, check: () => Promise<void>): void {
    if (this.dead || !this.idle) return;
    this.lost = { error, check };
    this.schedule();
  }

  /**
   * The lost producer's failure is an attempt of the outage; after its backoff, checkKafka asks whether a new one is
   * usable. A stop cuts the backoff short (restartWait): nothing waits in it to be drained.
   */
  private async lostWhileIdle(error: RelayError, check: () => Promise<void>): Promise<void> {
    if (!(await this.backOff(error, (this.outage?.attempts ?? 0) + 1, this.restartWait.signal))) return;
    if (this.outage) this.outage.check = check;
  }

  /**
   * An outage with nothing in flight, which no acknowledged batch is coming to end: Kafka is asked again after each
   * backoff of the outage (its attempts, its debug lines, its retry.maxDuration bound), and with an idle outbox its
   * answer ends the outage. Asked: whether a producer the sink lost while idle would be usable again (Outage.check),
   * only while the outbox stays idle; and, at-most-once, in an outage that dropped batches, whether every partition
   * of the dropped batches' topics has a leader again. With events held (handOffsHeld) the question waits a backoff
   * first: partitions that have a leader can still refuse every request (min.insync.replicas not met), and each
   * hand-off would lose a batch. Its answer lets the held events go, and the next batch's own answer ends or
   * continues the outage. Only an acknowledged batch ended such an outage before (sent()), and none came: the relay
   * stayed not ready with no end line, and the outage's old start made a later stall or dead letter give up at its
   * first attempt.
   */
  private async checkKafka(outage: Outage): Promise<void> {
    outage.checking = true;
    // A lost producer's check only while idle: once events come, their sends find out (on the sink's new producer).
    const current = () => !this.dead && this.outage === outage && this.flights.length === 0 && (outage.dropped !== undefined || this.idle);
    try {
      if (outage.holding && !this.idle && !(await this.backOff(outage.holding, outage.attempts))) return;
      for (let attempts = outage.attempts; current(); attempts = outage.attempts) {
        try {
          if (outage.dropped) await this.plain().checkLeaders(outage.dropped);
          await outage.check?.();
        } catch (err) {
          // "No such topic" too, though it may mean a topic deleted under the relay (then RETRIES_EXHAUSTED after
          // retry.maxDuration): taken for an answer (a5d4b63), the full suite of 13f763f once saw the relay ready after
          // a broker restart and its next events never delivered, cause not shown; a broker that just restarted may answer so.
          if (!current() || !(await this.backOff(classifyKafkaError(err), outage.attempts + 1))) return;
          continue;
        }
        if (!current() || outage.attempts !== attempts) return;
        if (this.idle) this.outageOver();
        else outage.holding = undefined;
        return;
      }
    } finally {
      outage.checking = false;
      // Left with the outage open (a batch went or was dropped meanwhile, or the held events go now): step() goes on.
      this.schedule();
    }
  }

  /** exactly-once: a produce failed inside the open Kafka transaction. */
  private async transactionFailed(error: RelayError, batch: OutboxEvent[]): Promise<void> {
    if (isRecordError(error)) return this.recordRefused(error, batch);
    await this.discard(error, true);
  }

  /**
   * exactly-once: Kafka refused a record of `batch`, which fails the whole request and the open transaction
   * (aborted: nothing of it committed). The halt must name the refused event, since its commit LSN is what an
   * operator skips past with `slot advance`, and the request's first event may belong to a good transaction before
   * it. So a batch of several events is produced again one event per request, in a probe transaction that is
   * aborted whatever it finds, up to the first one Kafka refuses. A record cannot be dead-lettered or skipped inside
   * the transaction, so the relay halts either way.
   */
  private async recordRefused(error: RelayError, batch: OutboxEvent[]): Promise<void> {
    const aborted = this.isolating ? await this.abortTransaction(error, this.afterIsolationAbort, this.restartWait.signal) : 'stopped';
    const probe = aborted === 'stopped' ? undefined : aborted !== 'aborted' ? { failed: aborted } : batch.length === 1 ? { refused: batch[0]!, error } : await this.probe(batch, error);
    // The session ended or a stop began before the record was found (isolating): dropped and aborted as discard
    // drops a failed transaction, it streams again at the next start, whose isolation finds the record. The
    // refusal was an attempt of that record all the same, which a session that follows counts (no session follows
    // a stop).
    if (!probe) {
      if (this.dead) return;
      if (!this.restartWait.signal.aborted) this.recordRetries.refusedUnfound(batch);
      await this.discard(error, this.intake);
      return;
    }
    // Fenced meanwhile (the abort, or the probe): another instance took the slot's transactional id and aborted
    // this transaction. A fence as any other: it halted here with the record's code, and a fix naming no record.
    if ('failed' in probe && probe.failed.code === 'PRODUCER_FENCED') {
      this.dropUncommitted(true);
      return this.fenced(probe.failed, true);
    }
    const fix = (error.hint ?? 'fix the record or its topic').replace(DEAD_LETTER_ALTERNATIVE, '');
    const hint = `${fix} (exactly-once: the relay cannot dead-letter or skip a record Kafka refused inside a transaction, whatever delivery.onPoison says; nothing of the transaction was committed)`;
    if ('refused' in probe) {
      const step = this.recordRetries.nextAcrossRestarts(probe.refused);
      if (step.delayMs !== undefined) return this.refusedRetry(probe.refused, probe.error, step.attempts, step.delayMs);
      this.fail(this.eventError(probe.refused, probe.error, { hint, attempts: step.attempts }));
      return;
    }
    const first = batch[0]!;
    const last = batch.at(-1)!;
    const outcome = 'failed' in probe ? `they could not be produced again one by one (${probe.failed.message})` : 'produced again one per request, none was refused';
    const tooLargeTogether = 'accepted' in probe && error.code === 'RECORD_TOO_LARGE' ? '; each alone fits, so the request as a whole exceeded the limit: lower delivery.batchMaxBytes below the topic’s max.message.bytes' : '';
    this.fail(
      new RelayError(error.code, `Kafka refused a record of the produce request holding ${namedEvent(first.eventId)} (commit LSN ${formatLsn(first.txn.commitLsn)}) to ${namedEvent(last.eventId)} (commit LSN ${formatLsn(last.txn.commitLsn)}), ${batch.length} in all; ${outcome}: ${error.message}`, {
        cause: error,
        hint: `${hint}${tooLargeTogether}; a slot advance past one of them passes over every source transaction before it too`,
        details: { ...error.details, firstEventId: first.eventId, firstLsn: formatLsn(first.txn.commitLsn), lastEventId: last.eventId, lastLsn: formatLsn(last.txn.commitLsn) },
      }),
    );
  }

  /**
   * exactly-once: Kafka refused `event` (a topic not created yet, a limit not raised yet), and the transaction that
   * held it is aborted: retried as the other guarantees retry a refused record (retry.recordMax*, then the halt),
   * by streaming again from the checkpoint after the backoff, since the abort took the events before it too. Not an
   * outage: the brokers answered. (Until 2026-12-06 the first refusal halted: a missing topic its operator created a
   * moment later left the relay halted until a restart.)
   */
  private async refusedRetry(event: OutboxEvent, error: RelayError, attempts: number, delayMs: number): Promise<void> {
    this.dropUncommitted(true);
    // A stop began (restartWait), possibly during the abort the record was found by: no restart follows, and the
    // next start streams the transaction again. Logged, the retry line promised a retry that never came.
    if (this.restartWait.signal.aborted) return;
    this.callbacks.recordRetrying(event, error, attempts, delayMs, 'halt');
    await sleep(delayMs, this.restartWait.signal);
    this.restart(error, true);
  }

  /**
   * exactly-once: a refused record is isolated in this session (its aborts register the transactional id again
   * when the producer is unusable, AfterAbort 'produce', and the probe produces again): only while the session goes
   * on and a stop has not begun. Once it ended, its slot's lock was released, and the registration fenced an
   * instance that may hold the slot by then; during a stop no session follows that could use what the probe finds,
   * and the stop waited for the probe and the aborts' retries until the grace period ended.
   */
  private get isolating(): boolean {
    return this.intake && !this.restartWait.signal.aborted;
  }

  /**
   * What follows an abort of the isolation (AfterAbort), asked by the sink when it must replace or let go of the
   * producer, and so at each of the abort's retries: a produce while isolating, else only a claim. Decided when the
   * abort began, an abort that waited for the broker while the session ended, or a retry of it after that, still
   * registered the transactional id without the slot's lock.
   */
  private readonly afterIsolationAbort = (): AfterAbort => (this.isolating ? 'produce' : 'claim');

  /**
   * Produces `batch` one event per request until Kafka refuses one (a record error), in a transaction aborted
   * after; again, after a backoff, when an attempt failed otherwise, up to PROBE_ATTEMPTS times. Undefined once
   * isolating no more: recordRefused drops and aborts what the probe left.
   */
  private async probe(batch: OutboxEvent[], cause: RelayError): Promise<Probe | undefined> {
    for (let attempt = 1; ; attempt++) {
      const probe = await this.probeOnce(batch);
      if (!probe || !this.isolating) return undefined;
      const aborted = await this.abortTransaction(cause, this.afterIsolationAbort, this.restartWait.signal);
      if (aborted === 'stopped') return undefined;
      if (aborted !== 'aborted') return { failed: aborted };
      if (!('failed' in probe) || attempt === PROBE_ATTEMPTS) return probe;
      await sleep(backoffDelay(this.options.retry, attempt - 1), this.restartWait.signal);
    }
  }

  private async probeOnce(batch: OutboxEvent[]): Promise<Probe | undefined> {
    for (const event of batch) {
      if (!this.isolating) return undefined;
      try {
        await this.watched(this.transactional().sink.send([event]));
      } catch (err) {
        const error = this.produceFailure(err, [event]);
        return isRecordError(error) ? { refused: event, error } : { failed: error };
      }
    }
    return { accepted: true };
  }

  /** exactly-once: commits the open Kafka transaction with the checkpoint of its newest source transaction. */
  private async commit(): Promise<void> {
    const last = this.lastLaunched!;
    const lsn = maxLsn(this.checkpointFloor, last.endLsn!);
    // Below the floor (a replay), the record keeps the floor's position and so its commit time too.
    const commitTimeMs = lsn === last.endLsn ? last.commitTimeMs : this.floorCommitTimeMs;
    const { sink, slot } = this.transactional();
    for (let attempt = 1; ; attempt++) {
      try {
        await sink.commit({ slot, lsn, commitTimeMs, writtenAtMs: Date.now(), guarantee: 'exactly-once' });
        break;
      } catch (err) {
        const error = classifyKafkaError(err);
        // librdkafka says when a commit may simply be retried; anything else (ambiguous included) aborts, and
        // the checkpoint read before the next session tells whether the commit happened after all.
        if (!transactionFlags(error).txnRetriable) return this.discard(error, true);
        if (!(await this.backOff(error, attempt))) return;
      }
    }
    this.outageOver();
    this.checkpointFloor = lsn;
    this.floorCommitTimeMs = commitTimeMs;
    this.resendUpTo = undefined;
    this.timedOut = undefined;
    this.fences = undefined;
    const receipts = this.uncommitted;
    this.uncommitted = [];
    this.launchedSinceCommit = false;
    this.callbacks.delivered(receipts, Date.now() - this.uncommittedSince);
  }

  /**
   * exactly-once: drops everything not committed (queued, produced, the open Kafka transaction) and aborts;
   * with `restart`, the source is told to stream again from the checkpoint (a session that ended restarts anyway).
   */
  private async discard(error: RelayError, restart: boolean): Promise<void> {
    const first = this.uncommitted[0]?.txn ?? this.lastLaunched;
    // A transaction the broker timed out while Kafka failed meanwhile (a coordinator outage that outlasted it, the
    // commit retried all along) is that outage's doing, not the source transaction's length: retried as the
    // outage (backoff, retry.maxDuration), not counted toward the halt. Counted, an outage twice the timeout long
    // halted exactly-once with KAFKA_TXN_TIMEOUT, telling to raise delivery.transactionTimeout.
    const tooLong = error.code === 'KAFKA_TXN_TIMEOUT' && !this.outage;
    if (tooLong && first) {
      if (this.timedOut === first.commitLsn) {
        this.fail(
          new RelayError('KAFKA_TXN_TIMEOUT', `the source transaction at commit LSN ${formatLsn(first.commitLsn)} takes longer to produce than the Kafka transaction timeout, twice in a row: ${error.message}`, {
            cause: error,
            hint: 'raise delivery.transactionTimeout (at most the brokers’ transaction.max.timeout.ms), or produce large source transactions in at-least-once mode',
          }),
        );
        await this.abortTransaction(error, onlyClaim);
        return;
      }
      this.timedOut = first.commitLsn;
    }
    this.dropUncommitted(restart);
    // The failed call may say so itself, or only the abort: librdkafka fails the queued records of a fenced
    // producer as purged, an error like any other. An abort that fails is retried only while a session may follow
    // (restartWait): the transaction confirms nothing, and a stop that waited for its retries met the grace period;
    // the broker's transaction timeout, or the next claim of the transactional id, aborts it. Only a claim follows
    // (the session may have ended already, the slot's lock released): an unusable producer is let go.
    const aborted = error.code === 'PRODUCER_FENCED' ? error : await this.abortTransaction(error, onlyClaim, this.restartWait.signal);
    if (aborted === 'stopped') return;
    if (aborted !== 'aborted') return await this.fenced(aborted, restart);
    if (!restart) return;
    // The brokers answered: a source transaction too long for the Kafka transaction timeout is no outage (no backoff,
    // /readyz stays ready); it streams again at once, once (the second time halts, above).
    if (tooLong) return this.restart(error, false);
    if (await this.backOff(error, (this.outage?.attempts ?? 0) + 1, this.restartWait.signal)) this.restart(error, true);
  }

  /**
   * exactly-once, after dropUncommitted(true) and a wait on restartWait: the source streams again from the
   * checkpoint, unless no session follows (a stop's drain, or delivery stopped).
   */
  private restart(error: RelayError, attempt: boolean): void {
    if (!this.restartWait.signal.aborted) this.callbacks.restartSource(error, attempt);
  }

  /** exactly-once: forgets everything not committed; with `restart`, takes nothing more until the source streams again. */
  private dropUncommitted(restart: boolean): void {
    const dropped = [this.uncommitted.at(-1)?.txn, this.held.at(-1)?.at(-1)?.txn, this.queue.at(-1)?.txn, this.lastLaunched].map((txn) => txn?.commitLsn ?? 0n);
    const newest = dropped.reduce(maxLsn);
    if (newest > 0n) this.resendUpTo = maxLsn(this.resendUpTo ?? 0n, newest);
    if (restart) this.closeIntake();
    this.queue = [];
    this.head = 0;
    this.held = [];
    this.uncommitted = [];
    this.launchedSinceCommit = false;
    this.lastLaunched = undefined;
    this.window.clear();
  }

  /**
   * exactly-once, fenced: another producer registered the slot's transactional id and aborted what this one left
   * open. Not an outage (one warn line per fence, from the relay): after a backoff the source restarts, and the
   * next session checks the slot again: it waits as a standby while another instance holds it, or claims the slot
   * again. Relays of this build claim only while they hold the slot's lock (source/slot-lock.ts), so a fence comes
   * from a producer that does not take it (an earlier build, another program given the id); it may go on while
   * that one restarts, so only fences that go on for retry.maxDuration without a commit halt: two relays that take
   * the id from each other for good. A fence longer than that after the one before starts the count anew: two
   * isolated fences with an idle outbox between them (nothing to commit) are not a fight over the id.
   */
  private async fenced(error: RelayError, restart: boolean): Promise<void> {
    const now = Date.now();
    if (this.fences && now - this.fences.last >= this.options.retry.maxDurationMs) this.fences = undefined;
    this.fences ??= { since: now, last: now, count: 0 };
    this.fences.last = now;
    this.fences.count++;
    if (now - this.fences.since >= this.options.retry.maxDurationMs) {
      this.fail(
        new RelayError('PRODUCER_FENCED', `fenced ${this.fences.count} times in ${Math.round((now - this.fences.since) / 1000)} s without committing anything: ${error.message}`, {
          cause: error,
          hint: 'two relays keep registering the same transactional id (outbox-relay.<slot>), each holding a slot of that name: relays on different PostgreSQL servers, or a relay of an earlier build (which registers the id at its start) beside this one; give each server its own slot name, or stop the other relay',
        }),
      );
      return;
    }
    if (!restart) return;
    await sleep(backoffDelay(this.options.retry, this.fences.count - 1), this.restartWait.signal);
    this.restart(error, false);
  }

  /**
   * Aborts the open Kafka transaction (`next`: what follows it, see AfterAbort), retrying with backoff until `signal`
   * is aborted (delivery's stop, or what the caller passes): 'stopped' then, and when delivery stopped (Kafka gone
   * too long); the PRODUCER_FENCED error when this producer was fenced, which leaves nothing to abort (the instance
   * that fenced it aborted its transaction).
   */
  private async abortTransaction(cause: RelayError, next: () => AfterAbort, signal = this.abort.signal): Promise<'aborted' | 'stopped' | RelayError> {
    let error = cause;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.transactional().sink.abort(next);
        return this.dead ? 'stopped' : 'aborted';
      } catch (err) {
        error = classifyKafkaError(err);
        if (this.dead) return 'stopped';
        if (error.code === 'PRODUCER_FENCED') return error;
      }
      if (signal.aborted || !(await this.backOff(error, attempt, signal))) return 'stopped';
    }
  }

  /** Drops queued events of a source transaction whose Commit will never arrive (its session ended). */
  private dropIncompleteTail(): void {
    let cut = this.queue.length;
    while (cut > this.head && this.queue[cut - 1]!.txn.endLsn === undefined) cut--;
    this.dropQueuedFrom(cut);
  }

  /**
   * at-most-once, once the session ended and its connection can report no position: a hand-off now would reach
   * Kafka with its position unknown to PostgreSQL, and a crash before the next session's first report would send
   * it again. What is queued is dropped instead, neither counted nor sent: the next session streams it again from
   * the confirmed position. Only the rest of a transaction counted at an earlier hand-off still goes (its position
   * reached PostgreSQL: it is never streamed again).
   */
  private dropUnreportable(): void {
    let keep = this.head;
    while (keep < this.queue.length && this.queue[keep]!.txn === this.countedAhead) keep++;
    this.dropQueuedFrom(keep);
  }

  /** Drops the queued events from `index` on, which no batch took (nothing counted them). */
  private dropQueuedFrom(index: number): void {
    if (index >= this.queue.length) return;
    // An event decided ahead left the window when it was skipped.
    const dropped = (this.queue.splice(index) as OutboxEvent[]).filter((event) => !this.decidedAhead.delete(event));
    this.window.leave(dropped.length, bytesOf(dropped));
  }

  /** Starts or continues an outage; false (and delivery stops) once it lasted retry.maxDuration. */
  private beginRetry(error: RelayError, attempt: number): boolean {
    this.outage ??= { since: Date.now(), attempts: 0 };
    this.outage.attempts = Math.max(this.outage.attempts, attempt);
    if (!this.outageSpent()) return true;
    // An outage the stall check opened counts no failed attempt (the request was never answered): no count then.
    const attempts = this.outage.attempts > 0 ? ` (${this.outage.attempts} attempts)` : '';
    // The fix is the failure's own (a missing grant names it): the exit line is the one line every exit leaves, and
    // "check the brokers" alone sent the reader to brokers that were up and refusing the relay's principal.
    return this.fail(
      new RelayError('RETRIES_EXHAUSTED', `Kafka unavailable for ${Math.round((Date.now() - this.outage.since) / 1000)} s${attempts}: ${error.message}`, {
        cause: error,
        hint: `${error.hint ?? 'check the brokers'}; the relay exits so that it is restarted, and resumes from the last confirmed position`,
      }),
    );
  }

  /**
   * Attempt `attempt` of an outage failed: waits the backoff, which `signal` cuts short (delivery's stop; restartWait
   * before a source restart); false once delivery stopped (retry.maxDuration ran out, or no retry mends it).
   */
  private async backOff(error: RelayError, attempt: number, signal = this.abort.signal): Promise<boolean> {
    if (isIncurable(error)) return this.fail(error);
    // No retry follows (a stop's drain cut restartWait): logged, it began an outage ("retrying") that never ended.
    if (signal.aborted) return false;
    if (!this.beginRetry(error, attempt)) return false;
    const delay = backoffDelay(this.options.retry, attempt - 1);
    this.callbacks.retrying(error, attempt, delay);
    await sleep(delay, signal);
    return !this.dead;
  }

  /** The outage under way lasted retry.maxDuration. */
  private outageSpent(): boolean {
    return this.outage !== undefined && Date.now() - this.outage.since >= this.options.retry.maxDurationMs;
  }

  private outageOver(): void {
    if (!this.outage) return;
    const { since, attempts } = this.outage;
    this.outage = undefined;
    this.callbacks.recovered(Date.now() - since, attempts);
  }

  /**
   * A send outside the flights, watched for stalls like a flight: with librdkafka (no message timeout) a silent
   * broker never answers it, and the retry loop around it would wait for ever instead of counting an outage.
   * Such sends run one at a time (a sequential step), never beside a flight.
   */
  private async watched<T>(sending: Promise<T>): Promise<T> {
    this.soloSince = Date.now();
    this.armStallCheck();
    try {
      return await sending;
    } finally {
      this.soloSince = undefined;
    }
  }

  /** A produce request unanswered past the stall timeout is an outage: logged, not ready, bounded by retry.maxDuration. */
  private armStallCheck(): void {
    if (this.stallTimer) return;
    this.stallTimer = setInterval(() => {
      const sentAt = this.soloSince ?? this.flights.find((f) => !f.settled && !f.awaitingPosition)?.sentAt;
      if (sentAt === undefined) {
        clearInterval(this.stallTimer);
        this.stallTimer = undefined;
        return;
      }
      const waitedMs = Date.now() - sentAt;
      if (waitedMs < this.options.stallTimeoutMs) return;
      const error = new RelayError('KAFKA_UNAVAILABLE', `Kafka has not answered a produce request for ${Math.round(waitedMs / 1000)} s`, {
        retriable: true,
        hint: 'check the brokers (a hung or partitioned broker); the request is retried by the producer until kafka.deliveryTimeout',
      });
      if (!this.outage) this.callbacks.retrying(error, 0, 0);
      this.beginRetry(error, 0);
    }, STALL_CHECK_MS);
    this.stallTimer.unref();
  }

  /** at-least-once and at-most-once only: the plain sink. */
  private plain(): PlainSink {
    const producing = this.options.producing;
    if (producing.guarantee === 'exactly-once') throw new Error('exactly-once produces inside Kafka transactions only');
    return producing.sink;
  }

  /** exactly-once only: the transactional sink and the slot its checkpoints are keyed by. */
  private transactional(): { sink: TransactionalSink; slot: string } {
    const producing = this.options.producing;
    if (producing.guarantee !== 'exactly-once') throw new Error('only exactly-once produces inside Kafka transactions');
    return producing;
  }

  private fail(error: RelayError): false {
    if (!this.dead) {
      this.dead = true;
      this.shutDown();
      this.callbacks.stopped(error);
    }
    return false;
  }

  private shutDown(): void {
    this.abort.abort();
    this.restartWait.abort();
    this.refusingWaiters = wakeAll(this.refusingWaiters);
    clearTimeout(this.coalesceTimer);
    clearInterval(this.stallTimer);
    this.stallTimer = undefined;
    this.wakeIdle();
  }

  private wakeIdle(): void {
    this.idleWaiters = wakeAll(this.idleWaiters);
  }

  /**
   * The current session's events are taken no more: a stop reading its open source transaction to its commit ends
   * the read there (drain()).
   */
  private closeIntake(): void {
    this.intake = false;
    this.refusingWaiters = wakeAll(this.refusingWaiters);
  }
}

/** What follows an abort after everything uncommitted was dropped (AfterAbort): only the next session's claim. */
const onlyClaim = (): AfterAbort => 'claim';

/** Wakes each of `waiters`; what is left to wait (nothing). */
function wakeAll(waiters: readonly (() => void)[]): (() => void)[] {
  for (const wake of waiters) wake();
  return [];
}

/** The produce attempts an event's error records (Kafka refused its topic before the hand-off: vet), else 1. */
function attemptsOf(error: RelayError): number {
  const { attempts } = error.details;
  return typeof attempts === 'number' ? attempts : 1;
}


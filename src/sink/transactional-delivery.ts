import type { AckTracker, Transaction } from '../checkpoint/ack-tracker.js';
import type { RetryPolicy } from '../config/relay-config.js';
import { RelayError, isRelayError } from '../errors.js';
import { formatLsn, maxLsn, type Lsn } from '../lsn.js';
import type { OutboxEvent } from '../route/event.js';
import { backoffDelay, sleep } from '../retry.js';
import type { Delivery, StrategyCallbacks } from './delivery.js';
import type { DeliveryLimits } from './delivery-queue.js';
import { InFlightWindow } from './in-flight-window.js';
import { isRecordError } from './kafka-errors.js';
import type { TransactionalSink } from './sink.js';

/** While a produced source transaction waits for its Commit message, how often to look again. */
const COMMIT_CHECK_MS = 10;

/** Events of one source transaction and topic in the open Kafka transaction: acknowledged together at its commit. */
interface Produced {
  txn: Transaction;
  topic: string;
  count: number;
  bytes: number;
  /** An unmappable row the poison policy skipped: it reached no topic. */
  error?: RelayError;
}

/**
 * Exactly-once delivery. Whole source transactions (one or several consecutive ones) go into one Kafka transaction
 * with a checkpoint record holding the commitEndLsn of the last of them; only after the Kafka commit are their
 * events acknowledged, so the slot is confirmed only for what a read_committed consumer can see. Events leave
 * the in-flight window as soon as they are produced (a large source transaction spans many produce requests),
 * which keeps memory bounded; what waits for the commit is a count per transaction and topic.
 * A failed produce or commit aborts the Kafka transaction: its events are no longer in memory, so the source
 * streams again from the last confirmed position (restartSource). A fenced producer halts.
 */
export class TransactionalDelivery implements Delivery {
  private queue: OutboxEvent[] = [];
  private head = 0;
  private readonly window: InFlightWindow;
  private produced: Produced[] = [];
  private producedEvents = 0;
  private producedSince = 0;
  /** Source transaction of the last produced event. */
  private last: Transaction | undefined;
  private checkpoint: Lsn = 0n;
  private pumping = false;
  private dead = false;
  private commitTimer: NodeJS.Timeout | undefined;
  private readonly discarded = new WeakSet<AckTracker>();
  private readonly abort = new AbortController();

  constructor(
    private readonly sink: TransactionalSink,
    private readonly slot: string,
    private readonly limits: DeliveryLimits,
    private readonly retry: RetryPolicy,
    private readonly callbacks: StrategyCallbacks,
  ) {
    this.window = new InFlightWindow(limits);
  }

  /** The checkpoint read at start: a replay of older transactions never moves the stored checkpoint back. */
  startFrom(checkpoint: Lsn): void {
    this.checkpoint = maxLsn(this.checkpoint, checkpoint);
  }

  get inFlightEvents(): number {
    return this.window.events + this.producedEvents;
  }

  get inFlightBytes(): number {
    return this.window.bytes;
  }

  push(event: OutboxEvent): boolean {
    // Events of a session whose work was aborted: it is about to be replaced, so stop it reading.
    if (this.dead || this.discarded.has(event.txn.tracker)) return false;
    this.queue.push(event);
    this.kick();
    return this.window.enter(event.size);
  }

  whenEmpty(): Promise<void> {
    return this.window.whenEmpty(this.dead || (this.window.events === 0 && this.produced.length === 0));
  }

  /** The open Kafka transaction is left to the sink's close (or to the next instance's fencing) to abort. */
  stop(): void {
    this.dead = true;
    this.abort.abort();
    clearTimeout(this.commitTimer);
    this.window.wake();
  }

  private kick(): void {
    if (this.pumping || this.dead) return;
    this.pumping = true;
    // Deferred, so that every event decoded from the same socket read joins the first batch.
    setImmediate(() => void this.pump());
  }

  private async pump(): Promise<void> {
    try {
      while (!this.dead) {
        const more = this.head < this.queue.length;
        if (more && !(await this.produce(this.takeBatch()))) return;
        const grouped = this.producedEvents >= this.limits.batchMaxEvents || this.head >= this.queue.length;
        if (this.readyToCommit() && grouped && !(await this.commit())) return;
        if (!more) break;
      }
    } catch (err) {
      this.halt(isRelayError(err) ? err : new RelayError('INTERNAL', `exactly-once delivery failed: ${String(err)}`, { cause: err }));
    } finally {
      this.pumping = false;
      if (this.head < this.queue.length) this.kick();
      else this.armCommitCheck();
    }
  }

  /** Up to the batch limits; an unmappable event travels alone, so the poison policy meets it in its place. */
  private takeBatch(): OutboxEvent[] {
    const end = Math.min(this.queue.length, this.head + this.limits.batchMaxEvents);
    let bytes = 0;
    let i = this.head;
    for (; i < end; i++) {
      const event = this.queue[i]!;
      const alone = event.error !== undefined;
      if (i > this.head && (alone || bytes + event.size > this.limits.batchMaxBytes)) break;
      bytes += event.size;
      if (alone) {
        i++;
        break;
      }
    }
    const batch = this.queue.slice(this.head, i);
    this.head = i;
    if (this.head > 4096 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    return batch;
  }

  /** Every source transaction in the open Kafka transaction is complete: its Commit arrived, and no later event of it can. */
  private readyToCommit(): boolean {
    const last = this.last;
    if (!last || last.endLsn === undefined) return false;
    return this.head >= this.queue.length || this.queue[this.head]!.txn !== last;
  }

  private armCommitCheck(): void {
    if (this.dead || this.produced.length === 0 || this.commitTimer) return;
    this.commitTimer = setTimeout(() => {
      this.commitTimer = undefined;
      this.kick();
    }, COMMIT_CHECK_MS);
  }

  private async produce(batch: OutboxEvent[]): Promise<boolean> {
    const first = batch[0]!;
    if (first.error) {
      if ((await this.callbacks.poison(first, first.error)) === 'halt') return this.halt(first.error);
      this.recordProduced(batch);
      return true;
    }
    try {
      await this.sink.send(batch);
    } catch (err) {
      return this.failed(err as RelayError, first);
    }
    this.recordProduced(batch);
    return true;
  }

  private recordProduced(batch: OutboxEvent[]): void {
    if (this.produced.length === 0) this.producedSince = Date.now();
    let bytes = 0;
    for (const event of batch) {
      bytes += event.size;
      const tail = this.produced.at(-1);
      if (tail && tail.txn === event.txn && tail.topic === event.topic && !tail.error && !event.error) {
        tail.count++;
        tail.bytes += event.size;
      } else {
        this.produced.push({ txn: event.txn, topic: event.topic, count: 1, bytes: event.size, error: event.error });
      }
    }
    this.producedEvents += batch.length;
    this.last = batch.at(-1)!.txn;
    if (this.window.leave(batch.length, bytes)) this.callbacks.windowOpen();
  }

  private async commit(): Promise<boolean> {
    const last = this.last!;
    const lsn = maxLsn(this.checkpoint, last.endLsn!);
    try {
      await this.sink.commit({ slot: this.slot, lsn, commitTimeMs: last.commitTimeMs, writtenAtMs: Date.now(), guarantee: 'exactly-once' });
    } catch (err) {
      return this.failed(err as RelayError);
    }
    this.checkpoint = lsn;
    const latencyMs = Date.now() - this.producedSince;
    const produced = this.produced;
    this.produced = [];
    this.producedEvents = 0;
    this.last = undefined;
    for (const group of produced) this.callbacks.delivered(receipts(group), latencyMs);
    if (this.window.events === 0) this.window.wake();
    return true;
  }

  private async failed(error: RelayError, first?: OutboxEvent): Promise<boolean> {
    if (error.code === 'PRODUCER_FENCED') return this.halt(error);
    if (isRecordError(error)) {
      const where = first ? ` in the produce request starting with event ${first.eventId} (commit LSN ${formatLsn(first.txn.commitLsn)})` : '';
      return this.halt(
        new RelayError(error.code, `Kafka rejected a record${where}: ${error.message}`, {
          cause: error,
          hint: `${error.hint ?? 'fix the record or its topic'}; exactly-once cannot skip or dead-letter a single record inside a Kafka transaction: nothing of it was committed`,
          details: error.details,
        }),
      );
    }
    this.discardInFlight();
    if (!(await this.abortWithRetries(error))) return false;
    this.callbacks.restartSource(error);
    return true;
  }

  /** Nothing uncommitted can be re-sent from memory: drop it all; the source streams it again. */
  private discardInFlight(): void {
    for (let i = this.head; i < this.queue.length; i++) this.discarded.add(this.queue[i]!.txn.tracker);
    for (const group of this.produced) this.discarded.add(group.txn.tracker);
    this.queue = [];
    this.head = 0;
    this.window.clear();
    this.produced = [];
    this.producedEvents = 0;
    this.last = undefined;
    this.window.wake();
  }

  private async abortWithRetries(cause: RelayError): Promise<boolean> {
    const started = Date.now();
    let error = cause;
    for (let attempt = 0; ; attempt++) {
      if (attempt > 0) {
        if (Date.now() - started >= this.retry.maxDurationMs) {
          return this.halt(new RelayError('RETRIES_EXHAUSTED', `Kafka unreachable for ${Math.round((Date.now() - started) / 1000)} s (${attempt} attempts): ${error.message}`, { cause: error }));
        }
        const delay = backoffDelay(this.retry, attempt - 1);
        this.callbacks.retrying(error, attempt, delay);
        await sleep(delay, this.abort.signal);
      }
      if (this.dead) return false;
      try {
        await this.sink.abort();
        if (attempt > 0) this.callbacks.recovered(Date.now() - started, attempt);
        return true;
      } catch (err) {
        error = err as RelayError;
        if (error.code === 'PRODUCER_FENCED') return this.halt(error);
      }
    }
  }

  private halt(error: RelayError): false {
    if (!this.dead) {
      this.dead = true;
      clearTimeout(this.commitTimer);
      this.window.wake();
      this.callbacks.stopped(error);
    }
    return false;
  }

}

/** One acknowledgement per event (the AckTracker counts them); the objects are shared, their payloads long gone. */
function receipts(group: Produced): OutboxEvent[] {
  const receipt: OutboxEvent = { topic: group.topic, key: null, value: null, headers: {}, eventId: '', size: group.bytes / group.count, txn: group.txn, error: group.error };
  return new Array<OutboxEvent>(group.count).fill(receipt);
}

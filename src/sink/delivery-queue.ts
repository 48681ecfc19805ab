import type { RetryPolicy } from '../config/relay-config.js';
import { RelayError } from '../errors.js';
import { formatLsn } from '../lsn.js';
import type { OutboxEvent } from '../route/event.js';
import { backoffDelay, sleep } from '../retry.js';
import { InFlightWindow } from './in-flight-window.js';
import { classifyKafkaError, isRecordError } from './kafka-errors.js';
import { RecordRetries } from './record-retry.js';
import type { Sink } from './sink.js';

export interface DeliveryLimits {
  maxInFlightEvents: number;
  maxInFlightBytes: number;
  batchMaxEvents: number;
  batchMaxBytes: number;
}

/** What the poison policy decided for a record Kafka will never accept: `skip` means it was dealt with (dead-lettered). */
export type PoisonDecision = 'skip' | 'halt';

export interface DeliveryCallbacks {
  /** Kafka acknowledged these events (in order). */
  delivered(events: readonly OutboxEvent[], latencyMs: number): void;
  /** The seam for dead-letter policies: called once per record that cannot be produced. */
  poison(event: OutboxEvent, error: RelayError): Promise<PoisonDecision>;
  /** Delivery stopped for good: a halt decision, or the broker unreachable for longer than retry.maxDuration. */
  stopped(error: RelayError): void;
  /** The in-flight window has room again after being full. */
  windowOpen(): void;
  retrying(error: RelayError, attempt: number, delayMs: number): void;
  /** Kafka rejected `event`; it is produced again after `delayMs` (retry.recordMaxAttempts / recordMaxDuration). */
  recordRetrying?(event: OutboxEvent, error: RelayError, attempt: number, delayMs: number): void;
  recovered(downMs: number, attempts: number): void;
}

/**
 * The bounded in-flight window between the decoder and Kafka. Events wait here until acknowledged; one batch is
 * produced at a time, so a retried batch can never be overtaken by a later one (commit order per partition).
 * While a batch is in flight the next one accumulates, which is what pipelines the stream.
 */
export class DeliveryQueue {
  private queue: OutboxEvent[] = [];
  private head = 0;
  private readonly window: InFlightWindow;
  private pumping = false;
  private dead = false;
  private readonly abort = new AbortController();
  private readonly recordRetries: RecordRetries;

  constructor(
    private readonly sink: Sink,
    private readonly limits: DeliveryLimits,
    private readonly retry: RetryPolicy,
    private readonly callbacks: DeliveryCallbacks,
  ) {
    this.recordRetries = new RecordRetries(retry);
    this.window = new InFlightWindow(limits);
  }

  get inFlightEvents(): number {
    return this.window.events;
  }

  get inFlightBytes(): number {
    return this.window.bytes;
  }

  /** Takes an event; returns false when the window is now full and the source should stop reading. */
  push(event: OutboxEvent): boolean {
    if (this.dead) return false;
    this.queue.push(event);
    if (!this.pumping) {
      this.pumping = true;
      // Deferred, so that every event decoded from the same socket read joins the first batch.
      setImmediate(() => void this.pump());
    }
    return this.window.enter(event.size);
  }

  /** Resolves when every pushed event was acknowledged (or delivery stopped). */
  whenEmpty(): Promise<void> {
    return this.window.whenEmpty(this.dead || this.window.events === 0);
  }

  /** Stops retrying and sending: used when shutdown's grace period ran out. */
  stop(): void {
    this.dead = true;
    this.abort.abort();
    this.window.wake();
  }

  private async pump(): Promise<void> {
    try {
      while (!this.dead && this.head < this.queue.length) {
        const batch = this.takeBatch();
        const unmappable = batch[0]!.error;
        if (!(await (unmappable ? this.isolate(batch, unmappable) : this.deliver(batch)))) return;
      }
    } finally {
      this.pumping = false;
    }
  }

  private takeBatch(): OutboxEvent[] {
    const batch: OutboxEvent[] = [];
    let bytes = 0;
    while (this.head < this.queue.length && batch.length < this.limits.batchMaxEvents) {
      const next = this.queue[this.head]!;
      if (batch.length > 0 && (bytes + next.size > this.limits.batchMaxBytes || next.error)) break;
      batch.push(next);
      bytes += next.size;
      this.head++;
      if (next.error) break; // a row that could not be mapped travels alone
    }
    // Compact now and then instead of shift()ing per event.
    if (this.head > 4096 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    return batch;
  }

  /** Produces `batch` until acknowledged; false when delivery must stop. */
  private async deliver(batch: OutboxEvent[]): Promise<boolean> {
    const started = Date.now();
    let attempt = 0;
    for (;;) {
      const sentAt = Date.now();
      let error: RelayError;
      try {
        await this.sink.send(batch);
        if (attempt > 0) this.callbacks.recovered(Date.now() - started, attempt);
        this.acknowledge(batch, Date.now() - sentAt);
        return true;
      } catch (err) {
        error = classifyKafkaError(err);
      }
      if (this.dead) return false;
      if (isRecordError(error)) return this.isolate(batch, error);
      attempt++;
      if (Date.now() - started >= this.retry.maxDurationMs) {
        this.fail(new RelayError('RETRIES_EXHAUSTED', `Kafka unreachable for ${Math.round((Date.now() - started) / 1000)} s (${attempt} attempts): ${error.message}`, {
          cause: error,
          hint: 'check the brokers; the relay exits so that it is restarted, and resumes from the last confirmed position',
        }));
        return false;
      }
      const delay = backoffDelay(this.retry, attempt - 1);
      this.callbacks.retrying(error, attempt, delay);
      await sleep(delay, this.abort.signal);
      if (this.dead) return false;
    }
  }

  /** A batch with a bad record: produce one by one, in order, so that only the bad record meets the poison policy. */
  private async isolate(batch: OutboxEvent[], error: RelayError): Promise<boolean> {
    if (batch.length > 1) {
      for (const event of batch) if (!(await this.deliver([event]))) return false;
      return true;
    }
    const event = batch[0]!;
    let attempts = 1;
    // An unmappable row (event.error) would fail the same way every time: only Kafka's rejections are retried.
    if (!event.error) {
      const step = this.recordRetries.next(event);
      attempts = step.attempts;
      if (step.delayMs !== undefined) {
        this.callbacks.recordRetrying?.(event, error, attempts, step.delayMs);
        await sleep(step.delayMs, this.abort.signal);
        return !this.dead && this.deliver(batch);
      }
    }
    const destination = event.topic ? ` to topic "${event.topic}"` : '';
    const poisoned = new RelayError(error.code, `cannot produce event ${event.eventId || '(no id)'} (commit LSN ${formatLsn(event.txn.commitLsn)})${destination}: ${error.message}`, {
      cause: error,
      hint: error.hint,
      details: { ...error.details, eventId: event.eventId, lsn: formatLsn(event.txn.commitLsn), topic: event.topic, attempts },
    });
    if ((await this.callbacks.poison(event, poisoned)) === 'skip') {
      this.acknowledge(batch, 0);
      return true;
    }
    this.fail(poisoned);
    return false;
  }

  private acknowledge(batch: OutboxEvent[], latencyMs: number): void {
    let bytes = 0;
    for (const event of batch) bytes += event.size;
    const reopened = this.window.leave(batch.length, bytes);
    this.callbacks.delivered(batch, latencyMs);
    if (reopened) this.callbacks.windowOpen();
    if (this.window.events === 0) this.window.wake();
  }

  private fail(error: RelayError): void {
    this.dead = true;
    this.window.wake();
    this.callbacks.stopped(error);
  }
}

import type { Logger } from 'pino';
import { errorMessage } from '../errors.js';
import type { OutboxEvent } from '../route/event.js';
import type { Delivery, StrategyCallbacks } from './delivery.js';
import type { DeliveryLimits } from './delivery-queue.js';
import { InFlightWindow } from './in-flight-window.js';
import { classifyKafkaError } from './kafka-errors.js';
import type { Sink } from './sink.js';

/**
 * At-most-once delivery: a batch is acknowledged the moment it is handed to the producer, so the position is
 * confirmed without waiting for Kafka, and a failed batch is dropped, never retried. A crash or a broker outage
 * loses what was handed over and not yet written; nothing is ever sent twice. One batch is produced at a time and
 * the window still bounds what waits, so a slow broker slows the source instead of filling memory.
 */
export class AtMostOnceDelivery implements Delivery {
  private queue: OutboxEvent[] = [];
  private readonly window: InFlightWindow;
  private sending = false;
  private dead = false;
  private failing = false;

  constructor(
    private readonly sink: Sink,
    private readonly limits: DeliveryLimits,
    private readonly callbacks: StrategyCallbacks,
    private readonly logger: Logger,
  ) {
    this.window = new InFlightWindow(limits);
  }

  get inFlightEvents(): number {
    return this.window.events;
  }

  get inFlightBytes(): number {
    return this.window.bytes;
  }

  push(event: OutboxEvent): boolean {
    if (this.dead) return false;
    this.queue.push(event);
    const room = this.window.enter(event.size);
    if (!this.sending) {
      this.sending = true;
      setImmediate(() => void this.drain());
    }
    return room;
  }

  whenEmpty(): Promise<void> {
    return this.window.whenEmpty(this.dead || this.window.events === 0);
  }

  stop(): void {
    this.dead = true;
    this.window.wake();
  }

  private async drain(): Promise<void> {
    while (!this.dead && this.queue.length > 0) {
      const batch = this.queue.splice(0, this.limits.batchMaxEvents);
      const records = batch.filter((e) => !e.error);
      for (const e of batch) if (e.error) this.logger.warn({ code: e.error.code, err: e.error.message, eventId: e.eventId }, 'at-most-once: event cannot be produced; dropped');
      // Handed over: confirmed from here on, whatever Kafka answers.
      this.callbacks.delivered(batch, 0);
      try {
        if (records.length > 0) await this.sink.send(records);
        if (this.failing) this.logger.info('at-most-once: Kafka accepts batches again');
        this.failing = false;
      } catch (err) {
        this.dropped(batch.length, err);
      }
      if (this.window.leave(batch.length, batch.reduce((sum, e) => sum + e.size, 0))) this.callbacks.windowOpen();
    }
    this.sending = false;
    if (this.window.events === 0) this.window.wake();
  }

  private dropped(count: number, err: unknown): void {
    const error = classifyKafkaError(err);
    const fields = { code: error.code, err: errorMessage(error), dropped: count };
    if (this.failing) this.logger.debug(fields, 'at-most-once: batch dropped');
    else this.logger.warn(fields, 'at-most-once: Kafka refused a batch; it is dropped, not retried (delivery.guarantee=at-most-once)');
    this.failing = true;
  }
}

import type { DeliveryLimits } from './delivery-queue.js';

/**
 * The bound on what waits between the decoder and Kafka, shared by every delivery strategy: counts and bytes, "full" with hysteresis (reopen at half, so the source does not flap), and waiters for "empty".
 */
export class InFlightWindow {
  events = 0;
  bytes = 0;
  private wasFull = false;
  private waiters: (() => void)[] = [];

  constructor(private readonly limits: Pick<DeliveryLimits, 'maxInFlightEvents' | 'maxInFlightBytes'>) {}

  get full(): boolean {
    return this.events >= this.limits.maxInFlightEvents || this.bytes >= this.limits.maxInFlightBytes;
  }

  /** Counts an event in; false once the source should stop reading. */
  enter(size: number): boolean {
    this.events++;
    this.bytes += size;
    if (this.full) this.wasFull = true;
    return !this.full;
  }

  /** Counts events out; true when the window had been full and is now half empty: the source may read again. */
  leave(count: number, bytes: number): boolean {
    this.events -= count;
    this.bytes -= bytes;
    const reopened = this.wasFull && this.events <= this.limits.maxInFlightEvents / 2 && this.bytes <= this.limits.maxInFlightBytes / 2;
    if (reopened) this.wasFull = false;
    return reopened;
  }

  clear(): void {
    this.events = 0;
    this.bytes = 0;
    this.wasFull = false;
  }

  /** Resolves at once when `empty`, else at the next wake(). */
  whenEmpty(empty: boolean): Promise<void> {
    return empty ? Promise.resolve() : new Promise((resolve) => this.waiters.push(resolve));
  }

  wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}

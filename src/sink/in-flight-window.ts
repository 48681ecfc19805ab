import type { DeliveryLimits } from './delivery.js';

/**
 * The bound on what waits between the decoder and Kafka: counts and bytes, "full" with hysteresis (reopen at
 * half, so the source does not flap between reading and pausing).
 */
export class InFlightWindow {
  events = 0;
  bytes = 0;
  private wasFull = false;

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
}

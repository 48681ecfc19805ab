import type { DeliveryLimits } from './delivery.js';

/**
 * The bound on what waits between the decoder and Kafka: counts and bytes, "full" with hysteresis (reopen at
 * half, so the source does not flap between reading and pausing). It also keeps how long it was full: the
 * source reads nothing meanwhile, so that time is how long Kafka, not PostgreSQL or the relay, set the pace.
 */
export class InFlightWindow {
  events = 0;
  bytes = 0;
  private fullSince: number | undefined;
  private fullMsBefore = 0;

  constructor(
    private readonly limits: Pick<DeliveryLimits, 'maxInFlightEvents' | 'maxInFlightBytes'>,
    private readonly now: () => number = Date.now,
  ) {}

  get full(): boolean {
    return this.events >= this.limits.maxInFlightEvents || this.bytes >= this.limits.maxInFlightBytes;
  }

  /**
   * The source was told to stop reading and not yet to read again: from full until half empty. Between half and
   * full the window is not full, yet nothing more comes in until it reopens.
   */
  get closed(): boolean {
    return this.fullSince !== undefined;
  }

  /** Since when the source has been told to stop reading (undefined while it may read). */
  get fullSinceMs(): number | undefined {
    return this.fullSince;
  }

  /** Time the window was full, in total, the current stretch included. */
  get fullMs(): number {
    return this.fullMsBefore + (this.fullSince === undefined ? 0 : this.now() - this.fullSince);
  }

  /** Counts an event in; false once the source should stop reading. */
  enter(size: number): boolean {
    this.events++;
    this.bytes += size;
    const full = this.full;
    if (full && this.fullSince === undefined) this.fullSince = this.now();
    return !full;
  }

  /** Counts events out; true when the window had been full and is now half empty: the source may read again. */
  leave(count: number, bytes: number): boolean {
    this.events -= count;
    this.bytes -= bytes;
    const reopened = this.fullSince !== undefined && this.events <= this.limits.maxInFlightEvents / 2 && this.bytes <= this.limits.maxInFlightBytes / 2;
    if (reopened) this.endFullStretch();
    return reopened;
  }

  clear(): void {
    this.events = 0;
    this.bytes = 0;
    this.endFullStretch();
  }

  private endFullStretch(): void {
    if (this.fullSince === undefined) return;
    this.fullMsBefore += this.now() - this.fullSince;
    this.fullSince = undefined;
  }
}

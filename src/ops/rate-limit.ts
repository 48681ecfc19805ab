import { sleep } from '../retry.js';

/** Time lost in a stall that later batches may make up, at most: one second's worth of items. */
const MAX_CREDIT_MS = 1000;

/**
 * Paces a stream of items to `perSecond` on average: after each batch it sleeps until the time the items sent so
 * far should have taken. Averaging lets a slow batch be made up by later ones, but only by MAX_CREDIT_MS: averaged
 * over the whole run, a 10-minute Kafka outage at --rate 500 became 300,000 events sent at full speed once it
 * ended, the overload the flag exists to prevent.
 */
export class RateLimit {
  private started = Date.now();
  private sent = 0;

  constructor(
    private readonly perSecond: number,
    private readonly signal?: AbortSignal,
  ) {}

  async pass(items: number): Promise<void> {
    const now = Date.now();
    this.started = Math.max(this.started, now - (this.sent / this.perSecond) * 1000 - MAX_CREDIT_MS);
    this.sent += items;
    const due = this.started + (this.sent / this.perSecond) * 1000;
    const wait = due - now;
    if (wait > 0) await sleep(wait, this.signal);
  }
}

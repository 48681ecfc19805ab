import { sleep } from '../retry.js';

/**
 * Paces a stream of items to `perSecond` on average: after each batch it sleeps until the time the items sent so
 * far should have taken. Averaging over the whole run (not per batch) lets a slow batch be made up by later ones.
 */
export class RateLimit {
  private readonly started = Date.now();
  private sent = 0;

  constructor(
    private readonly perSecond: number,
    private readonly signal?: AbortSignal,
  ) {}

  async pass(items: number): Promise<void> {
    this.sent += items;
    const due = this.started + (this.sent / this.perSecond) * 1000;
    const wait = due - Date.now();
    if (wait > 0) await sleep(wait, this.signal);
  }
}

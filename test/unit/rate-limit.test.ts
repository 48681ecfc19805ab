import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RateLimit } from '../../src/ops/rate-limit.js';

describe('RateLimit (republish --rate)', () => {
  beforeEach(() => void vi.useFakeTimers());
  afterEach(() => void vi.useRealTimers());

  /** Fake milliseconds that `pass(items)` waits. */
  async function waited(limit: RateLimit, items: number): Promise<number> {
    const from = Date.now();
    const passing = limit.pass(items);
    await vi.runAllTimersAsync();
    await passing;
    return Date.now() - from;
  }

  it('paces to the rate on average: a slow batch is made up by the next ones', async () => {
    const limit = new RateLimit(100);
    expect(await waited(limit, 100)).toBe(1000);
    // This batch took 500 ms of its own (a slow page): the next waits that much less.
    vi.advanceTimersByTime(500);
    expect(await waited(limit, 100)).toBe(500);
  });

  it('after a stall (a Kafka outage) makes up at most one second: the rest goes at the rate, not at full speed', async () => {
    const limit = new RateLimit(100);
    expect(await waited(limit, 100)).toBe(1000);
    vi.advanceTimersByTime(600_000);
    // Averaged over the run, 600 s of credit: these 5 batches (and 59,995 more events) went out without a wait.
    const waits = [];
    for (let i = 0; i < 5; i++) waits.push(await waited(limit, 100));
    expect(waits).toEqual([0, 1000, 1000, 1000, 1000]);
  });
});

import { describe, expect, it } from 'vitest';
import { histogramDelta, histogramQuantileMs, readGauge, readHistogram } from '../../bench/histogram.js';
import { RelayMetrics } from '../../src/metrics/relay-metrics.js';

const idle = { inFlight: { events: 0, bytes: 0, windowFullMs: 0, windowFullSinceMs: undefined } };

describe("the bench's reading of the relay's histograms", () => {
  it('reads a histogram from /metrics text and takes quantiles between two readings, interpolated within buckets', async () => {
    const metrics = new RelayMetrics();
    for (let i = 0; i < 10; i++) metrics.transactionSent(0, 300); // before: all in (0.25, 0.5]
    const before = readHistogram(await metrics.render(idle), 'outbox_relay_source_delay_seconds');
    for (let i = 0; i < 98; i++) metrics.transactionSent(0, 2); // (0.001, 0.0025]
    metrics.transactionSent(0, 20); // (0.01, 0.025]
    metrics.transactionSent(0, 80); // (0.05, 0.1]
    const after = readHistogram(await metrics.render(idle), 'outbox_relay_source_delay_seconds');
    expect(after.at(-1)).toEqual({ le: Infinity, count: 110 });

    const delta = histogramDelta(after, before);
    expect(delta.at(-1)!.count).toBe(100);
    // Rank 50 of 98 in (1, 2.5] ms; rank 99 is the one observation in (10, 25] ms, at its upper bound.
    expect(histogramQuantileMs(delta, 0.5)).toBeCloseTo(1 + (1.5 * 50) / 98);
    expect(histogramQuantileMs(delta, 0.99)).toBeCloseTo(25);
    expect(histogramQuantileMs(delta, 1)).toBeCloseTo(100);
  });

  it("reads the relay's longest event-loop gap since the last scrape: a main thread held for 250 ms shows, and the next scrape starts afresh", async () => {
    const metrics = new RelayMetrics();
    const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
    const gap = async () => readGauge(await metrics.render(idle), 'nodejs_eventloop_lag_max_seconds') * 1000;
    // The monitor (perf_hooks' monitorEventLoopDelay) records the time between two of its 10 ms timer ticks, and the
    // scrape's reset forgets its last tick: the first tick after a scrape only starts the clock. A hold before that
    // tick goes unrecorded (CI once read 13.88 ms), and 50 ms of sleep do not ensure the tick: a sleep's callback
    // can run in a timers phase that did not find the monitor's timer due (the phase read the clock before the
    // process lost the CPU, Node's timers read it after). After 20 ms the tick is due (10 ms resolution), and two
    // immediates cross the timers phase of a whole loop turn, which finds it due.
    const tickedSince = async () => {
      await pause(20);
      for (let turn = 0; turn < 2; turn++) await new Promise((r) => setImmediate(r));
    };
    await gap();
    await tickedSince();
    // Held 260 ms by the monotonic sub-millisecond clock: Date.now()'s whole milliseconds let a "250 ms" hold end
    // up to 1 ms early (CI once saw 249.8 ms), and the gap can only be as long as the hold.
    const heldUntil = performance.now() + 260;
    while (performance.now() < heldUntil); // the main thread held, as by a long garbage collection
    // The tick after the hold records it: the hold ends in a check phase, and the timers phase that follows finds
    // the monitor's tick due.
    await tickedSince();
    expect(await gap()).toBeGreaterThanOrEqual(250);
    // A scrape right after (the render runs in microtasks: no tick between) has seen no gap at all, where a wait
    // before it would let a loaded host's scheduling show as a gap.
    expect(await gap()).toBe(0);
    expect(readGauge('', 'nodejs_eventloop_lag_max_seconds')).toBeNaN();
  });

  it('gives NaN without observations and the last finite bound for a quantile in +Inf', () => {
    expect(histogramQuantileMs([{ le: 0.1, count: 0 }, { le: Infinity, count: 0 }], 0.99)).toBeNaN();
    expect(histogramQuantileMs([{ le: 0.1, count: 1 }, { le: Infinity, count: 10 }], 0.99)).toBeCloseTo(100);
  });
});

import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/relay-config.js';
import { checkWindowFitsHeap } from '../../src/config/window-heap.js';
import { shebangNodeFlags } from '../../stack/bin-flags.js';
import { repoRoot } from '../../stack/index.js';

/** The heap the `outbox-relay` bin's flags give node (the image sets the same in NODE_OPTIONS). */
const binHeapLimit = Number(
  execFileSync(process.execPath, [...shebangNodeFlags(join(repoRoot, 'src/cli/main.ts')), '-p', "require('node:v8').getHeapStatistics().heap_size_limit"], { encoding: 'utf8' }),
);

describe('in-flight window against the heap', () => {
  it('the default window fits the heap the bin gives node, and so does 20,000 events (measured to drain)', () => {
    const { maxInFlightEvents } = loadConfig({ flags: { 'kafka.brokers': 'k:9092' }, env: {} }).delivery;
    expect(() => checkWindowFitsHeap(maxInFlightEvents, binHeapLimit)).not.toThrow();
    expect(() => checkWindowFitsHeap(20_000, binHeapLimit)).not.toThrow();
  });

  it('refuses a window that exhausted that heap under load (50,000 events), naming the setting, the largest that fits and the heap flag', () => {
    let error: unknown;
    try {
      checkWindowFitsHeap(50_000, binHeapLimit);
    } catch (err) {
      error = err;
    }
    expect(error).toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining('delivery.maxInFlightEvents 50000') });
    const hint = (error as { hint: string }).hint;
    expect(hint).toContain('OUTBOX_RELAY_DELIVERY_MAX_IN_FLIGHT_EVENTS');
    expect(hint).toMatch(/to at most \d+/);
    expect(hint).toMatch(/--max-old-space-size=\d+/);
    // The suggested heap accepts the window.
    const oldSpaceMiB = Number(/--max-old-space-size=(\d+)/.exec(hint)![1]);
    expect(() => checkWindowFitsHeap(50_000, (oldSpaceMiB + 12) * 1024 * 1024)).not.toThrow();
  });
});

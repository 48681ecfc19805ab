import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/relay-config.js';
import { checkWindowFitsHeap } from '../../src/config/window-heap.js';
import { shebangNodeFlags } from '../../stack/bin-flags.js';
import { repoRoot } from '../../stack/index.js';
import { cliArgs } from '../support/relay-bin.js';

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

  // Before, the fix said NODE_OPTIONS whatever the start: under the bin, whose shebang puts the heap flag on node's
  // command line, which node reads after NODE_OPTIONS, following it changed nothing (the same refusal again).
  describe('the larger heap the fix names is one that following it gives', () => {
    const main = join(repoRoot, 'src/cli/main.ts');
    const configCheck = (nodeFlags: string[], env: Record<string, string>) => {
      const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('OUTBOX_RELAY_') && k !== 'NODE_OPTIONS'));
      return spawnSync(process.execPath, [...nodeFlags, ...cliArgs(['config', 'check', '--delivery-max-in-flight-events', '50000'])], {
        cwd: repoRoot,
        encoding: 'utf8',
        env: { ...clean, OUTBOX_RELAY_KAFKA_BROKERS: 'k:9092', ...env },
      });
    };
    const fixOf = (stderr: string) => /fix: (.*)/.exec(stderr)?.[1] ?? '';

    it('started as the bin (its shebang flags on the command line): node with the larger heap on its command line', () => {
      const refused = configCheck(shebangNodeFlags(main), {});
      expect(refused.status, refused.stderr).toBe(2);
      const fix = fixOf(refused.stderr);
      expect(fix).toContain('NODE_OPTIONS cannot override');
      const flags = /node (--max-old-space-size=\d+ --max-semi-space-size=4) (\S+) <the same arguments>/.exec(fix);
      expect(flags, fix).not.toBeNull();
      expect(flags![2]).toBe(cliArgs([])[0]);
      const followed = configCheck(flags![1]!.split(' '), {});
      expect(followed.status, followed.stderr).toBe(0);
      // What the fix used to say, for the record: with the bin's flags still on the command line it changes nothing.
      expect(configCheck(shebangNodeFlags(main), { NODE_OPTIONS: flags![1]! }).status).toBe(2);
    });

    it('started as the image starts it (the flags in NODE_OPTIONS): NODE_OPTIONS', () => {
      const refused = configCheck([], { NODE_OPTIONS: shebangNodeFlags(main).join(' ') });
      expect(refused.status, refused.stderr).toBe(2);
      const options = /NODE_OPTIONS="([^"]+)"/.exec(fixOf(refused.stderr));
      expect(options, refused.stderr).not.toBeNull();
      expect(configCheck([], { NODE_OPTIONS: options![1]! }).status).toBe(0);
    });
  });
});

import { describe, expect, it } from 'vitest';
import { ReplayTally, replayText } from '../../src/cli/commands/replay-summary.js';
import type { Receipt } from '../../src/sink/delivery.js';

const receipt = (commitLsn: bigint, count: number): Receipt => ({ txn: { commitLsn } as never, topic: 'orders', count, bytes: 10, skipped: false });

describe('ReplayTally', () => {
  it('counts the rows the filters left out of its range as skipped (docs/cli.md), apart from the events re-sent', () => {
    const tally = new ReplayTally(0x200n);
    tally.observer.delivered?.([receipt(0x100n, 2)], undefined);
    tally.observer.filtered?.('public.outbox', 1, 0x100n);
    tally.observer.filtered?.('public.outbox', 2, 0x200n);
    // Past the end: a transaction the replay does not deliver.
    tally.observer.filtered?.('public.outbox', 1, 0x300n);
    expect(tally.events).toBe(2);
    expect(tally.skipped).toBe(3);
    expect(tally.byTopic).toEqual({ orders: 2 });
    const text = replayText({
      finished: true,
      events: tally.events,
      skipped: tally.skipped,
      byTopic: tally.byTopic,
      commitLsnRange: tally.commitLsnRange,
      startLsn: '0/50',
      toLsn: '0/200',
      lastCommitLsn: '0/200',
      confirmedLsn: '0/280',
      durationMs: 100,
    });
    expect(text).toMatch(/left out by filters\s+3\n/);
  });
});

import { describe, expect, it, vi } from 'vitest';
import type { RelayError } from '../../src/errors.js';
import { RelayHealth } from '../../src/http/health.js';
import type { Lsn } from '../../src/lsn.js';
import type { TimelinePosition } from '../../src/source/timeline.js';
import { capturingLogger, idleDelivery, relayConfig } from '../support/fakes/relay-setup.js';

/** What the pre-flight of every session refuses the slot with. */
let refusal: () => RelayError;

vi.mock('../../src/pipeline/session.js', async () => ({
  Session: class extends (await import('../support/fakes/relay-setup.js')).FakeSessionFields {
    async open(): Promise<void> {
      throw refusal();
    }
    async close(): Promise<void> {}
  },
}));

const { Relay } = await import('../../src/pipeline/relay.js');
const { slotLostError } = await import('../../src/source/slot-lost.js');

/** A relay whose first start meets `refused` (beside `startPosition`'s read), run to its halt: its error, halt line and /readyz body then. */
async function haltedOn(refused: () => RelayError, startPosition?: () => Promise<TimelinePosition>) {
  refusal = refused;
  const { logger, lines } = capturingLogger('info');
  const relay = new Relay(relayConfig({ initialDelayMs: 1, maxDelayMs: 2, maxDurationMs: 100 }) as never, {
    logger,
    sink: { connect: async () => undefined, send: async () => undefined, close: async () => undefined } as never,
    createDelivery: idleDelivery,
    reportPosition: (lsn: Lsn) => lsn,
    startPosition,
  } as never);
  const outcome = await relay.run();
  expect(outcome).toMatchObject({ state: 'halted', error: { code: 'PG_SLOT_LOST' } });
  return { error: outcome.error!, halt: lines.find((l) => l.code === 'PG_SLOT_LOST')!, readiness: new RelayHealth(1000).readiness(relay) };
}

describe("a relay halted before any session streamed: the confirmed position it shows", () => {
  it('is the slot\'s confirmed_flush_lsn as the pre-flight found it, not 0/0', async () => {
    // Before: confirmedLsn "0/0" in /readyz and the halt line while the slot was at 0/153BD10.
    const { halt, readiness } = await haltedOn(() => slotLostError('s', { publication: 'p' }, 'wal_removed').withDetails({ slotConfirmedLsn: '0/153BD10' }));
    expect(halt.confirmedLsn).toBe('0/153BD10');
    expect(halt).not.toHaveProperty('deliveredLsn');
    expect(readiness.confirmedLsn).toBe('0/153BD10');
    // Before: deliveredLsn "0/0", though this process delivered nothing.
    expect(readiness.deliveredLsn).toBeNull();
  });

  it('is left out of the halt line, and null in /readyz, when no pre-flight found it', async () => {
    const { halt, readiness } = await haltedOn(() => slotLostError('s', { publication: 'p' }, 'wal_removed'));
    expect(halt).not.toHaveProperty('confirmedLsn');
    expect(readiness.confirmedLsn).toBeNull();
    expect(readiness.deliveredLsn).toBeNull();
  });
});

const CHECKPOINT_COMMIT = Date.parse('2026-12-07T20:00:00.000Z');

describe('a relay halted by a lost slot at its start', () => {
  it('names the republish from the commit time of the checkpoint it read, a minute before it, not a placeholder', async () => {
    const lost = () => slotLostError('s', { publication: 'p' }, 'wal_removed');
    const { error, halt } = await haltedOn(lost, async () => ({ lsn: 0x2000n, timeline: 1, commitTimeMs: CHECKPOINT_COMMIT }));
    expect(error.details).toMatchObject({ checkpointCommitTime: '2026-12-07T20:00:00.000Z' });
    expect(error.hint).toContain('outbox-relay republish --since 2026-12-07T19:59:00.000Z --publication p');
    expect(error.hint).not.toContain('<time of the last delivered event>');
    expect(halt.fix).toBe(error.hint);
    // The error as the pre-flight built it, apart from the time: the message and the rest of the fix.
    expect(error.message).toBe(lost().message);
    expect(error.hint).toBe(lost().hint?.replace('<time of the last delivered event>', '2026-12-07T19:59:00.000Z'));
  });
});

import { describe, expect, it, vi } from 'vitest';
import type { Lsn } from '../../src/lsn.js';
import { slotLostError } from '../../src/source/slot-lost.js';
import { capturingLogger, idleDelivery, relayConfig } from '../support/fakes/relay-setup.js';

// The pre-flight finds the slot lost (wal_status 'lost'), as the checkpoint is read beside it.
vi.mock('../../src/pipeline/session.js', async () => ({
  Session: class extends (await import('../support/fakes/relay-setup.js')).FakeSessionFields {
    async open(): Promise<void> {
      throw (await import('../../src/source/slot-lost.js')).slotLostError('s', { publication: 'p' }, 'wal_removed');
    }
    async close(): Promise<void> {}
  },
}));

const { Relay } = await import('../../src/pipeline/relay.js');

const CHECKPOINT_COMMIT = Date.parse('2026-12-07T20:00:00.000Z');

describe('Relay halted by a lost slot at its start', () => {
  it("names the republish from the commit time of the checkpoint it read, a minute before it, not a placeholder", async () => {
    const { logger, lines } = capturingLogger('info');
    const relay = new Relay(relayConfig({ initialDelayMs: 1, maxDelayMs: 2, maxDurationMs: 100 }) as never, {
      logger,
      sink: { connect: async () => undefined, send: async () => undefined, close: async () => undefined } as never,
      createDelivery: idleDelivery,
      reportPosition: (lsn: Lsn) => lsn,
      startPosition: async () => ({ lsn: 0x2000n, timeline: 1, commitTimeMs: CHECKPOINT_COMMIT }),
    } as never);
    const outcome = await relay.run();
    expect(outcome).toMatchObject({ state: 'halted', error: { code: 'PG_SLOT_LOST', details: { checkpointCommitTime: '2026-12-07T20:00:00.000Z' } } });
    expect(outcome.error?.hint).toContain('outbox-relay republish --since 2026-12-07T19:59:00.000Z --publication p');
    expect(outcome.error?.hint).not.toContain('<time of the last delivered event>');
    const halt = lines.find((l) => l.code === 'PG_SLOT_LOST');
    expect(halt?.fix).toBe(outcome.error?.hint);
    // The error as the pre-flight built it, apart from the time: the message and the rest of the fix.
    const plain = slotLostError('s', { publication: 'p' }, 'wal_removed');
    expect(outcome.error?.message).toBe(plain.message);
    expect(outcome.error?.hint).toBe(plain.hint?.replace('<time of the last delivered event>', '2026-12-07T19:59:00.000Z'));
  });
});

import pino from 'pino';
import { describe, expect, it, vi } from 'vitest';
import type { Lsn } from '../../src/lsn.js';
import { idleDelivery, relayConfig } from '../support/fakes/relay-setup.js';

/** What each session was started with: (the relay's confirmed position, the requested start). */
const starts: [Lsn, Lsn | undefined][] = [];
let opens = 0;

// A fake replication session: the first connection fails (PostgreSQL restarting, or the slot still held by the
// instance this one replaces), the second streams and ends with a halt.
vi.mock('../../src/pipeline/session.js', async () => ({
  Session: (await import('../support/fakes/relay-setup.js')).haltingSession(
    () => opens++ === 0,
    (lastConfirmed, requested) => starts.push([lastConfirmed, requested]),
  ),
}));

const { Relay } = await import('../../src/pipeline/relay.js');

describe('Relay, the first start position', () => {
  it('is decided again when the first connection failed, not replaced by the slot position (which a replay window keeps behind the checkpoint)', async () => {
    const checkpoints = [0x5000n, 0x6000n];
    let decided = 0;
    const streaming: unknown[][] = [];
    const config = relayConfig({ initialDelayMs: 1, maxDelayMs: 2, maxDurationMs: 60_000 });
    const relay = new Relay(config as never, {
      logger: pino({ level: 'silent' }),
      sink: { connect: async () => undefined, send: async () => undefined, close: async () => undefined } as never,
      createDelivery: idleDelivery,
      // The strategy's choice (the checkpoint, ahead of the slot); another instance may have moved it meanwhile.
      startPosition: async () => ({ lsn: checkpoints[decided++]!, timeline: undefined }),
      // at-least-once and at-most-once: a later session starts at the slot.
      resumePosition: undefined,
      reportPosition: (lsn: Lsn) => lsn,
      // Told where the slot was when the session opened it: a replay window's floor (another instance may have moved it).
      streamingOn: (...args: unknown[]) => void streaming.push(args),
      observer: {},
    } as never);
    await relay.run();
    expect(opens).toBe(2);
    expect(decided).toBe(2);
    expect(starts).toEqual([[0n, 0x6000n]]);
    expect(streaming).toEqual([[1, 0x1000n]]);
  });
});

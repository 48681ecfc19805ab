import { describe, expect, it, vi } from 'vitest';
import { RelayError } from '../../src/errors.js';
import type { Lsn } from '../../src/lsn.js';
import { capturingLogger, idleDelivery, relayConfig } from '../support/fakes/relay-setup.js';

let closes = 0;

// A fake replication session whose connection opens at once and is closed by the stop.
vi.mock('../../src/pipeline/session.js', () => ({
  Session: class {
    ended = new Promise(() => undefined);
    streaming = new Promise(() => undefined);
    confirmed: Lsn = 0n;
    async open(): Promise<void> {}
    start(): Lsn {
      throw new RelayError('INTERNAL', 'a stopped relay must not start streaming (fake)');
    }
    endIntake(): undefined {
      return undefined;
    }
    async close(): Promise<void> {
      closes++;
    }
  },
}));

const { Relay } = await import('../../src/pipeline/relay.js');

describe('Relay, a stop while a session starts', () => {
  it('does not wait for a start position that waits on a server (a checkpoint read from a partition without a leader): stopped at once', async () => {
    const { logger, lines } = capturingLogger('info');
    const relay = new Relay(relayConfig({ initialDelayMs: 1, maxDelayMs: 2, maxDurationMs: 600_000 }) as never, {
      logger,
      sink: { connect: async () => undefined, send: async () => undefined, close: async () => undefined } as never,
      createDelivery: idleDelivery,
      // Never settles here: the checkpoint read waits on Kafka (up to a minute in librdkafka).
      startPosition: () => new Promise<Lsn | undefined>(() => undefined),
      reportPosition: (lsn: Lsn) => lsn,
      observer: {},
    } as never);
    const outcome = relay.run();
    await new Promise((resolve) => setTimeout(resolve, 20));
    await relay.stop();
    const settled = await Promise.race([outcome, new Promise((resolve) => setTimeout(() => resolve('still starting'), 1000))]);
    expect(settled).toEqual({ state: 'stopped' });
    // Its connection holds the slot's lock: closed only once the start settled (a standby could meet a claim still
    // under way), or by the server when the process exits.
    expect(closes).toBe(0);
    expect(lines.filter((l) => l.level >= 50)).toEqual([]);
  });
});

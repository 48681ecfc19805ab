import { describe, expect, it, vi } from 'vitest';
import { RelayError } from '../../src/errors.js';
import type { Lsn } from '../../src/lsn.js';
import type { RelayState } from '../../src/pipeline/observer.js';
import type { CloseOptions } from '../../src/sink/sink.js';
import { capturingLogger, idleDelivery, relayConfig } from '../support/fakes/relay-setup.js';

// A fake replication session that finds the slot held by another instance: the relay waits as a standby.
vi.mock('../../src/pipeline/session.js', () => ({
  Session: class {
    ended = new Promise(() => undefined);
    streaming = new Promise(() => undefined);
    confirmed: Lsn = 0n;
    async open(): Promise<void> {
      throw new RelayError('PG_SLOT_ACTIVE', 'slot in use (fake)', { retriable: true, details: { activePid: 7 } });
    }
    async close(): Promise<void> {}
  },
}));

// The slot is never released: the standby waits until the stop wakes it.
vi.mock('../../src/source/standby-wait.js', () => ({
  StandbyWait: class {
    untilReleased(signal: AbortSignal): Promise<void> {
      return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    }
  },
}));

const { Relay } = await import('../../src/pipeline/relay.js');

function relay(options: { connect?: () => Promise<void>; drainEnded?: (drained: boolean, closeBy: number) => Promise<void>; createDelivery?: () => unknown } = {}) {
  const states: RelayState[] = [];
  const closes: CloseOptions[] = [];
  const { logger, lines } = capturingLogger('info');
  const instance = new Relay(relayConfig({ initialDelayMs: 1, maxDelayMs: 2, maxDurationMs: 600_000 }) as never, {
    logger,
    sink: { connect: options.connect ?? (async () => undefined), send: async () => undefined, close: async (given: CloseOptions) => void closes.push(given) } as never,
    createDelivery: options.createDelivery ?? idleDelivery,
    startPosition: async () => undefined,
    reportPosition: (lsn: Lsn) => lsn,
    drainEnded: options.drainEnded,
    observer: { stateChanged: (state: RelayState) => void states.push(state) },
  } as never);
  return { instance, states, closes, lines };
}

describe('Relay, a stop outside streaming', () => {
  it('a standby does not pass through draining (outbox_relay_active would read 1 for an instance without the slot), and run() ends after the stop', async () => {
    let drainEndedAt = 0;
    const drainEnded = () =>
      new Promise<void>((resolve) =>
        setTimeout(() => {
          drainEndedAt = Date.now();
          resolve();
        }, 100),
      );
    const { instance, states } = relay({ drainEnded });
    const outcome = instance.run();
    await vi.waitFor(() => expect(states).toContain('standby'));
    void instance.stop();
    const result = await outcome;
    expect(result, JSON.stringify(result)).toEqual({ state: 'stopped' });
    // Before: run() returned while the stop's last checkpoint write was under way, and the command closed the
    // writer under it.
    expect(drainEndedAt).toBeGreaterThan(0);
    expect(states).toEqual(['standby', 'stopped']);
  });

  it("a drained stop flushes the sink by the stop's deadline, the closeBy the last checkpoint write gets (kafkajs waited its own 5 s, past the watchdog)", async () => {
    let closeBy: number | undefined;
    const { instance, states, closes } = relay({ drainEnded: async (_drained, by) => void (closeBy = by) });
    const outcome = instance.run();
    await vi.waitFor(() => expect(states).toContain('standby'));
    await instance.stop();
    expect(await outcome).toEqual({ state: 'stopped' });
    expect(closeBy).toEqual(expect.any(Number));
    expect(closes).toEqual([{ flush: true, closeBy }]);
  });

  it('a relay that failed: the stop changes nothing (no draining, no stopped over the failure)', async () => {
    const { instance, states } = relay({ connect: async () => Promise.reject(new RelayError('KAFKA_AUTH', 'refused (fake)')) });
    expect(await instance.run()).toMatchObject({ state: 'failed' });
    await instance.stop();
    expect(states).toEqual(['failed']);
  });
});

describe('Relay, a stop whose grace (100 ms) runs out with events unacknowledged', () => {
  /** Its grace-period lines, with `inFlight` events unacknowledged, `positionHeld` of them handed off at-most-once. */
  async function graceOver(inFlight: number, positionHeld: number | undefined) {
    // Idle until the stop's drain begins; then never again (Kafka acknowledges nothing).
    let draining = false;
    const createDelivery = () => ({
      ...(idleDelivery() as object),
      inFlightEvents: inFlight,
      positionHeldEvents: positionHeld,
      drain: () => {
        draining = true;
        return new Promise(() => undefined);
      },
      whenIdle: () => (draining ? new Promise(() => undefined) : Promise.resolve()),
    });
    const { instance, states, lines } = relay({ createDelivery });
    const outcome = instance.run();
    await vi.waitFor(() => expect(states).toContain('standby'));
    await instance.stop();
    await outcome;
    return lines.filter((l) => l.msg.startsWith('grace period over'));
  }

  it('at-most-once: does not say that events whose position PostgreSQL holds are re-sent after the restart (none streams them again)', async () => {
    expect(await graceOver(5, 3)).toEqual([
      expect.objectContaining({
        level: 40,
        inFlight: 5,
        positionHeld: 3,
        msg: 'grace period over with events unacknowledged: at-most-once does not send again those whose position PostgreSQL holds (positionHeld: lost unless Kafka took them before the exit, and not counted as dropped); the others are re-sent after restart unless PostgreSQL took their position',
      }),
    ]);
  });

  it('otherwise (the other guarantees): they are re-sent after the restart', async () => {
    for (const positionHeld of [0, undefined]) {
      expect(await graceOver(5, positionHeld)).toEqual([expect.objectContaining({ level: 40, inFlight: 5, msg: 'grace period over with events unacknowledged: they will be re-sent after restart' })]);
    }
  });
});

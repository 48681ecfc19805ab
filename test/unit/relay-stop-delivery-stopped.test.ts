import { describe, expect, it, vi } from 'vitest';
import { RelayError } from '../../src/errors.js';
import type { Lsn } from '../../src/lsn.js';
import type { RelayState } from '../../src/pipeline/observer.js';
import type { DeliveryCallbacks } from '../../src/sink/delivery.js';
import type { CloseOptions } from '../../src/sink/sink.js';
import { capturingLogger, idleDelivery, relayConfig } from '../support/fakes/relay-setup.js';

/** Sessions lose their connection as they start: the relay is in a reconnect's backoff when it is stopped. */
let losesConnection = false;
const connectionLost = () => new RelayError('PG_STREAM_FAILED', 'connection lost (fake)', { retriable: true });

// A fake replication session that streams until it is closed; its open transaction is read to its commit at once.
vi.mock('../../src/pipeline/session.js', async () => ({
  Session: class extends (await import('../support/fakes/relay-setup.js')).FakeSessionFields {
    private end!: (error: RelayError | undefined) => void;
    ended = new Promise<RelayError | undefined>((resolve) => (this.end = resolve));
    async open(): Promise<void> {}
    start(): Lsn {
      if (losesConnection) this.end(connectionLost());
      return 0n;
    }
    async endIntakeAtCommit(): Promise<Lsn> {
      return 0x100n;
    }
    async close(): Promise<void> {
      this.end(undefined);
    }
  },
}));

const { Relay } = await import('../../src/pipeline/relay.js');

/**
 * A relay stopped while its delivery holds events (`at`: streaming, or in a reconnect's backoff after the session
 * that handed them over lost its connection); the delivery then stops with `error`. What the stop and run() told
 * the checkpoint writer (drained or not) and the sink (its closes' options), run()'s outcome, the lines logged at
 * info and above, the states it went through and the one it ended in.
 */
async function stopWhileDeliveryStops(error: RelayError, at: 'streaming' | 'reconnecting' = 'streaming') {
  losesConnection = at === 'reconnecting';
  // Idle until the stop: then it holds events Kafka does not acknowledge.
  let idle = Promise.resolve();
  let callbacks!: DeliveryCallbacks;
  const closes: (CloseOptions | undefined)[] = [];
  const drains: boolean[] = [];
  /** The stop's deadline the checkpoint writer was given. */
  let closeBy: number | undefined;
  const states: RelayState[] = [];
  // A grace and a backoff longer than the test: only the delivery ends the drain, only the stop the backoff.
  const config = { ...(relayConfig({ initialDelayMs: 600_000, maxDelayMs: 600_000, maxDurationMs: 600_000 }) as object), shutdownGraceMs: 600_000 };
  const { logger, lines } = capturingLogger('info');
  const relay = new Relay(config as never, {
    logger,
    sink: { connect: async () => undefined, send: async () => undefined, close: async (options?: CloseOptions) => void closes.push(options) } as never,
    createDelivery: (given: DeliveryCallbacks) => {
      callbacks = given;
      return { ...(idleDelivery() as object), whenIdle: () => idle };
    },
    reportPosition: (lsn: Lsn) => lsn,
    drainEnded: async (drained: boolean, by: number) => {
      drains.push(drained);
      closeBy = by;
    },
    observer: { stateChanged: (state: RelayState) => void states.push(state) },
  } as never);
  const outcome = relay.run();
  await vi.waitFor(() => expect(states).toContain(at));
  let stopped!: () => void;
  idle = new Promise((resolve) => (stopped = resolve));
  const stopping = relay.stop();
  // Delivery gives up only once the drain is under way: a relay stopped in a backoff has left its loop by then.
  await vi.waitFor(() => expect(lines.map((l) => l.msg)).toContain('stopping: draining in-flight events'));
  // As the engine's fail(): its idle waiters woken (whenIdle() resolves for a dead engine too), then the error.
  stopped();
  callbacks.stopped(error);
  await stopping;
  return { drains, closeBy, closes, outcome: await outcome, lines, states, state: relay.currentState };
}

describe('Relay, a stop whose drain ends because delivery stopped', () => {
  it('Kafka gone past retry.maxDuration: not drained, so no last checkpoint write and no flush of the producer; the failure is the outcome', async () => {
    const { drains, closes, outcome } = await stopWhileDeliveryStops(new RelayError('RETRIES_EXHAUSTED', 'Kafka unavailable for 60 s (fake)'));
    expect(outcome).toMatchObject({ state: 'failed', error: { code: 'RETRIES_EXHAUSTED' } });
    // Before: drained (true), and both closes (the stop's, run()'s) flushed: 5 s each on brokers that no longer answer.
    expect(drains).toEqual([false]);
    // run()'s close after the failure (no stop deadline there), and the stop's.
    expect(closes).toEqual([{ flush: false }, { flush: false, closeBy: expect.any(Number) as unknown }]);
  });

  // Before: streaming, [[50, 'giving up'], [30, 'stopped']] and the state 'stopped', set by the stop after run()
  // failed (in either order); reconnecting, only [[30, 'stopped']] and the outcome 'stopped': the failure was lost.
  it.each(['streaming', 'reconnecting'] as const)('Kafka gone past retry.maxDuration, stopped while %s: the exit is the failure\'s, one "giving up" line and the failed state, no "stopped" line or state', async (at) => {
    const { lines, states, state, outcome } = await stopWhileDeliveryStops(new RelayError('RETRIES_EXHAUSTED', 'Kafka unavailable for 60 s (fake)'), at);
    const last = lines.filter((l) => l.msg === 'giving up' || l.msg === 'stopped').map((l) => [l.level, l.msg]);
    expect({ outcome: outcome.state, last, state, stoppedState: states.includes('stopped') }).toEqual({ outcome: 'failed', last: [[50, 'giving up']], state: 'failed', stoppedState: false });
  });

  it('a halt over a record Kafka refused, stopped in a reconnect\'s backoff: the halt is the outcome, with its error line naming the refusal', async () => {
    const { lines, outcome } = await stopWhileDeliveryStops(new RelayError('RECORD_TOO_LARGE', 'refused (fake)'), 'reconnecting');
    // Before: outcome 'stopped' (exit 0) and no error line: the refused event went unnamed.
    expect(outcome).toMatchObject({ state: 'halted', error: { code: 'RECORD_TOO_LARGE' } });
    expect(lines.filter((l) => l.level === 50)).toMatchObject([{ code: 'RECORD_TOO_LARGE', msg: expect.stringMatching(/^halted: /) }]);
  });

  it('a halt over a record Kafka refused: Kafka answers, so the last checkpoint is written and the producer flushed, as before', async () => {
    const { drains, closeBy, closes, outcome } = await stopWhileDeliveryStops(new RelayError('RECORD_TOO_LARGE', 'refused (fake)'));
    expect(outcome).toMatchObject({ state: 'halted', error: { code: 'RECORD_TOO_LARGE' } });
    expect(drains).toEqual([true]);
    // By the stop's deadline, as the last checkpoint write.
    expect(closes).toEqual([{ flush: true, closeBy }]);
  });
});

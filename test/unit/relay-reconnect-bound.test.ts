import { describe, expect, it, vi } from 'vitest';
import type { RelayError } from '../../src/errors.js';
import type { Lsn } from '../../src/lsn.js';
import { capturingLogger, idleDelivery, relayConfig } from '../support/fakes/relay-setup.js';

let sessions = 0;

// The server ends the command with a retriable error before streaming anything (a walsender that fails at start,
// every time). Nothing was ever streamed: the outage goes on.
vi.mock('../../src/pipeline/session.js', async () => ({
  Session: (await import('../support/fakes/relay-setup.js')).failingSession(() => sessions++, { streams: () => false, progresses: () => false, message: 'walsender failed at start (fake)' }),
}));

const { Relay } = await import('../../src/pipeline/relay.js');

describe('Relay, reconnecting to a server that accepts START_REPLICATION and fails before streaming', () => {
  it("keeps the backoff and the retry.maxDuration bound, and logs the outage once (not once per attempt), with PostgreSQL's fix as /readyz gives it", async () => {
    const { logger, lines } = capturingLogger('debug');
    // A bound of 1.5 s: the attempts counted below must fit in it on a loaded machine too (at 200 ms, with the load
    // average at 14 on two cores, 7 did).
    const config = relayConfig({ initialDelayMs: 2, maxDelayMs: 4, maxDurationMs: 1500 });
    const halts: RelayError[] = [];
    const causes: unknown[] = [];
    const relay = new Relay(config as never, {
      logger,
      sink: { connect: async () => undefined, send: async () => undefined, close: async () => undefined } as never,
      createDelivery: idleDelivery,
      reportPosition: (lsn: Lsn) => lsn,
      // What /readyz reads: why the relay is reconnecting, and (once it gave up) the failure.
      observer: { halted: (error: RelayError) => halts.push(error), stateChanged: (state: string) => state === 'reconnecting' && causes.push(relay.reconnectCause) },
    } as never);
    const outcome = relay.run();
    const settled = await Promise.race([outcome, new Promise<'running'>((resolve) => setTimeout(() => resolve('running'), 15_000))]);
    if (settled === 'running') {
      await relay.stop({ openTransaction: 'drop' });
      await outcome;
    }
    const warns = lines.filter((l) => l.msg === 'replication connection lost: reconnecting');
    const backs = lines.filter((l) => l.msg === 'replication connection back: streaming resumed');
    expect({ sessions: sessions > 1, warns: warns.length, backs: backs.length }).toEqual({ sessions: true, warns: 1, backs: 0 });
    // A failure without a fix of its own (a refused connection) gets PostgreSQL's, in the log and in /readyz.
    const fix = expect.stringMatching(/^check that PostgreSQL \(postgres\.url\) is up and accepts connections from the relay/);
    expect(warns[0]).toMatchObject({ fix });
    // The backoff grew across the sessions that failed before streaming: a first attempt's delay is at most
    // retry.initialDelay × 2 (jittered from 1 to 2 ms), later ones up to retry.maxDelay (1 to 4 ms). Reset by each
    // session, every delay would stay at 2 ms or less (of the dozens here, about half are above it).
    const delays = lines.filter((l) => l.msg === 'PostgreSQL still unavailable').map((l) => (l as unknown as { retryInMs: number }).retryInMs);
    expect(delays.length).toBeGreaterThan(10);
    expect(Math.max(...delays)).toBeGreaterThan(2);
    expect(Math.max(...delays)).toBeLessThanOrEqual(4);
    expect(settled).toMatchObject({ state: 'failed', error: { code: 'RETRIES_EXHAUSTED' } });
    expect(halts.map((e) => e.code)).toEqual(['RETRIES_EXHAUSTED']);
    expect(causes[0]).toEqual({ system: 'PostgreSQL', code: 'PG_STREAM_FAILED', message: 'walsender failed at start (fake)', fix, since: expect.any(String) });
    // Every attempt names the outage's start, not its own.
    expect(new Set(causes.map((c) => (c as { since: string }).since)).size).toBe(1);
  });
});

import { describe, expect, it, vi } from 'vitest';
import type { Lsn } from '../../src/lsn.js';
import type { RetryCause } from '../../src/pipeline/relay.js';
import { capturingLogger, idleDelivery, relayConfig } from '../support/fakes/relay-setup.js';

const STANDBY_FIX = 'point --postgres-url at the primary (fake)';

// Every session fails before streaming with a failure that has a fix, as a server in recovery's does.
vi.mock('../../src/pipeline/session.js', async () => ({
  Session: (await import('../support/fakes/relay-setup.js')).failingSession(() => undefined, { streams: () => false, progresses: () => false, message: 'PostgreSQL is a standby (fake)', hint: STANDBY_FIX }),
}));

const { Relay } = await import('../../src/pipeline/relay.js');

describe('Relay, reconnecting after a PostgreSQL failure that has a fix', () => {
  it('logs the fix on the outage\'s warn line and its attempts\' lines, the fix /readyz shows', async () => {
    const { logger, lines } = capturingLogger('debug');
    const causes: (RetryCause | undefined)[] = [];
    // An outage of 1 s at 1–2 ms per attempt: with 100 ms, a loaded machine (load 15) gave up before a second attempt.
    const relay = new Relay(relayConfig({ initialDelayMs: 1, maxDelayMs: 2, maxDurationMs: 1000 }) as never, {
      logger,
      sink: { connect: async () => undefined, send: async () => undefined, close: async () => undefined } as never,
      createDelivery: idleDelivery,
      reportPosition: (lsn: Lsn) => lsn,
      observer: { stateChanged: (state: string) => state === 'reconnecting' && causes.push(relay.reconnectCause) },
    } as never);
    expect(await relay.run()).toMatchObject({ state: 'failed', error: { code: 'RETRIES_EXHAUSTED' } });
    const warns = lines.filter((l) => l.msg === 'replication connection lost: reconnecting');
    expect(warns).toMatchObject([{ level: 40, code: 'PG_STREAM_FAILED', err: 'PostgreSQL is a standby (fake)', fix: STANDBY_FIX }]);
    const attempts = lines.filter((l) => l.msg === 'PostgreSQL still unavailable');
    expect(attempts.length).toBeGreaterThan(0);
    expect(new Set(attempts.map((l) => l.fix))).toEqual(new Set([STANDBY_FIX]));
    expect(causes[0]?.fix).toBe(STANDBY_FIX);
  });
});

import { describe, expect, it, vi } from 'vitest';
import { RelayError } from '../../src/errors.js';
import type { Lsn } from '../../src/lsn.js';
import { RelayMetrics } from '../../src/metrics/relay-metrics.js';
import { metricValue } from '../support/ops-http.js';
import { capturingLogger, idleDelivery, relayConfig } from '../support/fakes/relay-setup.js';

/**
 * What each replication session meets, in turn: `refused` (the connection), `active` (the slot held by another
 * instance), `silent` (START_REPLICATION sent, the server fails it before any message), `lost` (streams past its
 * start, then the connection is lost), `streams` (streams past its start until the test stops it).
 */
type Meets = 'refused' | 'active' | 'silent' | 'lost' | 'streams';
let script: Meets[] = [];
let made = 0;

vi.mock('../../src/pipeline/session.js', async () => {
  const { FakeSessionFields } = await import('../support/fakes/relay-setup.js');
  const pending = () => new Promise<never>(() => undefined);
  return {
    Session: class extends FakeSessionFields {
      readonly meets = script[made++] ?? 'streams';
      override streaming = this.meets === 'silent' ? pending() : Promise.resolve();
      override progressed = this.meets === 'silent' ? pending() : Promise.resolve();
      private end!: (error: RelayError | undefined) => void;
      ended = new Promise<RelayError | undefined>((resolve) => (this.end = resolve));
      backendPid = null;
      async open(): Promise<void> {
        if (this.meets === 'refused') throw new RelayError('PG_STREAM_FAILED', 'connection refused (fake)', { retriable: true });
        if (this.meets === 'active') throw new RelayError('PG_SLOT_ACTIVE', 'slot in use (fake)', { retriable: true, details: { activePid: 7 } });
      }
      start(): Lsn {
        if (this.meets !== 'streams') setTimeout(() => this.end(new RelayError('PG_STREAM_FAILED', 'connection lost (fake)', { retriable: true })), 1);
        return 0n;
      }
      endIntake(): Lsn | undefined {
        return undefined;
      }
      async endIntakeAtCommit(): Promise<Lsn | undefined> {
        return undefined;
      }
      async close(): Promise<void> {
        this.end(undefined);
      }
    },
  };
});

// The other instance lets the slot go at once.
vi.mock('../../src/source/standby-wait.js', () => ({
  StandbyWait: class {
    async untilReleased(): Promise<void> {}
  },
}));

const { Relay } = await import('../../src/pipeline/relay.js');

/** outbox_relay_reconnects_total once every session of `meets` that streams past its start was seen to. */
async function reconnectsAfter(meets: Meets[]): Promise<number | undefined> {
  script = meets;
  made = 0;
  const metrics = new RelayMetrics();
  let progressed = 0;
  const { logger } = capturingLogger('silent');
  const relay = new Relay(relayConfig({ initialDelayMs: 1, maxDelayMs: 2, maxDurationMs: 600_000 }) as never, {
    logger,
    sink: { connect: async () => undefined, send: async () => undefined, close: async () => undefined },
    // Told after the reconnect was counted, for each session that streamed past its start.
    createDelivery: () => ({ ...(idleDelivery() as object), sourceProgressed: () => void progressed++ }),
    reportPosition: (lsn: Lsn) => lsn,
    observer: metrics,
  } as never);
  const outcome = relay.run();
  await vi.waitFor(() => expect(progressed).toBe(meets.filter((m) => m === 'lost' || m === 'streams').length));
  await relay.stop({ openTransaction: 'drop' });
  await outcome;
  return metricValue(await metrics.render({ inFlight: { events: 0, bytes: 0, windowFullMs: 0, windowFullSinceMs: undefined } }), 'outbox_relay_reconnects_total');
}

describe('outbox_relay_reconnects_total: sessions started after a lost connection or a standby takeover', () => {
  it.each<[string, Meets[], number]>([
    // Before: 1 each, the first start's failures counted as a lost connection.
    ['not a first start whose connection was refused, then retried', ['refused', 'refused', 'streams'], 0],
    ['not a first start whose START_REPLICATION failed before the server sent anything, then retried', ['silent', 'silent', 'streams'], 0],
    ['a session after one that streamed and lost its connection, the attempts between included', ['lost', 'refused', 'streams'], 1],
    ['a takeover by a standby, also at its first start', ['active', 'streams'], 1],
    ['a takeover whose first attempt failed', ['active', 'refused', 'streams'], 1],
  ])('%s', async (_case, meets, reconnects) => {
    expect(await reconnectsAfter(meets)).toBe(reconnects);
  });
});

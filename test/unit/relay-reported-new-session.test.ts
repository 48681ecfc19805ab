import { describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../src/config/relay-config.js';
import type { RelayConfig, RetryPolicy } from '../../src/config/types.js';
import type { Lsn } from '../../src/lsn.js';
import type { RelayState } from '../../src/pipeline/observer.js';
import { engineDelivery } from '../support/fakes/engine-harness.js';
import { FakeSink } from '../support/fakes/fake-sink.js';
import { capturingLogger } from '../support/fakes/relay-setup.js';
import { connectFake, firstTransaction, type FakeWalsender } from '../support/fakes/replication-session.js';

/** The walsender of each session the relay opened, in order. */
const walsenders: FakeWalsender[] = [];

// The real session, its open() replaced: a ReplicationStream over a fake walsender and the slot as pre-flight finds
// it (confirmed at 0/1000: where the replay window below keeps it).
vi.mock('../../src/pipeline/session.js', async (importOriginal) => {
  const actual = await importOriginal<typeof import('../../src/pipeline/session.js')>();
  return {
    Session: class extends actual.Session {
      override async open(): Promise<void> {
        walsenders.push(connectFake(this, (this as unknown as { config: RelayConfig }).config, { walEnd: 0x3000n, walSenderTimeoutMs: 0 }));
      }
    },
  };
});

const { Relay } = await import('../../src/pipeline/relay.js');

const RETRY: RetryPolicy = { initialDelayMs: 1, maxDelayMs: 1, maxDurationMs: 3_600_000, recordMaxAttempts: 3, recordMaxDurationMs: 3_600_000 };

/** A replay window that keeps the reported position at 0/1000. */
const HELD_AT: Lsn = 0x1000n;

/** A running relay whose window keeps the slot at HELD_AT, once its first session delivered up to 0/2010. */
async function deliveredOnFirstSession(stateChanged: (state: RelayState, relay: InstanceType<typeof Relay>) => void) {
  const flags = { 'postgres.url': 'postgres://u@h/db', 'kafka.brokers': 'k:9092', 'postgres.receiveTimeout': '0' };
  const config = { ...loadConfig({ env: {}, flags, required: [] }), retry: RETRY };
  const { logger, lines } = capturingLogger('info');
  const sink = new FakeSink();
  const relay: InstanceType<typeof Relay> = new Relay(config, {
    logger,
    sink,
    createDelivery: engineDelivery({ guarantee: 'at-least-once', sink }, RETRY),
    reportPosition: (lsn: Lsn) => (lsn < HELD_AT ? lsn : HELD_AT),
    observer: { stateChanged: (state: RelayState) => stateChanged(state, relay) },
  });
  const running = relay.run();
  await vi.waitFor(() => expect(walsenders).toHaveLength(1));
  const first = walsenders[0]!;
  first.keepalive(0x1000n);
  firstTransaction(first);
  await vi.waitFor(() => expect(relay.deliveredLsn).toBe(0x2010n));
  return { relay, running, first, lines };
}

describe("Relay: /readyz's confirmedLsn (reportedLsn) while a new session has not reported yet", () => {
  it("is the position PostgreSQL holds, not the delivered one a replay window keeps it behind, and never goes back", async () => {
    const states: RelayState[] = [];
    const { relay, running, first } = await deliveredOnFirstSession((state) => void states.push(state));
    expect(relay.reportedLsn).toBe(HELD_AT);
    // The server ends the connection: the next session starts and has heard nothing from its server yet.
    first.client.emit('end');
    await vi.waitFor(() => expect(walsenders).toHaveLength(2));
    await vi.waitFor(() => expect(states.filter((s) => s === 'streaming')).toHaveLength(2));
    expect(walsenders[1]!.statuses).toEqual([]);
    // Before: 0/2010, delivered but never sent to PostgreSQL, back to 0/1000 at the session's first status.
    expect(relay.reportedLsn).toBe(HELD_AT);
    walsenders[1]!.keepalive(0x2010n);
    expect(walsenders[1]!.statuses.map((s) => s.flushLsn)).toEqual([HELD_AT]);
    expect(relay.reportedLsn).toBe(HELD_AT);
    await relay.stop();
    await running;
  });
});

describe("Relay: the final line's confirmedLsn after a session that sent PostgreSQL no status", () => {
  it('is the position PostgreSQL holds, as /readyz says, with the delivered one as deliveredLsn', async () => {
    walsenders.length = 0;
    const states: RelayState[] = [];
    // Stopped as the second session's end is taken for a lost connection: before any later session opens.
    const { relay, running, first, lines } = await deliveredOnFirstSession((state, relay) => {
      states.push(state);
      if (states.filter((s) => s === 'reconnecting').length === 2) void relay.stop();
    });
    first.client.emit('end');
    await vi.waitFor(() => expect(states.filter((s) => s === 'streaming')).toHaveLength(2));
    // The second session's connection ends before the server's first message: it never sent a status.
    walsenders[1]!.client.emit('end');
    expect(await running).toEqual({ state: 'stopped' });
    expect(walsenders).toHaveLength(2);
    expect(walsenders[1]!.statuses).toEqual([]);
    const stopped = lines.find((l) => l.msg === 'stopped')!;
    // Before: confirmedLsn 0/2010 (delivered, never sent to PostgreSQL, past the window) and no deliveredLsn.
    expect({ confirmedLsn: stopped.confirmedLsn, deliveredLsn: stopped.deliveredLsn }).toEqual({ confirmedLsn: '0/1000', deliveredLsn: '0/2010' });
    expect(relay.reportedLsn).toBe(HELD_AT);
  });
});

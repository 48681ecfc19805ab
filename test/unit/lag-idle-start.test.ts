import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../src/config/relay-config.js';
import type { Lsn } from '../../src/lsn.js';
import { RelayMetrics } from '../../src/metrics/relay-metrics.js';
import { RepeatedLines } from '../../src/outage-log.js';
import { Session } from '../../src/pipeline/session.js';
import type { Delivery } from '../../src/sink/delivery.js';
import { metricValue } from '../support/ops-http.js';

const silent = pino({ level: 'silent' });

const idle = { inFlight: { events: 0, bytes: 0, windowFullMs: 0, windowFullSinceMs: undefined } };

interface StreamHandlers {
  onKeepalive(walEnd: Lsn, replyRequested: boolean): void;
}

describe('end-to-end lag after a start on an idle server', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('is near 0, not the time since the start, when the server has written nothing since the slot\'s position', async () => {
    vi.useFakeTimers({ toFake: ['Date'], now: 1_700_000_000_000 });
    const config = loadConfig({ env: {}, flags: { 'postgres.url': 'postgres://u@h/db', 'kafka.brokers': 'k:9092', statusInterval: '10s' }, required: [] });
    const metrics = new RelayMetrics();
    metrics.stateChanged('streaming');
    const delivery = { openSession: () => undefined, endSession: () => undefined } as unknown as Delivery;
    // Wired as run does: every position reported to PostgreSQL goes through metrics.reported (no replay window).
    const session = new Session(config, delivery, silent, new RepeatedLines(silent), metrics, () => undefined, (confirmed) => metrics.reported(confirmed));
    let handlers: StreamHandlers | undefined;
    const inner = session as unknown as { slot: unknown; stream: unknown };
    // The relay confirmed everything before its restart; nothing was written since: the WAL ends at the slot's position.
    inner.slot = { confirmedFlush: 0x5000n, walStatus: 'reserved', tablesByOid: new Map(), walEnd: 0x5000n, walSenderTimeoutMs: 60_000, history: { timeline: 1, switchpoints: new Map() } };
    inner.stream = { start: (_options: unknown, h: StreamHandlers) => (handlers = h), sendStatus: async () => undefined, pause: () => undefined, close: async () => undefined };
    expect(session.start({ lsn: 0n, timeline: undefined }, undefined)).toBe(0x5000n);
    // The idle server's keepalives, the relay asking for them while quiet: everything it sent is confirmed.
    for (let minute = 1; minute <= 10; minute++) {
      vi.setSystemTime(Date.now() + 60_000);
      handlers!.onKeepalive(0x5000n, false);
    }
    vi.setSystemTime(Date.now() + 500);
    const text = await metrics.render(idle);
    expect(metricValue(text, 'outbox_relay_slot_lag_bytes')).toBe(0);
    expect(metricValue(text, 'outbox_relay_end_to_end_lag_seconds')).toBe(0.5);
    // delivered_lsn said 0 until the next transaction, while confirmed_lsn and /readyz's deliveredLsn said the start.
    expect([metricValue(text, 'outbox_relay_confirmed_lsn'), metricValue(text, 'outbox_relay_delivered_lsn')]).toEqual([0x5000, 0x5000]);
    await session.close();
  });

  it('with a replay window too: the position delivered at the start counts, not only the older one reported', async () => {
    vi.useFakeTimers({ toFake: ['Date'], now: 1_700_000_000_000 });
    const metrics = new RelayMetrics();
    metrics.stateChanged('streaming');
    // The session's start report: the slot is kept 0x4000 behind the start (the checkpoint, delivered).
    metrics.reported(0x1000n, 0x5000n);
    vi.setSystemTime(Date.now() + 10 * 60_000);
    metrics.walPosition(0x5000n);
    vi.setSystemTime(Date.now() + 500);
    const text = await metrics.render(idle);
    expect(metricValue(text, 'outbox_relay_end_to_end_lag_seconds')).toBe(0.5);
    expect([metricValue(text, 'outbox_relay_confirmed_lsn'), metricValue(text, 'outbox_relay_delivered_lsn')]).toEqual([0x1000, 0x5000]);
    expect(metricValue(text, 'outbox_relay_confirmed_lsn')).toBe(0x1000);
  });

  it('a reconnect\'s start report is no moment of catching up: the last keepalive is the lost session\'s, from before the backlog', async () => {
    vi.useFakeTimers({ toFake: ['Date'], now: 1_700_000_000_000 });
    const metrics = new RelayMetrics();
    metrics.stateChanged('streaming');
    metrics.walPosition(0x5000n);
    metrics.confirmed(0x5000n, Date.now() - 100);
    metrics.reported(0x5000n);
    // The replication connection is lost for 20 minutes while the application writes; the new session starts where
    // the last one confirmed and reports that at once.
    metrics.stateChanged('reconnecting');
    vi.setSystemTime(Date.now() + 20 * 60_000);
    metrics.stateChanged('streaming');
    metrics.reported(0x5000n);
    expect(metricValue(await metrics.render(idle), 'outbox_relay_end_to_end_lag_seconds')).toBe(1200);
  });
});

import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/relay-config.js';
import { RelayError } from '../../src/errors.js';
import type { Lsn } from '../../src/lsn.js';
import { RelayMetrics } from '../../src/metrics/relay-metrics.js';
import { RepeatedLines } from '../../src/outage-log.js';
import { Session } from '../../src/pipeline/session.js';
import type { Delivery } from '../../src/sink/delivery.js';
import { metricValue } from '../support/ops-http.js';
import { settle } from '../support/fakes/engine-harness.js';
import type { AckTracker } from '../../src/checkpoint/ack-tracker.js';

const silent = pino({ level: 'silent' });

const idle = { inFlight: { events: 0, bytes: 0, windowFullMs: 0, windowFullSinceMs: undefined } };

interface StreamHandlers {
  onKeepalive(walEnd: Lsn, replyRequested: boolean): void;
}

describe('Session start', () => {
  it('reports the start position at the server\'s first message: the slot-lag gauge never shows the whole WAL as lag', async () => {
    const config = loadConfig({ env: {}, flags: { 'postgres.url': 'postgres://u@h/db', 'kafka.brokers': 'k:9092', 'statusInterval': '10s' }, required: [] });
    const metrics = new RelayMetrics();
    const delivery = { openSession: () => undefined, endSession: () => undefined } as unknown as Delivery;
    const session = new Session(config, delivery, silent, new RepeatedLines(silent), metrics, () => undefined, (confirmed) => metrics.reported(confirmed));
    // What open() would leave, without a connection: the slot as found, and a stream that records what it is sent.
    const sent: Lsn[] = [];
    let handlers: StreamHandlers | undefined;
    const inner = session as unknown as { slot: unknown; stream: unknown };
    inner.slot = { confirmedFlush: 0x1000n, walStatus: 'reserved', tablesByOid: new Map(), walEnd: 0x5000n, walSenderTimeoutMs: 60_000, history: { timeline: 1, switchpoints: new Map() } };
    inner.stream = {
      start: (_options: unknown, h: StreamHandlers) => (handlers = h),
      sendStatus: async (lsn: Lsn) => void sent.push(lsn),
      pause: () => undefined,
      close: async () => undefined,
    };

    expect(session.start({ lsn: 0n, timeline: undefined }, undefined)).toBe(0x1000n);
    // PostgreSQL's first keepalive after START_REPLICATION, long before the first status interval (10 s).
    handlers!.onKeepalive(0x5000n, false);
    expect(sent).toEqual([0x1000n]);
    expect(metricValue(await metrics.render(idle), 'outbox_relay_slot_lag_bytes')).toBe(0x4000);
    handlers!.onKeepalive(0x6000n, false);
    expect(sent).toEqual([0x1000n]);
    await session.close();
  });

  it('progressed: a keepalive beyond the start ends an outage only once it is also beyond where earlier sessions got to (a walsender failing inside a large transaction it decodes again)', async () => {
    const config = loadConfig({ env: {}, flags: { 'postgres.url': 'postgres://u@h/db', 'kafka.brokers': 'k:9092' }, required: [] });
    const delivery = { openSession: () => undefined, endSession: () => undefined } as unknown as Delivery;
    const started = (reachedBefore?: Lsn) => {
      const session = new Session(config, delivery, silent, new RepeatedLines(silent), {}, () => undefined);
      let handlers: StreamHandlers | undefined;
      const inner = session as unknown as { slot: unknown; stream: unknown };
      inner.slot = { confirmedFlush: 0x1000n, walStatus: 'reserved', tablesByOid: new Map(), walEnd: 0x9000n, walSenderTimeoutMs: 60_000, history: { timeline: 1, switchpoints: new Map() } };
      inner.stream = { start: (_options: unknown, h: StreamHandlers) => (handlers = h), sendStatus: async () => undefined, pause: () => undefined, close: async () => undefined };
      session.start({ lsn: 0n, timeline: undefined }, undefined, reachedBefore);
      let progressed = false;
      void session.progressed.then(() => (progressed = true));
      const keepalive = async (walEnd: Lsn) => {
        handlers!.onKeepalive(walEnd, false);
        await new Promise((r) => setImmediate(r));
        return progressed;
      };
      return { session, keepalive };
    };
    // The earlier session decoded to 0/5000 before it failed: this one, from 0/1000, passes its start at 0/3000 but
    // has not got further than that session until beyond 0/5000.
    const again = started(0x5000n);
    expect(await again.keepalive(0x3000n)).toBe(false);
    expect(await again.keepalive(0x5000n)).toBe(false);
    expect(await again.keepalive(0x5001n)).toBe(true);
    expect(again.session.reached).toBe(0x5001n);
    // With no earlier session, beyond the start is enough.
    const first = started();
    expect(await first.keepalive(0x3000n)).toBe(true);
    await again.session.close();
    await first.session.close();
  });

  it('at-most-once\'s hand-off: true once PostgreSQL holds the reported position; a read of the slot that fails ends the session with that error, and the hand-off waits for nothing more', async () => {
    const config = loadConfig({ env: {}, flags: { 'postgres.url': 'postgres://u@h/db', 'kafka.brokers': 'k:9092' }, required: [] });
    const delivery = { openSession: () => undefined, endSession: () => undefined, whenIdle: async () => undefined } as unknown as Delivery;
    const session = new Session(config, delivery, silent, new RepeatedLines(silent), {}, () => undefined);
    const sent: Lsn[] = [];
    const asked: Lsn[] = [];
    let answer: () => Promise<boolean> = async () => true;
    const inner = session as unknown as { slot: unknown; stream: unknown; flushCheck: unknown };
    inner.slot = { confirmedFlush: 0x1000n, walStatus: 'reserved', tablesByOid: new Map(), walEnd: 0x9000n, walSenderTimeoutMs: 60_000, history: { timeline: 1, switchpoints: new Map() } };
    inner.stream = { start: () => undefined, sendStatus: async (lsn: Lsn) => void sent.push(lsn), pause: () => undefined, close: async () => undefined, finished: false };
    inner.flushCheck = { reached: (lsn: Lsn) => (asked.push(lsn), answer()), close: async () => undefined };
    session.start({ lsn: 0n, timeline: undefined }, undefined);
    expect(await session.handOff(() => undefined, { endLsn: undefined, commitTimeMs: 0 })).toBe(true);
    expect({ sent, asked }).toEqual({ sent: [0x1000n], asked: [0x1000n] });
    answer = async () => {
      throw new RelayError('PG_STREAM_FAILED', 'PostgreSQL did not answer the outbox-relay-flush-check query within 1000ms (fake)', { retriable: true });
    };
    expect(await session.handOff(() => undefined, { endLsn: undefined, commitTimeMs: 0 })).toBe(false);
    expect(await session.ended).toMatchObject({ code: 'PG_STREAM_FAILED', message: expect.stringContaining('outbox-relay-flush-check') });
  });

  it('at-most-once: a handed-off position becomes the relay\'s (where the next session resumes, what the checkpoint records) only once PostgreSQL holds it; after a withheld hand-off none does, a keepalive\'s included', async () => {
    const config = loadConfig({ env: {}, flags: { 'postgres.url': 'postgres://u@h/db', 'kafka.brokers': 'k:9092' }, required: [] });
    const delivery = { openSession: () => undefined, endSession: () => undefined, whenIdle: async () => undefined, accept: () => undefined } as unknown as Delivery;
    const relayGot: Lsn[] = [];
    const observerGot: Lsn[] = [];
    const session = new Session(config, delivery, silent, new RepeatedLines(silent), { confirmed: (lsn) => void observerGot.push(lsn) }, (lsn) => void relayGot.push(lsn));
    const answers: { lsn: Lsn; resolve: (held: boolean) => void }[] = [];
    const inner = session as unknown as { slot: unknown; stream: unknown; flushCheck: unknown; tracker: AckTracker };
    inner.slot = { confirmedFlush: 0x1000n, walStatus: 'reserved', tablesByOid: new Map(), walEnd: 0x9000n, walSenderTimeoutMs: 60_000, history: { timeline: 1, switchpoints: new Map() } };
    inner.stream = { start: () => undefined, sendStatus: async () => undefined, pause: () => undefined, close: async () => undefined, finished: false };
    inner.flushCheck = { reached: (lsn: Lsn) => new Promise<boolean>((resolve) => answers.push({ lsn, resolve })), close: async () => undefined };
    session.start({ lsn: 0n, timeline: undefined }, undefined);
    const tracker = inner.tracker;
    const txn = (end: Lsn) => {
      const t = tracker.begin(end - 0x10n, 0, 1);
      tracker.add(t);
      tracker.commit(t, end);
      return t;
    };
    const a = txn(0x2000n);
    const handedA = session.handOff(() => tracker.acknowledge(a, 1), a);
    await settle();
    // A keepalive while A waits: the tracker confirms it, the relay is not told before A is held.
    tracker.keepalive(0x2800n);
    expect(tracker.confirmed).toBe(0x2800n);
    expect(relayGot).toEqual([]);
    answers[0]!.resolve(true);
    expect(await handedA).toBe(true);
    expect(relayGot).toEqual([0x2000n, 0x2800n]);
    // The session ends before PostgreSQL was shown to hold B's position: B is withheld, the relay resumes before it.
    const b = txn(0x3000n);
    const handedB = session.handOff(() => tracker.acknowledge(b, 1), b);
    await settle();
    answers[1]!.resolve(false);
    expect(await handedB).toBe(false);
    tracker.keepalive(0x4000n);
    expect(tracker.confirmed).toBe(0x4000n);
    expect(answers.map((x) => x.lsn)).toEqual([0x2000n, 0x3000n]);
    expect({ relayGot, observerGot }).toEqual({ relayGot: [0x2000n, 0x2800n], observerGot: [0x2000n, 0x2800n] });
    await session.close();
  });

  it('refuses to resume past this server\'s WAL end (a failover while it retried): CHECKPOINT_AHEAD_OF_WAL, nothing started, the connection closed', () => {
    const config = loadConfig({ env: {}, flags: { 'postgres.url': 'postgres://u@h/db', 'kafka.brokers': 'k:9092' }, required: [] });
    let opened = 0;
    const delivery = { openSession: () => void opened++, endSession: () => undefined } as unknown as Delivery;
    const session = new Session(config, delivery, silent, new RepeatedLines(silent), {}, () => undefined);
    let started = false;
    let closed = false;
    const inner = session as unknown as { slot: unknown; stream: unknown };
    // The new primary's slot (synced, at 0/1000) and WAL end (0/5000); the relay had confirmed 0/9000 on the old one.
    inner.slot = { confirmedFlush: 0x1000n, walStatus: 'reserved', tablesByOid: new Map(), walEnd: 0x5000n, walSenderTimeoutMs: 60_000, history: { timeline: 1, switchpoints: new Map() } };
    inner.stream = { start: () => void (started = true), close: async () => void (closed = true) };
    expect(() => session.start({ lsn: 0x9000n, timeline: undefined }, undefined)).toThrow(expect.objectContaining({ code: 'CHECKPOINT_AHEAD_OF_WAL', details: { resumeLsn: '0/9000', currentWalLsn: '0/5000' } }));
    expect({ started, opened, closed }).toEqual({ started: false, opened: 0, closed: true });
    // The fix's republish starts a minute before the last delivered commit: the relay's own, or the checkpoint's
    // when that is the newer position; a placeholder where neither is known.
    const commit = Date.parse('2026-12-05T08:00:00.000Z');
    const fixOf = (run: () => unknown) => {
      try {
        run();
      } catch (err) {
        return (err as RelayError).hint;
      }
      throw new Error('not refused');
    };
    expect(fixOf(() => session.start({ lsn: 0x9000n, timeline: undefined, commitTimeMs: commit }, { lsn: 0x8000n, timeline: undefined, commitTimeMs: commit - 5_000 }))).toContain('outbox-relay republish --since 2026-12-05T07:59:00.000Z --publication outbox_relay');
    expect(fixOf(() => session.start({ lsn: 0x8000n, timeline: undefined, commitTimeMs: commit - 5_000 }, { lsn: 0x9000n, timeline: undefined, commitTimeMs: commit }))).toContain('outbox-relay republish --since 2026-12-05T07:59:00.000Z --publication outbox_relay');
    expect(fixOf(() => session.start({ lsn: 0x9000n, timeline: undefined }, undefined))).toContain('outbox-relay republish --since <the last delivered commit time minus a margin> (outbox-relay status shows the checkpoint\'s) --publication outbox_relay');
    // At or below the WAL end it starts as before.
    expect(session.start({ lsn: 0x5000n, timeline: undefined }, undefined)).toBe(0x5000n);
  });

  it('refuses to resume below the WAL end at a position of the old primary past where this server left its timeline: CHECKPOINT_AHEAD_OF_WAL, nothing started', () => {
    const config = loadConfig({ env: {}, flags: { 'postgres.url': 'postgres://u@h/db', 'kafka.brokers': 'k:9092' }, required: [] });
    let opened = 0;
    const delivery = { openSession: () => void opened++, endSession: () => undefined } as unknown as Delivery;
    const session = new Session(config, delivery, silent, new RepeatedLines(silent), {}, () => undefined);
    let started = 0;
    let closed = false;
    const inner = session as unknown as { slot: unknown; stream: unknown };
    // A promoted standby on timeline 2 since 0/3000, its slot synced at 0/2000, its WAL already written to 0/9000
    // (with its own transactions at the LSNs the old primary had confirmed up to 0/5000).
    inner.slot = { confirmedFlush: 0x2000n, walStatus: 'reserved', tablesByOid: new Map(), walEnd: 0x9000n, walSenderTimeoutMs: 60_000, history: { timeline: 2, switchpoints: new Map([[1, 0x3000n]]) } };
    inner.stream = { start: () => void started++, close: async () => void (closed = true) };
    const refused = { code: 'CHECKPOINT_AHEAD_OF_WAL', details: { resumeLsn: '0/5000', timeline: 1, currentTimeline: 2, currentWalLsn: '0/9000' } };
    // This process's own position (the session before confirmed it on timeline 1), and a checkpoint's.
    expect(() => session.start({ lsn: 0x5000n, timeline: 1 }, undefined)).toThrow(expect.objectContaining(refused));
    expect(() => session.start({ lsn: 0n, timeline: undefined }, { lsn: 0x5000n, timeline: 1 })).toThrow(expect.objectContaining(refused));
    const fix = expect.stringContaining('outbox-relay republish --since 2026-12-05T07:59:00.000Z --publication outbox_relay') as unknown;
    expect(() => session.start({ lsn: 0n, timeline: undefined }, { lsn: 0x5000n, timeline: 1, commitTimeMs: Date.parse('2026-12-05T08:00:00.000Z') })).toThrow(expect.objectContaining({ ...refused, hint: fix }));
    expect({ started, opened, closed }).toEqual({ started: 0, opened: 0, closed: true });
    // Up to where the server left timeline 1 it is this server's WAL too; the timeline of a --start-lsn is not known.
    expect(session.start({ lsn: 0x3000n, timeline: 1 }, undefined)).toBe(0x3000n);
    expect(session.start({ lsn: 0n, timeline: undefined }, { lsn: 0x5000n, timeline: undefined })).toBe(0x5000n);
    expect(session.timeline).toBe(2);
  });

  it('refuses a slot made on this server after it left the timeline of the delivered position (setup again after a failover): PG_SLOT_RECREATED, nothing started; a synced slot, the same timeline or a --start-lsn start at the slot', () => {
    const config = loadConfig({ env: {}, flags: { 'postgres.url': 'postgres://u@h/db', 'kafka.brokers': 'k:9092', slot: 'outbox_relay' }, required: [] });
    const delivery = { openSession: () => undefined, endSession: () => undefined } as unknown as Delivery;
    const session = new Session(config, delivery, silent, new RepeatedLines(silent), {}, () => undefined);
    let started = 0;
    let closed = 0;
    const inner = session as unknown as { slot: { synced: boolean }; stream: unknown };
    // A promoted standby on timeline 2 since 0/3000; setup made the slot there at 0/8000. The relay had delivered up
    // to 0/2000 on timeline 1 (the standby had received it): 0/2000 to 0/8000 was never streamed.
    const promoted = (synced: boolean) => ({ confirmedFlush: 0x8000n, synced, walStatus: 'reserved', tablesByOid: new Map(), walEnd: 0x9000n, walSenderTimeoutMs: 60_000, history: { timeline: 2, switchpoints: new Map([[1, 0x3000n]]) } });
    inner.slot = promoted(false);
    inner.stream = { start: () => void started++, close: async () => void closed++ };
    const commitTimeMs = Date.parse('2026-12-05T08:00:00.000Z');
    const refused = {
      code: 'PG_SLOT_RECREATED',
      retriable: false,
      message: expect.stringContaining('replication slot "outbox_relay" is at 0/8000 on timeline 2, and was made on this server after it left timeline 1, where the relay had delivered up to 0/2000, commit time 2026-12-05T08:00:00.000Z') as unknown,
      hint: expect.stringContaining('outbox-relay republish --since 2026-12-05T07:59:00.000Z --publication outbox_relay') as unknown,
      details: { slotLsn: '0/8000', currentTimeline: 2, resumeLsn: '0/2000', timeline: 1 },
    };
    // A checkpoint's position, and this process's own (a relay that kept retrying through the failover).
    expect(() => session.start({ lsn: 0n, timeline: undefined }, { lsn: 0x2000n, timeline: 1, commitTimeMs })).toThrow(expect.objectContaining(refused));
    expect(() => session.start({ lsn: 0x2000n, timeline: 1, commitTimeMs }, undefined)).toThrow(expect.objectContaining(refused));
    expect({ started, closed }).toEqual({ started: 0, closed: 2 });
    // A PostgreSQL 17 failover slot synced from the old primary; a checkpoint of this timeline (the slot ahead of it:
    // confirmed after the last checkpoint write); a position whose timeline is not known (a --start-lsn).
    inner.slot = promoted(true);
    expect(session.start({ lsn: 0n, timeline: undefined }, { lsn: 0x2000n, timeline: 1 })).toBe(0x8000n);
    inner.slot = promoted(false);
    expect(session.start({ lsn: 0n, timeline: undefined }, { lsn: 0x7000n, timeline: 2 })).toBe(0x8000n);
    expect(session.start({ lsn: 0n, timeline: undefined }, { lsn: 0x2000n, timeline: undefined })).toBe(0x8000n);
    expect(started).toBe(3);
  });

  it('after the stream failed, the final status is not counted as reported: the halt line and gauges keep what PostgreSQL was sent', () => {
    const config = loadConfig({ env: {}, flags: { 'postgres.url': 'postgres://u@h/db', 'kafka.brokers': 'k:9092' }, required: [] });
    const delivery = { openSession: () => undefined, endSession: () => undefined } as unknown as Delivery;
    const reports: Lsn[] = [];
    const session = new Session(config, delivery, silent, new RepeatedLines(silent), {}, () => undefined, (confirmed) => (reports.push(confirmed), confirmed));
    const stream = { finished: false, start: () => undefined, sendStatus: async () => undefined, pause: () => undefined, close: async () => undefined };
    const inner = session as unknown as { slot: unknown; stream: unknown; tracker: { keepalive(lsn: Lsn): void }; finish(error: unknown): void };
    inner.slot = { confirmedFlush: 0x1000n, walStatus: 'reserved', tablesByOid: new Map(), walEnd: 0x9000n, walSenderTimeoutMs: 60_000, history: { timeline: 1, switchpoints: new Map() } };
    inner.stream = stream;
    session.start({ lsn: 0n, timeline: undefined }, undefined);
    // Idle: a keepalive confirms its WAL end; then the connection fails (PG_SLOT_LOST mid-stream, say).
    inner.tracker.keepalive(0x2000n);
    stream.finished = true;
    inner.finish(new Error('stream failed'));
    expect(session.reported).toBeUndefined();
    expect(reports).toEqual([]);
  });
});

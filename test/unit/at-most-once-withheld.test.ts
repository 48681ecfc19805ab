import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { AckTracker, SourceTransaction } from '../../src/checkpoint/ack-tracker.js';
import { loadConfig } from '../../src/config/relay-config.js';
import { RelayError } from '../../src/errors.js';
import type { Lsn } from '../../src/lsn.js';
import { RepeatedLines } from '../../src/outage-log.js';
import { Relay } from '../../src/pipeline/relay.js';
import { Session } from '../../src/pipeline/session.js';
import type { OutboxEvent } from '../../src/route/event.js';
import type { DeliveryCallbacks, Receipt } from '../../src/sink/delivery.js';
import { DeliveryEngine } from '../../src/sink/delivery-engine.js';
import { FakeSink } from '../support/fakes/fake-sink.js';
import { FAST_RETRY, settle } from '../support/fakes/engine-harness.js';
import { relayConfig } from '../support/fakes/relay-setup.js';

const silent = pino({ level: 'silent' });

/**
 * A real Relay (its handOff/withheld accounting), a real DeliveryEngine (at-most-once) over a FakeSink, and real
 * Sessions whose replication stream and flush check are fakes of one PostgreSQL: statuses reach the slot only when
 * `pgProcess()` is called; a flush check waits until then, or answers false once the session ended.
 */
function world(options: { batchMaxEvents?: number } = {}) {
  const config = loadConfig({ env: {}, flags: { 'postgres.url': 'postgres://u@h/db', 'kafka.brokers': 'k:9092', statusInterval: '60s' }, required: [] });
  const sink = new FakeSink();
  const deadLetters: string[] = [];
  const delivered: number[] = [];
  const dropped: number[] = [];
  let engine!: DeliveryEngine;
  const relay = new Relay(relayConfig({ initialDelayMs: 1, maxDelayMs: 1, maxDurationMs: 60_000 }) as never, {
    logger: silent,
    sink: { connect: async () => undefined, send: async () => undefined, close: async () => undefined },
    createDelivery: (callbacks: DeliveryCallbacks) =>
      (engine = new DeliveryEngine({
        producing: { guarantee: 'at-most-once', sink },
        limits: { maxInFlightEvents: 1000, maxInFlightBytes: 1 << 20, batchMaxEvents: options.batchMaxEvents ?? 100, batchMaxBytes: 1 << 20, coalesceMs: 0 },
        retry: FAST_RETRY,
        stallTimeoutMs: 30_000,
        callbacks,
        brokers: ['b:9092'],
      })),
    // The dead-letter policy: the event goes to the dead-letter topic, and is skipped.
    onPoison: async (event: OutboxEvent) => {
      deadLetters.push(event.eventId);
      return 'skip';
    },
    observer: {
      delivered: (receipts: readonly Receipt[]) => void delivered.push(receipts.reduce((n, r) => n + (r.skipped ? 0 : r.count), 0)),
      dropped: (n: number) => void dropped.push(n),
    },
    reportPosition: (lsn: Lsn) => lsn,
  } as never);
  const r = relay as unknown as { session: Session | undefined; lastConfirmed: Lsn; onConfirmed(lsn: Lsn, t: number | undefined): void; settleWithheld(start: Lsn): void };
  const pg = { slot: 0x1000n, sent: 0n };
  let waiters: { lsn: Lsn; resolve: (held: boolean) => void }[] = [];
  let cached = 0n;
  let current: { session: Session; tracker: AckTracker; end: () => void } | undefined;
  const pgProcess = () => {
    pg.slot = pg.sent > pg.slot ? pg.sent : pg.slot;
    cached = pg.slot;
    const ready = waiters.filter((w) => w.lsn <= cached);
    waiters = waiters.filter((w) => w.lsn > cached);
    for (const w of ready) w.resolve(true);
  };
  /** A session as the relay's loop starts one: at the newest of the slot and the relay's own position. */
  const startSession = () => {
    const session = new Session(config, engine, silent, new RepeatedLines(silent), {}, (lsn, t) => r.onConfirmed(lsn, t));
    const inner = session as unknown as { slot: unknown; stream: unknown; flushCheck: unknown; tracker: AckTracker };
    let finished = false;
    let onEnd: ((error: Error) => void) | undefined;
    cached = pg.slot;
    inner.slot = { confirmedFlush: pg.slot, walStatus: 'reserved', tablesByOid: new Map(), walEnd: 0x9000n, walSenderTimeoutMs: 60_000, history: { timeline: 1, switchpoints: new Map() }, unsentColumns: [] };
    inner.stream = {
      start: (_o: unknown, h: { onEnd(error: Error): void }) => void (onEnd = h.onEnd),
      sendStatus: async (lsn: Lsn) => void (finished || (pg.sent = lsn > pg.sent ? lsn : pg.sent)),
      pause: () => undefined,
      resume: () => undefined,
      close: async () => undefined,
      get finished() {
        return finished;
      },
      get isPaused() {
        return false;
      },
    };
    inner.flushCheck = {
      reached: (lsn: Lsn) => (lsn <= cached ? Promise.resolve(true) : new Promise<boolean>((resolve) => waiters.push({ lsn, resolve }))),
      close: async () => {
        for (const w of waiters.splice(0)) w.resolve(false);
      },
    };
    const startLsn = session.start({ lsn: r.lastConfirmed, timeline: 1 }, undefined);
    r.settleWithheld(startLsn);
    r.session = session;
    r.lastConfirmed = r.lastConfirmed > startLsn ? r.lastConfirmed : startLsn;
    // The connection is lost: the stream ends (nothing more reaches PostgreSQL).
    const end = () => {
      finished = true;
      onEnd!(new Error('connection lost (fake)'));
    };
    current = { session, tracker: inner.tracker, end };
    return startLsn;
  };
  let lsn = 0x1100n;
  /** A source transaction streamed to the engine: events `ids` (an id ending in '!' is unmappable), then its commit. */
  const transaction = (ids: string[], commitLsn?: Lsn): { txn: SourceTransaction; end: Lsn } => {
    const { tracker } = current!;
    const txn = tracker.begin(commitLsn ?? lsn, 0, 1);
    for (const id of ids) {
      tracker.add(txn);
      const error = id.endsWith('!') ? new RelayError('EVENT_INVALID' as never, 'unmappable (fake)') : undefined;
      engine.push({ topic: 't', key: Buffer.from(id), value: Buffer.from('{}'), headers: {}, eventId: id, size: 10, txn, ...(error ? { error } : {}) } as OutboxEvent);
    }
    const end = (commitLsn ?? lsn) + 0x10n;
    if (commitLsn === undefined) lsn += 0x100n;
    tracker.commit(txn, end);
    engine.committed(txn);
    return { txn, end };
  };
  return { sink, deadLetters, delivered, dropped, pg, pgProcess, startSession, transaction, relay: r, current: () => current!, engine: () => engine };
}

describe('Relay + Session + DeliveryEngine, at-most-once: hand-offs withheld when the replication connection is lost', () => {
  it('a transaction with a row dead-lettered before its hand-off is not streamed again after that hand-off is withheld: its dead letter is written once, its other events are lost and counted', async () => {
    const w = world();
    expect(w.startSession()).toBe(0x1000n);
    // T: e1 (good) and e2 (unmappable, dead-lettered before any of T is handed off: decideAhead).
    const t = w.transaction(['e1', 'e2!']);
    await settle(20);
    expect(w.deadLetters).toEqual(['e2!']);
    // e1's hand-off waits for PostgreSQL; the connection is lost before PostgreSQL took the status.
    expect(w.pg.sent).toBe(t.end);
    w.current().end();
    await settle(20);
    await w.engine().whenIdle();
    expect(w.sink.written).toEqual([]);
    // In-process reconnect: the relay resumes past T (streamed again, e2 would meet the policy again: its dead
    // letter twice in Kafka, which at-most-once must not do). e1 is lost, and counted at the start.
    expect(w.startSession()).toBe(t.end);
    expect({ deadLetters: w.deadLetters, written: w.sink.written, dropped: w.dropped }).toEqual({ deadLetters: ['e2!'], written: [], dropped: [1] });
  });

  it('the rest of a transaction counted ahead goes once PostgreSQL holds that transaction\'s end, although a later event-less commit moved the confirmed position on: sent, counted once, not withheld', async () => {
    const w = world({ batchMaxEvents: 2 });
    w.startSession();
    const t = w.transaction(['t0', 't1', 't2']);
    await settle(20);
    // B1 = [t0, t1], counted with t2 ahead: its check waits for T.end.
    expect(w.pg.sent).toBe(t.end);
    // An event-less transaction commits meanwhile (filtered rows, or pgoutput's empty ones before PostgreSQL 15).
    const x = w.transaction([]);
    w.pgProcess(); // PostgreSQL takes T.end: B1 goes, and B2 = [t2], whose own position is T.end too.
    await settle(20);
    expect(w.sink.written).toEqual(['t0', 't1', 't2']);
    // Before, B2 was checked for X's end, which PostgreSQL had not taken when the connection was lost: withheld,
    // never streamed again (PostgreSQL held T.end), counted delivered and dropped.
    expect(w.pg.sent).toBe(x.end);
    w.current().end();
    await settle(20);
    await w.engine().whenIdle();
    w.startSession();
    expect({ written: w.sink.written, delivered: w.delivered.reduce((a, b) => a + b, 0), dropped: w.dropped }).toEqual({ written: ['t0', 't1', 't2'], delivered: 3, dropped: [] });
  });
});

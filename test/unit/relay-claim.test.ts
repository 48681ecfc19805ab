import pino from 'pino';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { RelayError } from '../../src/errors.js';
import type { TimelinePosition } from '../../src/source/timeline.js';
import type { Lsn } from '../../src/lsn.js';
import type { RelayObserver } from '../../src/pipeline/observer.js';
import type { DeliveryCallbacks } from '../../src/sink/delivery.js';
import { FakeSink, kafkaDown } from '../support/fakes/fake-sink.js';
import { capturingLogger, idleDelivery, relayConfig } from '../support/fakes/relay-setup.js';

/** What happened, in order: each session's open (and how it ended), the sink's claims, positions, starts. */
const steps: string[] = [];
/** How each open of a replication session ends, in turn; past the end: the slot is free. */
let opens: ('slot-active' | 'free' | 'pg-down')[] = [];
/** How long each standby wait lasts (on a faked Date). */
let standbyMs = 0;
/** How each session ends, in turn: at once after its start with a fatal error (the test's end), or when the relay closes it; past the end: at once. */
let ends: ('fatal' | 'closed')[] = [];
/** Told of each session's start. */
let started: () => void = () => undefined;

// A fake replication session: its checks find the slot held (PG_SLOT_ACTIVE) or free; once started it ends with
// a fatal error, which ends the test's relay, or when the relay closes it (`ends`).
vi.mock('../../src/pipeline/session.js', async () => ({
  Session: class extends (await import('../support/fakes/relay-setup.js')).FakeSessionFields {
    private onClose = () => undefined as void;
    ended: Promise<RelayError | undefined> =
      (ends.shift() ?? 'fatal') === 'fatal' ? Promise.resolve(new RelayError('PG_SLOT_MISSING', 'end of the test (fake)')) : new Promise((resolve) => (this.onClose = () => resolve(undefined)));
    async open(): Promise<void> {
      const outcome = opens.shift() ?? 'free';
      steps.push(`open: ${outcome}`);
      if (outcome === 'slot-active') throw new RelayError('PG_SLOT_ACTIVE', 'slot in use (fake)', { retriable: true, details: { activePid: 1 } });
      if (outcome === 'pg-down') throw new RelayError('PG_CONNECT_FAILED', 'connection refused (fake)', { retriable: true });
    }
    start(_lastConfirmed: TimelinePosition, requested: TimelinePosition | undefined): Lsn {
      steps.push('start');
      started();
      return requested?.lsn ?? 0n;
    }
    async close(): Promise<void> {
      this.onClose();
    }
  },
}));

// The standby's wait: the holder lets go at once.
vi.mock('../../src/source/standby-wait.js', () => ({
  StandbyWait: class {
    async untilReleased(): Promise<void> {
      steps.push('standby wait');
      if (standbyMs > 0) vi.setSystemTime(Date.now() + standbyMs);
    }
  },
}));

const { Relay } = await import('../../src/pipeline/relay.js');

/** Runs a relay to its end (the fake session's fatal error) with `sink`; returns the steps. */
async function run(sink: FakeSink, logger: pino.Logger = pino({ level: 'silent' }), createDelivery: (callbacks: DeliveryCallbacks) => unknown = idleDelivery, observer: RelayObserver = {}, startLsn?: Lsn): Promise<string[]> {
  const config = { ...(relayConfig({ initialDelayMs: 1, maxDelayMs: 2, maxDurationMs: 60_000 }) as object), startLsn };
  const relay = new Relay(config as never, {
    logger,
    sink,
    createDelivery,
    startPosition: async () => {
      steps.push('position');
      return { lsn: 0x5000n, timeline: undefined };
    },
    resumePosition: undefined,
    reportPosition: (lsn: Lsn) => lsn,
    observer,
  } as never);
  await relay.run();
  return steps;
}

beforeEach(() => {
  steps.length = 0;
  standbyMs = 0;
  ends = [];
  started = () => undefined;
});

describe('Relay, a sink that claims the slot (exactly-once)', () => {
  it('claims only once the slot was found free, never while waiting as a standby, and reads the position after the claim', async () => {
    opens = ['slot-active', 'slot-active'];
    const sink = new FakeSink();
    const claim = sink.claim.bind(sink);
    sink.claim = async () => {
      steps.push('claim');
      await claim();
    };
    expect(await run(sink)).toEqual(['open: slot-active', 'standby wait', 'open: slot-active', 'standby wait', 'open: free', 'claim', 'position', 'start']);
    expect(sink.connects).toBe(1);
    expect(sink.claims).toBe(1);
  });

  it('a reconnect that finds the slot held ends the outage: hours as a standby count neither against retry.maxDuration nor as its downtime', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      // PostgreSQL restarts, another instance takes the slot meanwhile, and holds it for longer than retry.maxDuration (60 s here).
      opens = ['pg-down', 'slot-active', 'pg-down'];
      standbyMs = 3_600_000;
      const { logger, lines } = capturingLogger('info');
      expect(await run(new FakeSink(), logger)).toEqual(['open: pg-down', 'open: slot-active', 'standby wait', 'open: pg-down', 'open: free', 'position', 'start']);
      expect(lines.filter((l) => l.msg === 'replication connection lost: reconnecting')).toHaveLength(2);
      const back = lines.filter((l) => l.msg === 'replication connection back: streaming resumed') as unknown as { downMs: number; attempts: number }[];
      expect(back.map((l) => l.attempts)).toEqual([1]);
      expect(back[0]!.downMs).toBeLessThan(standbyMs);
    } finally {
      vi.useRealTimers();
    }
  });

  it('a claim Kafka refuses is retried with the session, logged as Kafka\'s failure, and the position is read only after a claim succeeded', async () => {
    opens = [];
    const sink = new FakeSink();
    let refusals = 1;
    sink.claim = async () => {
      steps.push('claim');
      if (refusals-- > 0) throw kafkaDown();
    };
    const { logger, lines } = capturingLogger('warn');
    expect(await run(sink, logger)).toEqual(['open: free', 'claim', 'open: free', 'claim', 'position', 'start']);
    // Not "replication connection lost": PostgreSQL was fine.
    expect(lines.filter((l) => l.level === 40).map((l) => l.msg)).toEqual(['Kafka unavailable while starting a replication session: retrying']);
  });

  it('a claim Kafka refuses while delivery\'s Kafka outage is open continues that outage: one start line, one end line once Kafka answers, counted once', async () => {
    // Session 1 streams until delivery aborts its Kafka transaction in an outage and restarts the source; session
    // 2's claim is refused (Kafka still down); session 3 claims, and delivery commits again (the outage's end).
    ends = ['closed', 'closed'];
    let callbacks!: DeliveryCallbacks;
    let starts = 0;
    started = () => {
      if (++starts === 1) {
        setImmediate(() => {
          callbacks.retrying(kafkaDown(), 1, 1);
          callbacks.restartSource(kafkaDown(), true);
        });
      } else {
        callbacks.recovered(50, 2);
      }
    };
    const sink = new FakeSink();
    const claim = sink.claim.bind(sink);
    sink.claim = async () => {
      if (sink.claims === 1) {
        sink.claims++;
        throw kafkaDown();
      }
      await claim();
    };
    const { logger, lines } = capturingLogger('debug');
    const errors: string[] = [];
    const createDelivery = (given: DeliveryCallbacks) => {
      callbacks = given;
      return idleDelivery();
    };
    expect(await run(sink, logger, createDelivery, { error: (code) => errors.push(code) })).toEqual(['open: free', 'position', 'start', 'open: free', 'open: free', 'start']);
    expect(sink.claims).toBe(3);
    expect(lines.filter((l) => l.level === 40 || l.level === 30).map((l) => `${l.level} ${l.msg}`).filter((l) => /Kafka|replication connection/.test(l))).toEqual([
      '30 connected to Kafka',
      '40 Kafka unavailable: holding the confirmed position and retrying',
      '30 Kafka available again: delivery resumed',
    ]);
    // The refused claim: an attempt of the outage, at debug.
    expect(lines.filter((l) => l.level === 20 && l.msg === 'Kafka still unavailable')).toHaveLength(1);
    // errors_total: the restart (exactly-once source restarts count) and the test's end, not the claim again.
    expect(errors).toEqual(['KAFKA_UNAVAILABLE', 'PG_SLOT_MISSING']);
  });
});

describe('Relay, a sink that does not claim the slot (at-least-once, at-most-once)', () => {
  it('decides a --start-lsn (which writes a forward skip to the checkpoint) only once the slot was found free, never while waiting as a standby', async () => {
    opens = ['slot-active', 'pg-down'];
    const sink = new FakeSink();
    sink.claim = undefined as never;
    expect(await run(sink, undefined, undefined, undefined, 0x5000n)).toEqual(['open: slot-active', 'standby wait', 'open: pg-down', 'open: free', 'position', 'start']);
  });

  it('without a --start-lsn reads the position while the checks run (the position of a failed open is not used)', async () => {
    opens = ['slot-active'];
    const sink = new FakeSink();
    sink.claim = undefined as never;
    expect(await run(sink)).toEqual(['open: slot-active', 'position', 'standby wait', 'open: free', 'position', 'start']);
  });
});

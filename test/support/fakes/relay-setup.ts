import pino from 'pino';
import type { RetryPolicy } from '../../../src/config/types.js';
import { RelayError } from '../../../src/errors.js';
import type { TimelinePosition } from '../../../src/source/timeline.js';
import type { Lsn } from '../../../src/lsn.js';
import type { DeliveryCallbacks } from '../../../src/sink/delivery.js';

/** The settings a Relay with fake sessions and sinks reads; `retry` as the test needs it. */
export function relayConfig(retry: Pick<RetryPolicy, 'initialDelayMs' | 'maxDelayMs' | 'maxDurationMs'>): unknown {
  return {
    slot: 's',
    publication: 'p',
    tables: [],
    values: {},
    postgres: {},
    kafka: { brokers: ['b'] },
    retry: { ...retry, recordMaxAttempts: 1, recordMaxDurationMs: 0 },
    shutdownGraceMs: 100,
    statusIntervalMs: 1000,
  };
}

/** A pino line as JSON: its level, its message and the fields logged with it. */
export type LogLine = { level: number; msg: string } & Record<string, unknown>;

/** A logger whose lines the test reads back. */
export function capturingLogger(level: string): { logger: pino.Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger = pino({ level }, { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) });
  return { logger, lines };
}

/** A delivery with nothing in flight that takes every event (its drain() never sees it refuse one): for Relay tests about the source side. */
export function idleDelivery(): unknown {
  return { inFlightEvents: 0, inFlightBytes: 0, windowFullMs: 0, windowFullSinceMs: undefined, accepting: true, openSession() {}, push: () => true, committed() {}, endSession() {}, sourceProgressed() {}, whenIdle: async () => undefined, drain: () => new Promise<void>(() => undefined), stop() {} };
}

/**
 * What the relay reads of every replication session, as a fake one that streamed and got past its start has it:
 * the fake sessions of the tests' mocks of pipeline/session.js extend it.
 */
export class FakeSessionFields {
  streaming: Promise<void> = Promise.resolve();
  progressed: Promise<void> = Promise.resolve();
  receiveTimeoutMs = 0;
  reportable = true;
  readonly reached: Lsn = 0n;
  readonly countedThrough: Lsn = 0n;
  confirmed: Lsn = 0n;
  reported: Lsn | undefined = undefined;
  /** Where the slot was confirmed when the session opened it. */
  readonly slotConfirmed: Lsn = 0x1000n;
  timeline = 1;
}

/**
 * A replication session for a mock of pipeline/session.js: its connection is refused (a retriable error) while
 * `refused()` says so; opened, it streams from the requested start (`started` is told what with) and ends with a
 * fatal error, the end of the test.
 */
export function haltingSession(refused: () => boolean, started: (lastConfirmed: Lsn, requested: Lsn | undefined) => void = () => undefined) {
  return class extends FakeSessionFields {
    ended = Promise.resolve(new RelayError('PG_SLOT_MISSING', 'end of the test (fake)'));
    async open(): Promise<void> {
      if (refused()) throw new RelayError('PG_STREAM_FAILED', 'connection refused (fake)', { retriable: true });
    }
    start(lastConfirmed: TimelinePosition, requested: TimelinePosition | undefined): Lsn {
      started(lastConfirmed.lsn, requested?.lsn);
      this.confirmed = requested?.lsn ?? 0n;
      return this.confirmed;
    }
    async close(): Promise<void> {}
  };
}

const pending = () => new Promise<never>(() => undefined);

/**
 * A replication session for a mock of pipeline/session.js: the connection and the pre-flight checks succeed
 * unless `opened` throws, START_REPLICATION is sent on walsender `backendPid`, and 1 ms later the server fails
 * the command with a retriable error, every time. Before that it sent its first message when `streams()`, and got
 * past the start when `progresses()`; its keepalives reached `reaches()` and its metrics counted transactions up to
 * `counts()` (the next start is told the furthest of each so far, in `started`).
 */
export function failingSession(
  opened: () => void,
  server: {
    streams: () => boolean;
    progresses: () => boolean;
    message: string;
    /** The failure's fix (a real one's: e.g. a standby's, naming the primary); none by default. */
    hint?: string;
    backendPid?: number;
    reaches?: () => Lsn;
    counts?: () => Lsn;
    started?: (reachedBefore: Lsn, countedBefore: Lsn) => void;
  },
) {
  return class extends FakeSessionFields {
    ended = new Promise((resolve) => setTimeout(() => resolve(new RelayError('PG_STREAM_FAILED', server.message, { retriable: true, hint: server.hint })), 1));
    override streaming = server.streams() ? Promise.resolve() : pending();
    override progressed = server.progresses() ? Promise.resolve() : pending();
    override readonly reached = server.reaches?.() ?? 0n;
    override readonly countedThrough = server.counts?.() ?? 0n;
    backendPid = server.backendPid ?? null;
    async open(): Promise<void> {
      opened();
    }
    start(lastConfirmed: TimelinePosition, _requested: TimelinePosition | undefined, reachedBefore: Lsn, countedBefore: Lsn): Lsn {
      server.started?.(reachedBefore, countedBefore);
      return lastConfirmed.lsn;
    }
    endIntake(): Lsn | undefined {
      return undefined;
    }
    async endIntakeAtCommit(): Promise<Lsn | undefined> {
      return undefined;
    }
    async close(): Promise<void> {}
  };
}

/**
 * Runs a Relay (imported after the test's mocks) with a sink and a delivery that do nothing, for at most `stop` ms
 * or until `stop` (a condition, checked every millisecond) holds: its outcome ('running' if it had none by then: it is
 * stopped), and the lines it logged at debug and above.
 */
export async function runRelayFor(Relay: new (config: never, deps: never) => { run(): Promise<unknown>; stop(options: unknown): Promise<unknown> }, retry: Pick<RetryPolicy, 'initialDelayMs' | 'maxDelayMs' | 'maxDurationMs'>, stop: number | (() => boolean)) {
  const { logger, lines } = capturingLogger('debug');
  const relay = new Relay(relayConfig(retry) as never, {
    logger,
    sink: { connect: async () => undefined, send: async () => undefined, close: async () => undefined },
    createDelivery: idleDelivery,
    reportPosition: (lsn: Lsn) => lsn,
  } as never);
  const outcome = relay.run();
  let ended = false;
  void outcome.then(() => (ended = true));
  const until = async (holds: () => boolean): Promise<'running'> => {
    while (!ended && !holds()) await new Promise((resolve) => setTimeout(resolve, 1));
    return 'running';
  };
  const settled = await Promise.race([outcome, typeof stop === 'number' ? new Promise<'running'>((resolve) => setTimeout(() => resolve('running'), stop)) : until(stop)]);
  if (settled === 'running') {
    await relay.stop({ openTransaction: 'drop' });
    await outcome;
  }
  return { settled, lines };
}

/**
 * A Relay (imported after the test's mocks) with a sink that does nothing and an idle delivery, and the callbacks
 * that delivery was given: `callbacks.stopped(error)` before run() halts it on `error`.
 */
export function relayWithDeliveryCallbacks<R>(Relay: new (config: never, deps: never) => R, logger: pino.Logger): { relay: R; callbacks: DeliveryCallbacks } {
  let callbacks!: DeliveryCallbacks;
  const relay = new Relay(relayConfig({ initialDelayMs: 5_000, maxDelayMs: 10_000, maxDurationMs: 600_000 }) as never, {
    logger,
    sink: { connect: async () => undefined, send: async () => undefined, close: async () => undefined },
    createDelivery: (given: DeliveryCallbacks) => {
      callbacks = given;
      return idleDelivery();
    },
    reportPosition: (lsn: Lsn) => lsn,
  } as never);
  return { relay, callbacks };
}

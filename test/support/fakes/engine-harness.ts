import type { Logger } from 'pino';
import { AckTracker, type SourceTransaction } from '../../../src/checkpoint/ack-tracker.js';
import type { Guarantee } from '../../../src/config/guarantee-config.js';
import type { RetryPolicy } from '../../../src/config/types.js';
import type { RelayError } from '../../../src/errors.js';
import type { Lsn } from '../../../src/lsn.js';
import { Relay, type RelayDeps } from '../../../src/pipeline/relay.js';
import type { OutboxEvent } from '../../../src/route/event.js';
import type { Delivery, DeliveryCallbacks, DeliveryLimits, Receipt } from '../../../src/sink/delivery.js';
import { DeliveryEngine, type Producing } from '../../../src/sink/delivery-engine.js';
import { FakeSink, deferred, type Deferred } from './fake-sink.js';
import type { RelayConfig } from '../../../src/config/types.js';
import type { RelayState } from '../../../src/pipeline/observer.js';
import { capturingLogger, idleDelivery, relayConfig } from './relay-setup.js';

/** Retries fast enough for a unit test, bounded like the real ones. */
export const FAST_RETRY: RetryPolicy = { initialDelayMs: 1, maxDelayMs: 4, maxDurationMs: 60_000, recordMaxAttempts: 2, recordMaxDurationMs: 60_000 };

export interface HarnessOptions {
  guarantee: Guarantee;
  sink?: FakeSink;
  limits?: Partial<DeliveryLimits>;
  retry?: Partial<RetryPolicy>;
  stallTimeoutMs?: number;
  poison?: DeliveryCallbacks['poison'];
  /** A relay's callbacks (relayCallbacks()), told of the engine's outage and source restarts too: `retrying`, `recovered`, `restartSource`. */
  relay?: DeliveryCallbacks;
}

/**
 * The delivery engine wired as the relay wires it (the tracker's acknowledgements, a session), over a FakeSink,
 * with everything the engine tells the relay recorded.
 */
export class EngineHarness {
  readonly sink: FakeSink;
  readonly engine: DeliveryEngine;
  tracker: AckTracker;
  /** Every position the tracker confirmed, in order. */
  readonly confirmed: Lsn[] = [];
  readonly restarts: RelayError[] = [];
  readonly stopped: RelayError[] = [];
  readonly retrying: RelayError[] = [];
  readonly dropped: number[] = [];
  readonly droppedErrors: RelayError[] = [];
  /** at-most-once: the size of each batch not sent because the session ended before its position was held. */
  readonly withheld: number[] = [];
  /** The event of each retry of a record Kafka refused and what follows its last (recordRetrying): `id then halt`. */
  readonly recordRetries: string[] = [];
  /** The produce latency of every delivered callback (undefined: none was timed). */
  readonly latencies: (number | undefined)[] = [];
  recovered = 0;
  /** Events acknowledged to the tracker, every receipt's count summed: each event once, however often it was sent. */
  acknowledged = 0;
  windowOpens = 0;
  reports = 0;
  /** Whether the session's connection could still report a position (false once it closed). */
  reportable = true;
  /** at-most-once: the newest position a report got PostgreSQL to hold. */
  held: Lsn = 0n;
  /** When set, at-most-once's position report waits for it. */
  reportGate: Deferred | undefined;
  private xid = 0;
  private lsn = 100n;

  constructor(options: HarnessOptions) {
    this.sink = options.sink ?? new FakeSink();
    const producing: Producing = options.guarantee === 'exactly-once' ? { guarantee: 'exactly-once', sink: this.sink, slot: 'test_slot' } : { guarantee: options.guarantee, sink: this.sink };
    const callbacks: DeliveryCallbacks = {
      delivered: (receipts, latencyMs) => {
        this.latencies.push(latencyMs);
        this.acknowledge(receipts);
      },
      poison: options.poison ?? (async () => 'halt'),
      stopped: (error) => this.stopped.push(error),
      windowOpen: () => this.windowOpens++,
      retrying: (error, attempt, delayMs) => {
        this.retrying.push(error);
        options.relay?.retrying(error, attempt, delayMs);
      },
      recordRetrying: (event, _error, _attempt, _delayMs, spent) => this.recordRetries.push(`${event.eventId} then ${spent}`),
      recovered: (downMs, attempts) => {
        this.recovered++;
        options.relay?.recovered(downMs, attempts);
      },
      dropped: (count, error) => {
        this.dropped.push(count);
        this.droppedErrors.push(error);
      },
      restartSource: (error, attempt) => {
        this.restarts.push(error);
        options.relay?.restartSource(error, attempt);
      },
      handOff: async (receipts, events) => {
        this.reports++;
        this.acknowledge(receipts);
        await this.reportGate?.promise;
        // Held once reported on an open connection; after it closed, only what an earlier report got held. As
        // Session.handOff: the position is the batch's session's (its tracker's), and the batch's own (its last
        // transaction's end) is checked, not a later event-less commit's the tracker confirmed since: the rest of a
        // transaction whose end PostgreSQL holds goes.
        const last = events.at(-1)!.txn;
        const confirmed = last.tracker.confirmed;
        if (this.reportable) this.held = confirmed;
        const held = (last.endLsn !== undefined && last.endLsn < confirmed ? last.endLsn : confirmed) <= this.held;
        if (held) this.latencies.push(undefined);
        else this.withheld.push(events.length);
        return held;
      },
      positionReportable: () => this.reportable,
      progressed: () => options.relay?.progressed(),
    };
    this.engine = new DeliveryEngine({
      producing,
      limits: { maxInFlightEvents: 1000, maxInFlightBytes: 1 << 20, batchMaxEvents: 2, batchMaxBytes: 1 << 20, coalesceMs: 0, ...options.limits },
      retry: { ...FAST_RETRY, ...options.retry },
      stallTimeoutMs: options.stallTimeoutMs ?? 30_000,
      callbacks,
      brokers: ['b:9092'],
    });
    this.tracker = this.newSession();
  }

  private acknowledge(receipts: readonly Receipt[]): void {
    for (const r of receipts) {
      this.acknowledged += r.count;
      r.txn.tracker.acknowledge(r.txn, r.count);
    }
  }

  get lastConfirmed(): Lsn {
    return this.confirmed.at(-1) ?? 0n;
  }

  /** A new replication session starting at `start` (default: the last confirmed position). */
  newSession(start = this.lastConfirmed): AckTracker {
    this.tracker = new AckTracker(start, (lsn) => this.confirmed.push(lsn));
    this.engine.openSession(this.tracker);
    return this.tracker;
  }

  /**
   * Begins a source transaction and pushes `count` events (ids `<name>.<i>`); returns whether the window has room.
   * `commitLsn`: one streamed before, streamed again (after a source restart); else a new one.
   */
  begin(name: string, count: number, commitLsn?: Lsn): { txn: SourceTransaction; room: boolean } {
    const txn = this.tracker.begin(commitLsn ?? this.lsn, 0, ++this.xid);
    if (commitLsn === undefined) this.lsn += 10n;
    let room = true;
    for (let i = 0; i < count; i++) room = this.push(txn, `${name}.${i}`) && room;
    return { txn, room };
  }

  push(txn: SourceTransaction, id: string, error?: RelayError, topic = 't', size = 10): boolean {
    txn.tracker.add(txn);
    const event: OutboxEvent = { topic, key: Buffer.from(id), value: Buffer.from('{}'), headers: {}, eventId: id, size, txn, ...(error ? { error } : {}) };
    return this.engine.push(event);
  }

  /** The source transaction's Commit: its end LSN is returned. */
  commit(txn: SourceTransaction): Lsn {
    const end = this.lsn;
    this.lsn += 10n;
    this.tracker.commit(txn, end);
    this.engine.committed(txn);
    return end;
  }

  /** A whole source transaction of `count` events. */
  transaction(name: string, count: number): Lsn {
    return this.commit(this.begin(name, count).txn);
  }

  idle(): Promise<void> {
    return this.engine.whenIdle();
  }
}

/**
 * The callbacks a Relay on fakes gives its delivery: what it logs of them (the engine's outage, source restarts)
 * goes to `logger`, what it counts of them to `deps.observer`; its poison policy is `deps.onPoison`.
 */
export function relayCallbacks(logger: Logger, deps: Pick<RelayDeps, 'observer' | 'onPoison'> = {}): DeliveryCallbacks {
  return relayOnFakes(logger, deps).callbacks;
}

/** That Relay with its callbacks: what it shows /readyz of them (reconnectCause) is read from `relay`. */
export function relayOnFakes(logger: Logger, deps: Pick<RelayDeps, 'observer' | 'onPoison'> = {}): { relay: Relay; callbacks: DeliveryCallbacks } {
  let callbacks!: DeliveryCallbacks;
  const relay = new Relay(relayConfig({ initialDelayMs: 1, maxDelayMs: 4, maxDurationMs: 60_000 }) as never, {
    ...deps,
    logger,
    sink: { connect: async () => undefined, send: async () => undefined, close: async () => undefined },
    createDelivery: (given) => {
      callbacks = given;
      return idleDelivery() as Delivery;
    },
    reportPosition: (lsn) => lsn,
  });
  return { relay, callbacks };
}

/** createDelivery for a real Relay: a DeliveryEngine producing as `producing` with a window of 100 events, batches of 10. */
export function engineDelivery(producing: Producing, retry: RetryPolicy): (callbacks: DeliveryCallbacks) => DeliveryEngine {
  const limits = { maxInFlightEvents: 100, maxInFlightBytes: 1 << 20, batchMaxEvents: 10, batchMaxBytes: 1 << 20, coalesceMs: 0 };
  return (callbacks) => new DeliveryEngine({ producing, limits, retry, stallTimeoutMs: 30_000, callbacks, brokers: ['b:9092'] });
}

/**
 * A real Relay (with whatever Session the test file mocked) delivering through a DeliveryEngine that produces as
 * `producing` into `sink`, running: its log lines (debug) and the states it went through recorded.
 */
export function engineRelay(config: RelayConfig, sink: FakeSink, producing: Producing, retry: RetryPolicy) {
  const { logger, lines } = capturingLogger('debug');
  const states: RelayState[] = [];
  const relay = new Relay(config, {
    logger,
    sink,
    createDelivery: engineDelivery(producing, retry),
    reportPosition: (lsn: Lsn) => lsn,
    observer: { stateChanged: (state: RelayState) => void states.push(state) },
  });
  return { relay, running: relay.run(), lines, states };
}

/** Lets deferred callbacks and setImmediate steps run. */
export async function settle(rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((resolve) => setImmediate(resolve));
}

export { deferred };

import type { RelayError } from '../errors.js';
import { formatLsn, type Lsn } from '../lsn.js';
import { haltReport, type HaltReport } from '../ops/halt-report.js';
import type { RelayObserver, RelayState } from '../pipeline/observer.js';
import type { RetryCause } from '../pipeline/relay.js';
import type { InFlightState } from '../sink/delivery.js';

/** What the probes read from the relay (Relay satisfies it). */
export interface RelayView {
  readonly currentState: RelayState;
  /** Undefined until a session streamed or a pre-flight found the slot. */
  readonly reportedLsn: Lsn | undefined;
  /** 0 until a session streamed (it starts at the position it resumed from). */
  readonly deliveredLsn: Lsn;
  readonly reconnectCause: RetryCause | undefined;
  readonly outageCauses: readonly RetryCause[];
  readonly inFlight: InFlightState;
}

/** The /readyz body; `outbox-relay status` parses exactly these fields. */
export interface Readiness {
  ready: boolean;
  state: RelayState;
  /** The flush position PostgreSQL holds (the slot's confirmed_flush_lsn); null while the relay has not learnt it. */
  confirmedLsn: string | null;
  /** What Kafka acknowledged everything up to: ahead of confirmedLsn by a replay window; null while no session streamed. */
  deliveredLsn: string | null;
  inFlightEvents: number;
  inFlightBytes: number;
  /**
   * 0, or how long the in-flight window has been full: the relay reads nothing from PostgreSQL until Kafka
   * acknowledges half of it, so a growing figure means Kafka is slow or down (see producerConnected).
   */
  windowFullForMs: number;
  producerConnected: boolean;
  /**
   * Present while reconnecting (the session's failure), or during a Kafka outage (producerConnected false, e.g.
   * while streaming): the system whose failure the relay retries, its code, message and fix, and since when (the
   * outage's start). Gone once the outage ends; not shown once halted, failed or stopped (`halt` says why).
   */
  reconnecting?: RetryCause;
  /**
   * Present with `reconnecting`: every outage the relay retries, one cause per system, `reconnecting`'s first. While
   * PostgreSQL reconnects during a Kafka outage, Kafka's is the second: `reconnecting` shows only the session's.
   */
  outages?: RetryCause[];
  /** Present while halted or failed: the code, the event and its commit LSN, and the fix. */
  halt?: HaltReport;
}

export interface Liveness {
  alive: boolean;
  state: RelayState;
  /** Time since the pipeline last reported anything. */
  silentForMs: number;
}

/**
 * A streaming relay hears from the pipeline at least once per status interval (it asks PostgreSQL for a
 * keepalive whenever it is idle, and the server sends one every wal_sender_timeout/2 regardless); a busy one
 * reports deliveries or retries. This long without either means a stuck connection or a hung pipeline, and a
 * restart (what a failing liveness probe triggers) is the remedy.
 */
const MIN_WEDGED_AFTER_MS = 120_000;
const STATUS_INTERVALS_BEFORE_WEDGED = 5;

/** Readiness and liveness of the relay, from its getters and what it reports as an observer. */
export class RelayHealth implements RelayObserver {
  private producerUp = false;
  private halt: HaltReport | undefined;
  private lastSignOfLife: number;
  private readonly wedgedAfterMs: number;

  /**
   * `stallTimeoutMs` (kafka.deliveryTimeout): how long a full window may wait for Kafka before the outage is
   * declared (and the producer counted down); silent all along, it must not count as wedged before that.
   */
  constructor(
    statusIntervalMs: number,
    stallTimeoutMs = 0,
    private readonly now: () => number = Date.now,
  ) {
    this.wedgedAfterMs = Math.max(MIN_WEDGED_AFTER_MS, STATUS_INTERVALS_BEFORE_WEDGED * statusIntervalMs, stallTimeoutMs + STATUS_INTERVALS_BEFORE_WEDGED * statusIntervalMs);
    this.lastSignOfLife = now();
  }

  readiness(relay: RelayView): Readiness {
    const state = relay.currentState;
    // A halted (or ended) relay sends nothing more: the event it halted on is refused, not on its way to Kafka.
    const ended = state === 'halted' || state === 'failed' || state === 'stopped';
    const { events, bytes, windowFullSinceMs } = ended ? { events: 0, bytes: 0, windowFullSinceMs: undefined } : relay.inFlight;
    return {
      ready: state === 'streaming' && this.producerUp,
      state,
      confirmedLsn: relay.reportedLsn === undefined ? null : formatLsn(relay.reportedLsn),
      // Nothing delivered by this process (a standby, a relay halted at its start): no position, not a made-up 0/0.
      deliveredLsn: relay.deliveredLsn === 0n ? null : formatLsn(relay.deliveredLsn),
      inFlightEvents: events,
      inFlightBytes: bytes,
      windowFullForMs: windowFullSinceMs === undefined ? 0 : Math.max(0, this.now() - windowFullSinceMs),
      producerConnected: this.producerUp,
      ...(!ended && relay.reconnectCause ? { reconnecting: relay.reconnectCause } : {}),
      ...(!ended && relay.outageCauses.length > 0 ? { outages: [...relay.outageCauses] } : {}),
      ...(this.halt && (state === 'halted' || state === 'failed') ? { halt: this.halt } : {}),
    };
  }

  /**
   * Alive unless streaming and silent for too long; a halted relay is alive on purpose (see run), and so is one
   * waiting out a Kafka outage: with the window full the socket is not read (no keepalives), and a broker that does
   * not answer is reported once per outage (librdkafka retries the records itself), so the silence would restart a
   * relay that only waits; retry.maxDuration bounds that wait (the relay then exits).
   */
  liveness(relay: RelayView): Liveness {
    const silentForMs = this.now() - this.lastSignOfLife;
    const state = relay.currentState;
    return { alive: state !== 'streaming' || !this.producerUp || silentForMs < this.wedgedAfterMs, state, silentForMs };
  }

  producerConnected(connected: boolean): void {
    this.producerUp = connected;
    this.signOfLife();
  }

  halted(error: RelayError): void {
    this.halt = haltReport(error);
  }

  stateChanged(): void {
    this.signOfLife();
  }

  delivered(): void {
    this.signOfLife();
  }

  confirmed(): void {
    this.signOfLife();
  }

  walPosition(): void {
    this.signOfLife();
  }

  // The window moved: under exactly-once, Kafka acknowledged a produce of a source transaction not yet committed
  // (delivered comes only at its commit: one that streamed for longer than wedgedAfterMs read as wedged).
  inFlight(): void {
    this.signOfLife();
  }

  // An at-most-once batch Kafka refused: it answered.
  dropped(): void {
    this.signOfLife();
  }

  retrying(): void {
    this.signOfLife();
  }

  private signOfLife(): void {
    this.lastSignOfLife = this.now();
  }
}

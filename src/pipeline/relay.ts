import type { Logger } from 'pino';
import type { RelayConfig } from '../config/relay-config.js';
import { RelayError, isRelayError, type ErrorCode } from '../errors.js';
import { formatLsn, maxLsn, type Lsn } from '../lsn.js';
import { backoffDelay, sleep } from '../retry.js';
import { DeliveryQueue, type PoisonDecision } from '../sink/delivery-queue.js';
import type { CreateDelivery, Delivery, StrategyCallbacks } from '../sink/delivery.js';
import type { Sink } from '../sink/sink.js';
import type { OutboxEvent } from '../route/event.js';
import type { RelayObserver, RelayState } from './observer.js';
import { StandbyWait } from '../source/standby-wait.js';
import { PostgresOutageLog } from './outage-log.js';
import { Session } from './session.js';

export interface RelayDeps {
  logger: Logger;
  sink: Sink;
  observer?: RelayObserver;
  /** The poison policy; the default halts (dead-letter policies plug in here). */
  onPoison?: (event: OutboxEvent, error: RelayError) => Promise<PoisonDecision>;
  /** Another delivery guarantee (exactly-once, at-most-once); default: the at-least-once DeliveryQueue over `sink`. */
  createDelivery?: CreateDelivery;
  /** Where the first session starts instead of config.startLsn (a checkpoint, a checked replay position); asked after the sink connected. */
  startPosition?: () => Promise<Lsn | undefined>;
  /** The flush position reported to PostgreSQL for a confirmed one (a replay window keeps the slot behind). */
  reportPosition?: (confirmed: Lsn) => Lsn;
}

export interface RelayOutcome {
  state: 'stopped' | 'halted' | 'failed';
  error?: RelayError;
}

/**
 * Errors that end the process (exit 1): setup mistakes a restart with fixed configuration cures, and giving up
 * on an unreachable service. Everything else non-retriable (a poison event, a schema change, a lost slot) halts:
 * the process stays up and not ready, because a restart would meet the same event and loop.
 */
const FATAL = new Set<ErrorCode>([
  'RETRIES_EXHAUSTED',
  'PG_CONNECT_FAILED',
  'PG_WAL_LEVEL',
  'PG_NO_REPLICATION_PRIVILEGE',
  'PG_SLOT_MISSING',
  'PG_SLOT_WRONG_PLUGIN',
  'PG_SLOT_WRONG_DATABASE',
  'PG_PUBLICATION_MISSING',
  'PG_TABLE_NOT_PUBLISHED',
]);

/** How often the confirmed position is logged at info while it moves. */
const PROGRESS_LOG_MS = 30_000;

/**
 * The daemon's lifecycle: connect the sink, stream sessions with reconnects (bounded backoff with jitter),
 * wait as a standby while another instance holds the slot, drain on stop. State changes are logged once each.
 */
export class Relay {
  private state: RelayState = 'starting';
  private readonly queue: Delivery;
  private readonly observer: RelayObserver;
  private readonly logger: Logger;
  private session: Session | undefined;
  private lastConfirmed: Lsn = 0n;
  private stopRequested = false;
  private readonly wake = new AbortController();
  private deliveryError: RelayError | undefined;
  private done!: (outcome: RelayOutcome) => void;
  private lastProgressLog = 0;
  private brokerDownSince: number | undefined;
  private readonly pgOutage: PostgresOutageLog;
  private readonly standbyWait: StandbyWait;

  constructor(
    private readonly config: RelayConfig,
    private readonly deps: RelayDeps,
  ) {
    this.logger = deps.logger;
    this.observer = deps.observer ?? {};
    this.pgOutage = new PostgresOutageLog(this.logger, this.observer);
    this.standbyWait = new StandbyWait(config.postgres, config.slot, config.retry, this.logger.child({ module: 'standby' }));
    const callbacks: StrategyCallbacks = {
      delivered: (events, latencyMs) => {
        for (const e of events) e.txn.tracker.acknowledge(e.txn);
        this.observer.delivered?.(events, latencyMs);
        this.observer.inFlight?.(this.queue.inFlightEvents, this.queue.inFlightBytes);
      },
      poison: (event, error) => this.poison(event, error),
      stopped: (error) => this.onDeliveryStopped(error),
      windowOpen: () => this.session?.resume(),
      recordRetrying: (event, error, attempt, delayMs) => {
        this.observer.retrying?.(error.code);
        this.logger.warn(
          { code: error.code, err: error.message, eventId: event.eventId, lsn: formatLsn(event.txn.commitLsn), attempt, retryInMs: delayMs },
          'Kafka rejected the record: retrying before the poison policy applies',
        );
      },
      retrying: (error, attempt, delayMs) => {
        this.observer.retrying?.(error.code);
        if (this.brokerDownSince === undefined) {
          this.brokerDownSince = Date.now();
          this.observer.producerConnected?.(false);
          this.logger.warn({ code: error.code, err: error.message, retryInMs: delayMs }, 'Kafka unavailable: holding the confirmed position and retrying');
        } else this.logger.debug({ code: error.code, attempt, retryInMs: delayMs }, 'Kafka still unavailable');
      },
      recovered: (downMs, attempts) => {
        this.brokerDownSince = undefined;
        this.observer.producerConnected?.(true);
        this.logger.info({ downMs, attempts }, 'Kafka available again: delivery resumed');
      },
      restartSource: (error) => this.restartSource(error),
    };
    this.queue = deps.createDelivery?.(callbacks) ?? new DeliveryQueue(deps.sink, config.delivery, config.retry, callbacks);
  }

  get currentState(): RelayState {
    return this.state;
  }

  get confirmedLsn(): Lsn {
    return this.lastConfirmed;
  }

  get inFlight(): { events: number; bytes: number } {
    return { events: this.queue.inFlightEvents, bytes: this.queue.inFlightBytes };
  }

  private setState(state: RelayState): void {
    if (this.state === state) return;
    this.state = state;
    this.observer.stateChanged?.(state);
  }

  /** Runs until stop(), a halt, or a fatal error. */
  run(): Promise<RelayOutcome> {
    const outcome = new Promise<RelayOutcome>((resolve) => (this.done = resolve));
    void this.loop().then(
      async (result) => {
        // A failed relay exits: release the producer and timers so the process can end.
        if (result.state === 'failed') {
          this.queue.stop();
          await this.deps.sink.close();
        }
        this.done(result);
      },
      (err) => this.done({ state: 'failed', error: isRelayError(err) ? err : new RelayError('INTERNAL', String(err), { cause: err }) }),
    );
    return outcome;
  }

  private async loop(): Promise<RelayOutcome> {
    await this.connectSink();
    let failingSince: number | undefined;
    let attempt = 0;
    let requestedStart: Lsn | undefined;
    try {
      requestedStart = this.deps.startPosition ? await this.deps.startPosition() : this.config.startLsn;
    } catch (err) {
      return this.fail(isRelayError(err) ? err : new RelayError('INTERNAL', String(err), { cause: err }));
    }
    while (!this.stopRequested && !this.deliveryError) {
      const session = new Session(this.config, this.queue, this.logger.child({ module: 'source' }), this.observer, (lsn) => this.onConfirmed(lsn), this.deps.reportPosition);
      let error: RelayError | undefined;
      try {
        const startLsn = await session.start(this.lastConfirmed, requestedStart);
        requestedStart = undefined;
        this.session = session;
        this.lastConfirmed = maxLsn(this.lastConfirmed, session.confirmed);
        if (this.stopRequested) {
          await session.close();
          break;
        }
        if (attempt > 0 || this.state === 'standby') this.observer.reconnected?.();
        failingSince = undefined;
        attempt = 0;
        this.setState('streaming');
        this.logger.info({ slot: this.config.slot, publication: this.config.publication, startLsn: formatLsn(startLsn) }, 'streaming from PostgreSQL');
        this.pgOutage.recovered();
        error = await session.ended;
        this.session = undefined;
      } catch (err) {
        error = err as RelayError;
      }
      if (this.stopRequested || this.deliveryError) break;
      if (!error) continue;
      if (!error.retriable) {
        this.observer.error?.(error.code);
        return this.halt(error);
      }
      if (error.code === 'PG_SLOT_ACTIVE') {
        if (this.state !== 'standby') this.logger.info({ slot: this.config.slot, activePid: error.details.activePid }, 'slot in use by another instance: waiting as standby');
        this.setState('standby');
        await this.standbyWait.untilReleased(this.wake.signal);
        continue;
      }
      failingSince ??= Date.now();
      if (Date.now() - failingSince >= this.config.retry.maxDurationMs) {
        return this.fail(new RelayError('RETRIES_EXHAUSTED', `PostgreSQL unreachable for ${Math.round((Date.now() - failingSince) / 1000)} s: ${error.message}`, { cause: error }));
      }
      const delay = backoffDelay(this.config.retry, attempt++);
      this.pgOutage.failed(error, delay);
      this.setState('reconnecting');
      // Events already handed to Kafka finish first, so the next session starts after everything delivered.
      await this.queue.whenEmpty();
      await sleep(delay, this.wake.signal);
    }
    if (this.deliveryError) return this.halt(this.deliveryError);
    return { state: 'stopped' };
  }

  private async connectSink(): Promise<void> {
    const started = Date.now();
    for (let attempt = 0; ; attempt++) {
      try {
        await this.deps.sink.connect();
        this.observer.producerConnected?.(true);
        this.logger.info({ brokers: this.config.kafka.brokers }, 'connected to Kafka');
        return;
      } catch (err) {
        const error = err as RelayError;
        if (!error.retriable || Date.now() - started >= this.config.retry.maxDurationMs || this.stopRequested) throw error;
        const delay = backoffDelay(this.config.retry, attempt);
        this.observer.retrying?.(error.code);
        this.logger.warn({ code: error.code, err: error.message, retryInMs: delay }, 'cannot connect to Kafka yet');
        await sleep(delay, this.wake.signal);
      }
    }
  }

  private onConfirmed(lsn: Lsn): void {
    this.lastConfirmed = maxLsn(this.lastConfirmed, lsn);
    const now = Date.now();
    if (now - this.lastProgressLog >= PROGRESS_LOG_MS) {
      this.lastProgressLog = now;
      this.logger.info({ confirmedLsn: formatLsn(this.lastConfirmed) }, 'confirmed position');
    }
  }

  private async poison(event: OutboxEvent, error: RelayError): Promise<PoisonDecision> {
    this.observer.error?.(error.code);
    return this.deps.onPoison ? this.deps.onPoison(event, error) : 'halt';
  }

  /** The delivery dropped its uncommitted events: a new session streams them again from the last confirmed position. */
  private restartSource(error: RelayError): void {
    this.observer.error?.(error.code);
    this.logger.warn({ code: error.code, err: error.message, confirmedLsn: formatLsn(this.lastConfirmed) }, 'delivery aborted its uncommitted events: streaming again from the confirmed position');
    void this.session?.close();
  }

  private onDeliveryStopped(error: RelayError): void {
    this.deliveryError = error;
    this.wake.abort();
    void this.session?.close();
  }

  private async halt(error: RelayError): Promise<RelayOutcome> {
    await this.session?.close();
    const fatal = FATAL.has(error.code);
    this.observer.halted?.(error);
    this.setState(fatal ? 'failed' : 'halted');
    this.logger.error(
      { code: error.code, err: error.message, fix: error.hint, ...error.details, confirmedLsn: formatLsn(this.lastConfirmed) },
      fatal ? 'giving up' : 'halted: nothing after the confirmed position was confirmed; fix the cause and restart',
    );
    return { state: fatal ? 'failed' : 'halted', error };
  }

  private fail(error: RelayError): RelayOutcome {
    this.setState('failed');
    this.logger.error({ code: error.code, err: error.message, fix: error.hint }, 'giving up');
    return { state: 'failed', error };
  }

  /** Graceful stop: stop reading, wait (bounded) for in-flight acknowledgements, confirm, close. */
  async stop(): Promise<void> {
    if (this.stopRequested) return;
    this.stopRequested = true;
    this.wake.abort();
    this.setState('draining');
    this.session?.pause();
    const { events } = this.inFlight;
    this.logger.info({ inFlight: events, graceMs: this.config.shutdownGraceMs }, 'stopping: draining in-flight events');
    const graceTimer = new AbortController();
    const drained = await Promise.race([this.queue.whenEmpty().then(() => true), sleep(this.config.shutdownGraceMs, graceTimer.signal).then(() => false)]);
    graceTimer.abort();
    if (!drained) this.logger.warn({ inFlight: this.queue.inFlightEvents }, 'grace period over with events unacknowledged: they will be re-sent after restart');
    this.queue.stop();
    await this.session?.close();
    await this.deps.sink.close();
    this.setState('stopped');
    this.logger.info({ confirmedLsn: formatLsn(this.lastConfirmed) }, 'stopped');
  }
}

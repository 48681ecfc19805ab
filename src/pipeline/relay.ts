import type { Logger } from 'pino';
import type { SourceTransaction } from '../checkpoint/ack-tracker.js';
import type { RelayConfig } from '../config/types.js';
import { RelayError, asRelayError, type ErrorCode } from '../errors.js';
import { formatLsn, maxLsn, parseLsn, type Lsn } from '../lsn.js';
import { OutageLog, RepeatedLines } from '../outage-log.js';
import { backoffDelay, settlesUnlessAborted, settlesWithin, sleep } from '../retry.js';
import { connectWithRetry } from '../sink/connect-retry.js';
import type { CreateDelivery, Delivery, DeliveryCallbacks, InFlightState, KafkaWatch, PoisonDecision, Receipt } from '../sink/delivery.js';
import type { Sink } from '../sink/sink.js';
import type { OutboxEvent } from '../route/event.js';
import { idFields, loggedDetails } from '../route/logged-id.js';
import { haltedEvent } from '../ops/halt-report.js';
import type { RelayObserver, RelayState } from './observer.js';
import { republishScope } from '../source/republish-command.js';
import { slotLostSince } from '../source/slot-lost.js';
import { StandbyWait } from '../source/standby-wait.js';
import type { TimelinePosition } from '../source/timeline.js';
import { Session } from './session.js';
import { SeenPublication } from '../source/seen-publication.js';

export interface RelayDeps {
  logger: Logger;
  sink: Sink;
  createDelivery: CreateDelivery;
  observer?: RelayObserver;
  /** The poison policy; the default halts (dead-letter policies plug in here). */
  onPoison?: DeliveryCallbacks['poison'];
  /** Where the first session starts instead of config.startLsn (a checkpoint, a checked replay position; a checkpoint behind the slot, where it starts at the slot, for the session's checks); asked after the sink connected, and after it claimed the slot if it does; a --start-lsn (whose skip it may record) only once the checks found the slot free. */
  startPosition?: () => Promise<TimelinePosition | undefined>;
  /**
   * Where every later session starts: the checkpoint read again (exactly-once: a commit may have happened unseen;
   * the other modes: another instance may have delivered meanwhile).
   */
  resumePosition?: () => Promise<TimelinePosition | undefined>;
  /**
   * A session streams on this PostgreSQL timeline (checked against the positions it resumed at): checkpoints record
   * it; from a slot whose confirmed position was `slotConfirmed` when it opened (another instance may have moved it
   * since this relay last streamed): nothing reported to PostgreSQL goes below it. Called before the session reports.
   */
  streamingOn?: (timeline: number, slotConfirmed: Lsn) => void;
  /** PG_SLOT_MISSING as the operator is told it: a slot that had delivered was lost, which a plain `setup` does not mend; `seen` for a publication gone with it. */
  explainMissingSlot?: (missing: RelayError, seen: SeenPublication) => Promise<RelayError>;
  /** The flush position reported to PostgreSQL for a confirmed one (a replay window keeps the slot behind). */
  reportPosition?: (confirmed: Lsn) => Lsn;
  /**
   * A stop's drain ended: everything handed over was acknowledged (`drained`), or the grace period ran out first.
   * Awaited while the session still holds the slot (the last checkpoint is written here), and must end by
   * `closeBy` (ms since the epoch) less what the rest of the stop needs, before the watchdog exits.
   */
  drainEnded?: (drained: boolean, closeBy: number) => Promise<void>;
}

/**
 * What the relay retries: a session that could not start or ended with a retriable error, or Kafka refusing or not
 * answering delivery. Which system failed, its code, message and fix (the error's hint), and when the outage began:
 * /readyz and `status` say why the relay is not ready without its log.
 */
export interface RetryCause {
  system: 'PostgreSQL' | 'Kafka';
  code: ErrorCode;
  message: string;
  fix: string | null;
  /** ISO time the outage began (its first failed attempt), not this attempt. */
  since: string;
}

/** The fix of a session failure that has none of its own, while the relay retries it and once it gave up. */
const POSTGRES_SIDE_FIX =
  'check that PostgreSQL (postgres.url) is up and accepts connections from the relay (pg_isready), and its server log; the relay resumes from the slot once it connects again: by itself while it retries (for retry.maxDuration), else at its restart';
const KAFKA_SIDE_FIX =
  'check that the Kafka brokers (kafka.brokers) are up and reachable, and the ACLs in docs/security.md; the relay resumes from the slot once they answer: by itself while it retries (for retry.maxDuration), else at its restart';

/** The cause of `outage`'s latest failed attempt; called after its failed(), so the outage is under way. */
function causeOf(system: RetryCause['system'], error: RelayError, outage: OutageLog, fix = error.hint ?? null): RetryCause {
  return { system, code: error.code, message: error.message, fix, since: new Date(outage.startedAt!).toISOString() };
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
  // Another server's checkpoint met by a later exactly-once session: a configuration to fix, as at the start.
  'CHECKPOINT_FOREIGN',
]);

/**
 * A stop has shutdownGrace for its drain and this long more for the rest (a last checkpoint, closing the clients)
 * before the watchdog (cli/signals.ts) exits; the rest is bounded to end EXIT_RESERVE_MS before that, which is
 * left for the process to end.
 */
export const SHUTDOWN_MARGIN_MS = 5000;
const EXIT_RESERVE_MS = 500;

/**
 * Of the time a stop has left, what the replication connection's close leaves for the clients closed after it
 * (the sink's, the checkpoint producer's).
 */
const SESSION_CLOSE_RESERVE_MS = 1000;

/** How often the confirmed position is logged at info while it moves. */
const PROGRESS_LOG_MS = 30_000;

/**
 * The daemon's lifecycle: connect the sink, stream sessions with reconnects (bounded backoff with jitter),
 * wait as a standby while another instance holds the slot, drain on stop. Each session is opened in and ended
 * for the delivery explicitly; a new one starts only once the delivery is idle, so it resumes after everything
 * delivered. State changes are logged once each.
 */
export class Relay {
  private readonly counted = new WeakSet<RelayError>();
  private state: RelayState = 'starting';
  private readonly delivery: Delivery;
  private readonly observer: RelayObserver;
  private readonly logger: Logger;
  private session: Session | undefined;
  /**
   * The column list and row filter each mapped table had when a pre-flight or the publication watch last found it
   * published: kept over sessions, since a table taken out of the publication loses them from the catalog (SeenPublication).
   */
  readonly seenPublication = new SeenPublication();
  private lastConfirmed: Lsn = 0n;
  /** The timeline of the session that confirmed lastConfirmed (a session on another one checks it). */
  private confirmedTimeline: number | undefined;
  /**
   * The slot's confirmed position as a pre-flight that refused it found it (a lost slot, one another instance holds),
   * before any session of this relay streamed: what PostgreSQL holds, where "0/0" was shown.
   */
  private slotFoundAt: Lsn | undefined;
  /** The commit time of the last transaction delivered up to lastConfirmed, where known (a refusal's fix names it). */
  private confirmedCommitTimeMs: number | undefined;
  private stopRequested = false;
  /** The stop under way (stop()): run() returns a stopped outcome only once it has ended. */
  private stopping: Promise<void> | undefined;
  private readonly wake = new AbortController();
  private deliveryError: RelayError | undefined;
  private lastProgressLog = 0;
  private sourceRestarts = 0;
  /** Kafka refusing or not answering delivery: the engine bounds the outage and reports its end (`recovered`). */
  private readonly kafkaOutage: OutageLog;
  /**
   * Sessions that cannot start or end with a retriable error: a 50 s restart is one incident, as a Kafka outage
   * is. A session also needs Kafka before it streams (exactly-once claims the slot's transactional id, the start
   * position is read from the checkpoint topic): each line names the side that failed.
   */
  private readonly sessionOutage: OutageLog;
  private readonly standbyWait: StandbyWait;
  /** The sessions' logger, and what each of them decides again at its start, said at info once per relay (a process). */
  private readonly sourceLogger: Logger;
  private readonly sessionLines: RepeatedLines;
  /** The server process of the last session that streamed: its walsender, which holds the slot until it ends. */
  private lastWalsender: number | null = null;
  /** Why the relay is reconnecting (the session's last failure and its side), for /readyz and `status`. */
  private retryCause: RetryCause | undefined;
  /** Why delivery waits for Kafka (its last failure) while the Kafka outage is open: the state stays streaming. */
  private kafkaCause: RetryCause | undefined;
  /**
   * The furthest WAL position any session's keepalives reached: a later session ends a PostgreSQL outage by a
   * keepalive only beyond it (Session.progressed), else by a commit, or by streaming on for its receive timeout.
   */
  private walReached: Lsn = 0n;
  /** Where sessions' metrics counted transactions up to: a later session streaming them again counts them no more (Session.countRead). */
  private countedThrough: Lsn = 0n;
  /**
   * A session of this relay streamed (its server sent a message), or the relay waited as a standby: a session that
   * streams after a failed one is then a reconnect or a takeover. Until then, the starts that failed are the first
   * start, retried: no connection was lost (outbox_relay_reconnects_total).
   */
  private pastFirstStart = false;
  /**
   * at-most-once: the events of batches withheld since the last session start, by source transaction. PostgreSQL
   * sends them again to the next session unless it took their position after all: the next start counts them
   * (settleWithheld).
   */
  private readonly withheld = new Map<SourceTransaction, number>();
  /** A session that ended with a non-retriable error once a stop was requested: the outcome is that failure's. */
  private stopFailure: RelayError | undefined;
  /** The sink's connect succeeded: until then it holds nothing to flush (closeSink). */
  private sinkConnected = false;

  constructor(
    private readonly config: RelayConfig,
    private readonly deps: RelayDeps,
  ) {
    this.logger = deps.logger;
    this.observer = deps.observer ?? {};
    this.kafkaOutage = new OutageLog(this.logger, {
      started: 'Kafka unavailable: holding the confirmed position and retrying',
      ongoing: 'Kafka still unavailable',
      ended: 'Kafka available again: delivery resumed',
    });
    this.sessionOutage = new OutageLog(this.logger, {
      started: 'replication connection lost: reconnecting',
      ongoing: 'PostgreSQL still unavailable',
      ended: 'replication connection back: streaming resumed',
    });
    this.sourceLogger = this.logger.child({ module: 'source' });
    this.sessionLines = new RepeatedLines(this.sourceLogger);
    this.standbyWait = new StandbyWait(config.postgres, config.slot, republishScope(config), config.retry, this.logger.child({ module: 'standby' }));
    const acknowledge = (receipts: readonly Receipt[]) => {
      for (const r of receipts) r.txn.tracker.acknowledge(r.txn, r.count);
    };
    const counted = (receipts: readonly Receipt[], latencyMs: number | undefined) => {
      this.observer.delivered?.(receipts, latencyMs);
      this.observer.inFlight?.(this.delivery.inFlightEvents, this.delivery.inFlightBytes);
    };
    const callbacks: DeliveryCallbacks = {
      delivered: (receipts, latencyMs) => {
        acknowledge(receipts);
        counted(receipts, latencyMs);
      },
      handOff: async (receipts, events, decidedThrough) => {
        const held = this.session ? await this.session.handOff(() => acknowledge(receipts), events.at(-1)!.txn, decidedThrough) : false;
        // Counted once PostgreSQL holds them: a withheld batch streamed again would count twice.
        if (held) counted(receipts, undefined);
        else for (const event of events) this.withheld.set(event.txn, (this.withheld.get(event.txn) ?? 0) + 1);
        return held;
      },
      poison: (event, error, stop, kafka) => this.poison(event, error, stop, kafka),
      stopped: (error) => this.onDeliveryStopped(error),
      // A draining relay reads only to the end of the open source transaction: the session refuses after that.
      windowOpen: () => this.session?.resume(),
      recordRetrying: (event, error, attempt, delayMs, spent) => {
        this.observer.retrying?.(error.code);
        this.logger.warn(
          { code: error.code, err: error.message, ...idFields(event.eventId), lsn: formatLsn(event.txn.commitLsn), attempt, retryInMs: delayMs },
          spent === 'halt' ? 'Kafka rejected the record: retrying; exactly-once halts once the retries are spent' : 'Kafka rejected the record: retrying before the poison policy applies',
        );
      },
      retrying: (error, attempt, delayMs) => this.kafkaDown(error, { attempt, retryInMs: delayMs }),
      dropped: (count, error) => {
        // Counted every time: only the outage's first drop is a warn line, later ones its debug attempts.
        this.observer.dropped?.(count);
        this.kafkaDown(error, { dropped: count }, 'Kafka refused a batch: at-most-once drops it, it is not retried (delivery.guarantee=at-most-once)', false);
      },
      recovered: (downMs, attempts) => {
        this.kafkaCause = undefined;
        this.observer.producerConnected?.(true);
        this.kafkaOutage.recovered({ downMs, attempts });
      },
      restartSource: (error, attempt) => this.restartSource(error, attempt),
      progressed: () => this.observer.inFlight?.(this.delivery.inFlightEvents, this.delivery.inFlightBytes),
      positionReportable: () => this.session?.reportable ?? false,
    };
    this.delivery = deps.createDelivery(callbacks);
  }

  get currentState(): RelayState {
    return this.state;
  }

  /** The newest position Kafka acknowledged everything up to (what a replay confirms it delivered). */
  get deliveredLsn(): Lsn {
    return this.lastConfirmed;
  }

  /**
   * The flush position PostgreSQL holds: the delivered one, or older while a replay window keeps it behind. A new
   * session that has sent no status yet says what its slot holds: the delivered position, shown until then, was
   * never sent to PostgreSQL, and with a replay window went back at the session's first status.
   */
  get reportedLsn(): Lsn | undefined {
    if (this.session) return this.session.held;
    return this.lastConfirmed > 0n ? this.lastConfirmed : this.slotFoundAt;
  }

  /** While a session streams: when its pre-flight began (source/publication-watch.ts counts from it). */
  get streamingSince(): number | undefined {
    return this.state === 'streaming' ? this.session?.openedAtMs : undefined;
  }

  /** A side check found the source broken where the stream says nothing: the session ends with `error` (Session.refuse). */
  sourceRefused(error: RelayError): void {
    if (this.state === 'streaming') this.session?.refuse(error);
  }

  /** PostgreSQL is shutting down (a side connection says so): see Session.serverStopping. */
  serverStopping(): void {
    this.session?.serverStopping();
  }

  /** What the relay retries: while reconnecting, the session's failure; otherwise, during a Kafka outage, delivery's. */
  get reconnectCause(): RetryCause | undefined {
    return this.state === 'reconnecting' ? this.retryCause : this.kafkaCause;
  }

  /**
   * Every outage the relay retries now, one cause per system: reconnectCause first, then a Kafka outage delivery
   * waits out while PostgreSQL reconnects (its in-flight events are retried meanwhile), which reconnectCause hides
   * until the state leaves reconnecting. A session that failed on the Kafka side is an attempt of that same outage.
   */
  get outageCauses(): RetryCause[] {
    const first = this.reconnectCause;
    if (!first) return [];
    return this.kafkaCause && first.system !== 'Kafka' ? [first, this.kafkaCause] : [first];
  }

  get inFlight(): InFlightState {
    const d = this.delivery;
    return { events: d.inFlightEvents, bytes: d.inFlightBytes, windowFullMs: d.windowFullMs, windowFullSinceMs: d.windowFullSinceMs };
  }

  private setState(state: RelayState): void {
    if (this.state === state) return;
    this.state = state;
    this.observer.stateChanged?.(state);
  }

  /** Runs until stop(), a halt, or a fatal error; every outcome but a stop is logged as one error line. */
  async run(): Promise<RelayOutcome> {
    let outcome: RelayOutcome;
    try {
      outcome = await this.loop();
    } catch (err) {
      outcome = this.fail(asRelayError(err));
    }
    // Woken by a stop outside a session (a standby, a reconnect's backoff) the loop returns at once, while the stop
    // may still drain what an earlier session handed over: the command closes the checkpoint writer only after it,
    // or its last write (before the drain's end) made a takeover re-send what the drain delivered. The stop's
    // own failure is the signal handler's to report.
    if (outcome.state === 'stopped') {
      await this.stopping?.catch(() => undefined);
      // The loop returned before delivery stopped in that drain (the stop found no session, or it ended first):
      // the exit is the failure's or the halt's, as it is when the loop sees it. A halt left there (a record Kafka
      // refused) was not logged at all: exit 0, the event unnamed.
      const failure = this.failure;
      if (failure) outcome = await this.halt(failure);
    }
    if (this.withheld.size > 0) {
      this.logger.warn(
        this.unsettledWithheld(),
        'at-most-once events withheld when the last replication session ended were not sent: the next session on the slot streams them again unless PostgreSQL took their position (those ending at or before its startLsn are lost, and counted nowhere; delivery.guarantee=at-most-once)',
      );
    }
    if (outcome.state === 'failed') {
      // A failed relay exits: release the producer and timers so the process can end (without a flush when the
      // brokers stopped answering: it waited its whole bound).
      this.delivery.stop();
      await this.session?.close();
      await this.closeSink(!this.kafkaGivenUp);
    }
    return outcome;
  }

  private async loop(): Promise<RelayOutcome> {
    try {
      await this.connectSink();
    } catch (err) {
      return this.fail(asRelayError(err));
    }
    // A stop while Kafka could not be reached yet: nothing was read, nothing to drain.
    if (this.stopRequested) return { state: 'stopped' };
    let first = true;
    // The commit time of the checkpoint a start read: the last delivered event's before this process delivers any.
    let checkpointCommitTimeMs: number | undefined;
    while (!this.stopRequested && !this.deliveryError) {
      let error: RelayError | undefined;
      try {
        // A new session resumes after everything the last one handed over was delivered or dropped.
        await this.delivery.whenIdle();
        if (this.stopRequested || this.deliveryError) break;
        const session = new Session(this.config, this.delivery, this.sourceLogger, this.sessionLines, this.observer, (lsn, commitTimeMs) => this.onConfirmed(lsn, commitTimeMs), this.deps.reportPosition, this.seenPublication);
        // The replication connection and its checks do not depend on the start position: they run while the
        // position is read (a checkpoint from Kafka, the slot's bounds), which shortens every start by the
        // shorter of the two. A position that cannot be decided wins over a connection failure, as when they ran
        // in turn; a connection opened for nothing is closed.
        const opening = session.open();
        const decide = () => (first ? this.firstPosition() : this.deps.resumePosition?.());
        // A sink that claims the slot (exactly-once fences the previous holder's producer) does so only once the
        // checks found the slot free, so a standby fences nobody; the position is read after the claim, when the
        // previous holder can commit no more checkpoints. A first position from --start-lsn waits for the checks
        // too: past the checkpoint, deciding it writes the forward skip to the checkpoint, which a standby must not
        // do under the instance that holds the slot (its crash would then resume at the skip). A failed open is
        // reported as such below.
        const claim = this.deps.sink.claim?.bind(this.deps.sink);
        const positioning =
          claim || (first && this.config.startLsn !== undefined)
            ? opening.then(
                async () => {
                  await claim?.();
                  return decide();
                },
                () => undefined,
              )
            : decide();
        const starting = Promise.allSettled([positioning, opening]);
        // A stop does not wait for a start that waits on a server (a connect, exactly-once's claim, a checkpoint
        // read: up to a minute with a partition without a leader): waited for, it outlasted the watchdog, which
        // exited 1 after the stop's own "stopped" line. Its connection, which holds the slot's lock, is closed once
        // the start has settled, not before: a standby that took the slot meanwhile could meet what the start
        // still does (a claim that fences it, a checkpoint rewritten for the replay window). The process may exit
        // first; the server then ends the connection.
        if (!(await settlesUnlessAborted(starting, this.wake.signal))) {
          void starting.then(([, opened]) => (opened.status === 'fulfilled' ? session.close() : undefined));
          break;
        }
        const [position, opened] = await starting;
        if (position.status === 'fulfilled') checkpointCommitTimeMs = position.value?.commitTimeMs ?? checkpointCommitTimeMs;
        if (position.status === 'rejected' || this.stopRequested) {
          if (opened.status === 'fulfilled') await session.close();
          if (position.status !== 'rejected') break;
          const error = asRelayError(position.reason);
          // The first position is a decision (a replay position, a checkpoint): one that is wrong is not retried;
          // one that could not be read or recorded yet (CHECKPOINT_FAILED) is, with backoff, like a lost connection.
          if (first && !error.retriable) return this.fail(error);
          throw error;
        }
        if (opened.status === 'rejected') {
          const failed = asRelayError(opened.reason);
          const found = failed.details.slotConfirmedLsn;
          if (typeof found === 'string') this.slotFoundAt = parseLsn(found);
          throw failed.code === 'PG_SLOT_MISSING' && this.deps.explainMissingSlot ? await this.deps.explainMissingSlot(failed, this.seenPublication) : failed;
        }
        let startLsn: Lsn;
        try {
          startLsn = session.start({ lsn: this.lastConfirmed, timeline: this.confirmedTimeline, commitTimeMs: this.confirmedCommitTimeMs }, position.value, this.walReached, this.countedThrough);
        } catch (err) {
          // A first position this server does not have (a checkpoint of the old primary's) ends the relay, as when
          // the checkpoint is past its WAL end (start-position.ts); a later one halts.
          const refused = asRelayError(err);
          if (first && !refused.retriable) return this.fail(refused);
          throw refused;
        }
        this.confirmedTimeline = session.timeline;
        this.settleWithheld(startLsn);
        this.deps.streamingOn?.(session.timeline, session.slotConfirmed);
        // Only now: until a session streamed, the next attempt decides the first position again (read afresh, as
        // another instance may have moved the checkpoint meanwhile; a --start-lsn applied): resumePosition takes
        // only a checkpoint newer than the start's.
        first = false;
        this.session = session;
        if (position.value && position.value.lsn > this.lastConfirmed) this.confirmedCommitTimeMs = position.value.commitTimeMs;
        this.lastConfirmed = maxLsn(this.lastConfirmed, session.confirmed);
        const reconnect = this.pastFirstStart && (this.sessionOutage.down || this.state === 'standby');
        this.setState('streaming');
        this.logger.info({ slot: this.config.slot, publication: this.config.publication, startLsn: formatLsn(startLsn) }, 'streaming from PostgreSQL');
        // The outage ends when the server streams past where the session started (a transaction to its commit, a
        // keepalive beyond the start and beyond where earlier sessions got to), or has streamed without ending for
        // longer than the session's receive timeout (an idle server, whose keepalives repeat the start), not when
        // START_REPLICATION was sent nor at the server's first message: a command that fails before streaming, a
        // walsender that sends a keepalive and then fails at the same WAL every time, or one that hangs after it (the
        // receive timeout ends that session first), keeps the backoff and the retry.maxDuration bound. (`streaming`
        // and `progressed` never reject: a session that ends first leaves them pending.)
        this.lastWalsender = session.backendPid;
        void session.streaming
          .then(() => {
            this.pastFirstStart = true;
            return streamedOn(session, session.receiveTimeoutMs + this.config.retry.maxDelayMs);
          })
          .then((recovered) => {
            if (!recovered || this.stopRequested) return;
            if (reconnect) this.observer.reconnected?.();
            this.retryCause = undefined;
            this.sessionOutage.recovered();
            // Kafka answered this session's start too (the claim, the checkpoint read): delivery decides whether
            // that ends its Kafka outage (nothing left to send again after a restart). On the same terms as the
            // source's outage: an idle server's keepalives may never pass the start.
            this.delivery.sourceProgressed(startLsn);
          });
        error = await session.ended;
        this.walReached = maxLsn(this.walReached, session.reached);
        this.countedThrough = maxLsn(this.countedThrough, session.countedThrough);
      } catch (err) {
        error = asRelayError(err);
      }
      if (this.stopRequested || this.deliveryError) {
        // Ended by a failure of its own (a schema change, the table unpublished) while a stop drained: reported
        // after the stop, as a delivery's failure is (run()), not passed over as a stop that exits 0.
        if (this.stopRequested && error && !error.retriable) this.stopFailure ??= error;
        break;
      }
      if (!error) continue;
      // A lost slot's republish starts from the last delivered event, which only the relay knows (its pre-flight does not).
      if (!error.retriable) return this.halt(error.code === 'PG_SLOT_LOST' ? slotLostSince(error, this.confirmedCommitTimeMs ?? checkpointCommitTimeMs) : error);
      if (error.code === 'PG_SLOT_ACTIVE' && this.lastWalsender !== null && error.details.activePid === this.lastWalsender) error = ownWalsenderHolds(error, this.lastWalsender);
      if (error.code === 'PG_SLOT_ACTIVE') {
        // PostgreSQL answered: an outage before this is over. Kept, the time as a standby would count against
        // retry.maxDuration (the first failure after a takeover would give up at once) and as its downtime.
        this.sessionOutage.endedAs();
        this.retryCause = undefined;
        if (this.withheld.size > 0) {
          // Not this relay's to count when it takes the slot back: the other instance resumed at the slot's position.
          this.logger.info(
            this.unsettledWithheld(),
            'at-most-once events withheld when the last replication session ended are left to the instance that took the slot: it streams them again unless PostgreSQL took their position (those ending at or before the startLsn it streams from are lost, and counted nowhere)',
          );
          this.withheld.clear();
        }
        if (this.state !== 'standby') this.logger.info({ slot: this.config.slot, activePid: error.details.activePid }, 'slot in use by another instance: waiting as standby');
        this.setState('standby');
        this.pastFirstStart = true;
        await this.standbyWait.untilReleased(this.wake.signal);
        continue;
      }
      const kafkaSide = isKafkaSide(error);
      // A start that fails on Kafka while delivery's Kafka outage is open (exactly-once restarts the source in it,
      // and the next session's claim meets the same brokers) is an attempt of that outage, with its backoff and
      // bound: as a session outage of its own it logged a second start line, and a second end line once streaming.
      // Delivery ends it: at its next commit, or a restart that finds nothing left to send (sourceProgressed).
      const outage = kafkaSide && this.kafkaOutage.down ? this.kafkaOutage : this.sessionOutage;
      // A failure without a fix of its own (a refused or dropped connection) gets the side's: without it the warn
      // line and /readyz's `reconnecting` said `fix: null` for as long as PostgreSQL was down.
      const fix = error.hint ?? (kafkaSide ? KAFKA_SIDE_FIX : POSTGRES_SIDE_FIX);
      if (outage.downMs() >= this.config.retry.maxDurationMs) {
        return this.fail(new RelayError('RETRIES_EXHAUSTED', `${kafkaSide ? 'Kafka' : 'PostgreSQL'} unavailable for ${Math.round(outage.downMs() / 1000)} s: ${error.message}`, { cause: error, hint: fix }));
      }
      const delay = backoffDelay(this.config.retry, outage.attempts);
      const lines = kafkaSide ? { started: 'Kafka unavailable while starting a replication session: retrying', ongoing: 'Kafka still unavailable' } : {};
      // Counted in errors_total once per outage, as the warn line is logged once. Its fix is the one /readyz shows
      // (retryCause): whoever reads the log needs it as much (a standby's: the primary's URL).
      if (outage.failed({ code: error.code, err: error.message, fix, retryInMs: delay }, lines)) this.observer.error?.(error.code);
      this.retryCause = causeOf(kafkaSide ? 'Kafka' : 'PostgreSQL', error, outage, fix);
      this.setState('reconnecting');
      await sleep(delay, this.wake.signal);
    }
    if (this.deliveryError) return this.halt(this.deliveryError);
    return { state: 'stopped' };
  }

  private async firstPosition(): Promise<TimelinePosition | undefined> {
    if (this.deps.startPosition) return this.deps.startPosition();
    return this.config.startLsn === undefined ? undefined : { lsn: this.config.startLsn, timeline: undefined };
  }

  private async connectSink(): Promise<void> {
    const options = { brokers: this.config.kafka.brokers, retry: this.config.retry, logger: this.logger, signal: this.wake.signal, retrying: (code: ErrorCode) => this.observer.retrying?.(code) };
    // False: a stop came first (stop() closes the sink, and the start ends here).
    if (!(await connectWithRetry(this.deps.sink, options))) return;
    this.sinkConnected = true;
    this.observer.producerConnected?.(true);
  }

  /**
   * at-most-once: what became of the batches withheld when the last session ended (Session.handOff). A transaction
   * past `startLsn` streams again and is sent then. One at or before it is lost: PostgreSQL took its position after
   * all (the status reached it; the session ended before the check saw it), and sends it no more.
   */
  private settleWithheld(startLsn: Lsn): void {
    if (this.withheld.size === 0) return;
    let lost = 0;
    let again = 0;
    for (const [txn, count] of this.withheld) {
      if (txn.endLsn !== undefined && txn.endLsn <= startLsn) lost += count;
      else again += count;
    }
    this.withheld.clear();
    if (again > 0) this.logger.info({ events: again, startLsn: formatLsn(startLsn) }, 'at-most-once events withheld when the last replication session ended stream again: PostgreSQL had not taken their position');
    if (lost > 0) {
      this.observer.dropped?.(lost);
      this.logger.warn(
        { dropped: lost, startLsn: formatLsn(startLsn) },
        'at-most-once events withheld when the last replication session ended are lost: PostgreSQL took their position before the session ended, and does not send them again (delivery.guarantee=at-most-once)',
      );
    }
  }

  /**
   * Withheld events no session of this relay settles (the slot taken by another instance, or the relay ending first):
   * which of them PostgreSQL took, so lost, only the next session on the slot knows, by its startLsn. Counted as
   * dropped, those it streams again would count as lost and, by the instance that sends them, as delivered too.
   * The line gives what that comparison and a republish need: the ends of the committed ones (`firstEndLsn`,
   * `lastEndLsn`; an uncommitted one always streams again) and the oldest commit time.
   */
  private unsettledWithheld(): Record<string, unknown> {
    let events = 0;
    let first: Lsn | undefined;
    let last: Lsn | undefined;
    let oldestMs = Infinity;
    for (const [txn, count] of this.withheld) {
      events += count;
      oldestMs = Math.min(oldestMs, txn.commitTimeMs);
      if (txn.endLsn === undefined) continue;
      if (first === undefined || txn.endLsn < first) first = txn.endLsn;
      last = maxLsn(last ?? 0n, txn.endLsn);
    }
    return {
      events,
      ...(first !== undefined && { firstEndLsn: formatLsn(first), lastEndLsn: formatLsn(last!) }),
      ...(Number.isFinite(oldestMs) && { oldestCommitTime: new Date(oldestMs).toISOString() }),
    };
  }

  /**
   * A failed or dropped delivery attempt: the start of a Kafka outage (not ready from then on), or an attempt in it.
   * `retried`: false for an at-most-once batch dropped, which is not retried (nor counted in retries_total). The
   * line carries the error's fix: a grant a refusal names (a topic's WRITE, IdempotentWrite) was logged nowhere for
   * retry.maxDuration, only `code` and `err`. /readyz gives the latest attempt's cause (reconnectCause) until the
   * outage ends: the warn line alone left `producerConnected: false` without a reason there.
   */
  private kafkaDown(error: RelayError, fields: Record<string, unknown>, started?: string, retried = true): void {
    if (retried) this.observer.retrying?.(error.code);
    const opened = this.kafkaOutage.failed({ code: error.code, err: error.message, fix: error.hint, ...fields }, { started });
    this.kafkaCause = causeOf('Kafka', error, this.kafkaOutage);
    if (opened) this.observer.producerConnected?.(false);
  }

  private onConfirmed(lsn: Lsn, commitTimeMs: number | undefined): void {
    this.lastConfirmed = maxLsn(this.lastConfirmed, lsn);
    this.confirmedCommitTimeMs = commitTimeMs ?? this.confirmedCommitTimeMs;
    const now = Date.now();
    if (now - this.lastProgressLog >= PROGRESS_LOG_MS) {
      this.lastProgressLog = now;
      this.logger.info({ confirmedLsn: formatLsn(this.lastConfirmed) }, 'confirmed position');
    }
  }

  private async poison(event: OutboxEvent, error: RelayError, stop: AbortSignal, kafka: KafkaWatch): Promise<PoisonDecision> {
    this.countError(error);
    return this.deps.onPoison ? this.deps.onPoison(event, error, stop, kafka) : 'halt';
  }

  /** The delivery dropped its uncommitted events: a new session streams them again from the checkpoint. */
  private restartSource(error: RelayError, attempt: boolean): void {
    this.sourceRestarts++;
    this.countError(error);
    // A fence and a transaction too long for the Kafka transaction timeout are no outage: a warn line of their own.
    // Any other restart is how exactly-once retries (a Kafka outage, after the backoff that logged its start; a
    // refused record, after its retry line): one of its attempts, at debug (a warn line each was a line per attempt).
    // A transaction the broker timed out during an outage is one of them (until 2026-12-06 a warn line each).
    this.logger[attempt ? 'debug' : 'warn'](
      { code: error.code, err: error.message, confirmedLsn: formatLsn(this.lastConfirmed), sourceRestarts: this.sourceRestarts },
      'delivery aborted its uncommitted events: streaming again from the checkpoint',
    );
    void this.session?.close();
  }

  /**
   * Delivery stopped because Kafka was unavailable for retry.maxDuration (the engine's RETRIES_EXHAUSTED, or a dead
   * letter's KAFKA_UNAVAILABLE halt): nothing more is waited for from it. A halt over a record Kafka refused leaves
   * it answering: a stop then still writes the last checkpoint and flushes.
   */
  private get kafkaGivenUp(): boolean {
    const code = this.deliveryError?.code;
    return code === 'RETRIES_EXHAUSTED' || code === 'KAFKA_UNAVAILABLE';
  }

  /**
   * Delivery gave up for good (Kafka unavailable past retry.maxDuration), or a session failed for good (its table
   * unpublished): the relay fails, also when that happens during a stop's drain. Decided by the error alone, not by
   * which of run() and the stop gets there first.
   */
  private get deliveryFailure(): RelayError | undefined {
    const error = this.failure;
    return error && FATAL.has(error.code) ? error : undefined;
  }

  /** What ended delivery, or the stop's drain: a halt or a failure, whichever the loop or the stop met first. */
  private get failure(): RelayError | undefined {
    return this.deliveryError ?? this.stopFailure;
  }

  private onDeliveryStopped(error: RelayError): void {
    this.deliveryError = error;
    this.wake.abort();
    void this.session?.close();
  }

  /**
   * errors_total: once per error, whichever path met it first. A poison event is counted when its policy is asked,
   * and its halt (the same error, from the delivery) is not counted again; every other halt or failure is counted
   * at its halt (a record Kafka refused inside an exactly-once transaction, retries exhausted, a start that failed).
   */
  private countError(error: RelayError): void {
    if (this.counted.has(error)) return;
    this.counted.add(error);
    this.observer.error?.(error.code);
  }

  private async halt(error: RelayError): Promise<RelayOutcome> {
    this.countError(error);
    await this.session?.close();
    const fatal = FATAL.has(error.code);
    this.observer.halted?.(error);
    this.setState(fatal ? 'failed' : 'halted');
    const event = haltedEvent(error);
    this.logger.error(
      { code: error.code, err: error.message, fix: error.hint, ...loggedDetails(error.details), ...this.positions() },
      fatal ? 'giving up' : `halted: ${event ? `${event} was not delivered; ` : ''}nothing after the confirmed position was confirmed; fix the cause and restart`,
    );
    return { state: fatal ? 'failed' : 'halted', error };
  }

  /**
   * For the last log line: `confirmedLsn` is what PostgreSQL holds (the final status a halt or stop sent, or the
   * slot's position when the last session sent none: reportedLsn, as /readyz says), and `deliveredLsn` the newer
   * position Kafka acknowledged since, when there is one (a replay window keeps the slot behind on purpose;
   * acknowledgements that arrived after the final status are sent again after a restart). A session whose
   * connection ended before its first status gave the delivered position as confirmedLsn: never sent to
   * PostgreSQL, and with a replay window past what the slot keeps.
   */
  private positions(): { confirmedLsn?: string; deliveredLsn?: string } {
    const held = this.reportedLsn;
    // Neither known (no session streamed, no slot found, so nothing confirmed either): no position, not a made-up 0/0.
    if (held === undefined) return {};
    return held === this.lastConfirmed || this.lastConfirmed === 0n ? { confirmedLsn: formatLsn(held) } : { confirmedLsn: formatLsn(held), deliveredLsn: formatLsn(this.lastConfirmed) };
  }

  private fail(error: RelayError): RelayOutcome {
    this.countError(error);
    this.observer.halted?.(error);
    this.setState('failed');
    this.logger.error({ code: error.code, err: error.message, fix: error.hint }, 'giving up');
    return { state: 'failed', error };
  }

  /**
   * Graceful stop, as a mode: the session reads on only to the commit of the source transaction it is inside, then
   * takes no more events; what was handed over is delivered (the grace period bounds both), the position is
   * confirmed, then everything closes. `openTransaction: 'drop'` ends the intake at once: for a caller that knows
   * none of the open transaction was handed over (a bounded replay refused it, and the paused socket would never
   * bring its commit), reading it to its commit would only wait out the grace period.
   */
  stop(options: { openTransaction: 'read' | 'drop' } = { openTransaction: 'read' }): Promise<void> {
    // A relay that failed is ending already (run() closes what it opened); a stop would report a drain and a
    // 'stopped' state over its failure.
    if (this.state === 'failed') return Promise.resolve();
    this.stopping ??= this.stopOnce(options);
    return this.stopping;
  }

  private async stopOnce(options: { openTransaction: 'read' | 'drop' }): Promise<void> {
    this.stopRequested = true;
    this.wake.abort();
    // A halted relay confirms nothing more: its stop is no drain (its readiness says halted until it has stopped),
    // and a line announcing one, with the halted events counted as in flight, would suggest they are delivered.
    const halted = this.state === 'halted';
    // Only a streaming relay holds the slot: a standby or a reconnecting one keeps its state until it has stopped
    // (draining counts as active, outbox_relay_active 1).
    if (this.state === 'streaming') this.setState('draining');
    const session = this.session;
    // One grace period bounds both the read to the open transaction's commit and the drain.
    const deadline = Date.now() + this.config.shutdownGraceMs;
    // No session follows: the delivery's wait for a source restart (exactly-once, everything uncommitted dropped)
    // has nothing to drain. Waited out, it held the stop up to retry.maxDelay, or to the end of the grace with a
    // false "unacknowledged" line. Cut from the stop's start: a failure during the read to the open transaction's
    // commit drops that transaction too, and the read ends once the delivery takes no more of it (`refusing`).
    const refusing = this.delivery.drain();
    let drainTo: Lsn | undefined;
    if (session && options.openTransaction === 'drop') drainTo = session.endIntake();
    else if (session) {
      const atCommit = session.endIntakeAtCommit(refusing);
      if (await settlesWithin(atCommit, this.config.shutdownGraceMs)) drainTo = await atCommit;
      else {
        drainTo = session.endIntake();
        this.logger.warn(
          { inFlight: this.delivery.inFlightEvents, graceMs: this.config.shutdownGraceMs },
          'grace period over before the open source transaction was read to its commit: its events already in Kafka will be sent again after restart',
        );
      }
    }
    if (halted) this.logger.info(this.positions(), 'stopping a halted relay: nothing after the confirmed position is confirmed; the next start reads on from it');
    else {
      this.logger.info(
        { inFlight: this.delivery.inFlightEvents, ...(drainTo !== undefined && { drainToLsn: formatLsn(drainTo) }), graceMs: this.config.shutdownGraceMs },
        'stopping: draining in-flight events',
      );
    }
    const idle = await settlesWithin(this.delivery.whenIdle(), Math.max(0, deadline - Date.now()));
    if (!idle) this.graceOver();
    // The delivery is idle also once it gave up on Kafka during the drain: what it held was not delivered (the loop
    // reports why). Counted as drained, the last checkpoint write and the producer's flush each waited on brokers
    // that no longer answer, until the watchdog's SHUTDOWN_TIMEOUT took the place of the real failure.
    const drained = idle && !this.kafkaGivenUp;
    if (drained && !halted) this.drainedShort(drainTo);
    const closeBy = deadline + SHUTDOWN_MARGIN_MS - EXIT_RESERVE_MS;
    await this.deps.drainEnded?.(drained, closeBy);
    this.delivery.stop();
    // A walsender that hangs never ends the command: waited for its 5 s after a drain that took the grace (or a
    // grace of 0), it held a stop that lost nothing until the watchdog's SHUTDOWN_TIMEOUT.
    await session?.close(closeBy - SESSION_CLOSE_RESERVE_MS);
    // The grace is spent: the producer does not flush what Kafka did not take in it (5 s more, past the watchdog).
    // Drained, its flush ends by closeBy too.
    await this.closeSink(drained, closeBy);
    // A stop that ended in a failure is no stop: run() reports the failure (its "giving up" line, state failed),
    // whether its line comes before this point or after it.
    if (this.deliveryFailure) return;
    this.setState('stopped');
    this.logger.info(this.positions(), 'stopped');
  }

  /**
   * A drain counted as drained that ended short of the position its line named (drainToLsn): exactly-once aborted
   * the open Kafka transaction (a failure during the drain, or the stop cut a refused record's search short), or
   * at-most-once dropped or withheld what the session, ended during the drain, could no longer confirm. Nothing of it
   * is lost: the next start streams it again. Both positions are ends of transactions or keepalives the tracker
   * confirmed, and drainTo is never past what a complete drain confirms (the newest commit read, or the confirmed
   * position once the delivery took no more): a normal stop never says this. Not after a halt or a failure (its line
   * names the confirmed position).
   */
  private drainedShort(drainTo: Lsn | undefined): void {
    if (drainTo === undefined || this.failure || this.lastConfirmed >= drainTo) return;
    this.logger.warn(
      { drainToLsn: formatLsn(drainTo), deliveredLsn: formatLsn(this.lastConfirmed) },
      'stopping: the drain ended short of drainToLsn (delivery dropped what it had not delivered): the source transactions after deliveredLsn are streamed again at the next start',
    );
  }

  /**
   * The drain's grace ran out with events unacknowledged. At-most-once sends those whose position PostgreSQL holds no
   * more (they count as relayed already, and no session streams them again): the line said they would be re-sent.
   */
  private graceOver(): void {
    const inFlight = this.delivery.inFlightEvents;
    const positionHeld = this.delivery.positionHeldEvents ?? 0;
    if (positionHeld === 0) {
      this.logger.warn({ inFlight }, 'grace period over with events unacknowledged: they will be re-sent after restart');
      return;
    }
    this.logger.warn(
      { inFlight, positionHeld },
      'grace period over with events unacknowledged: at-most-once does not send again those whose position PostgreSQL holds (positionHeld: lost unless Kafka took them before the exit, and not counted as dropped); the others are re-sent after restart unless PostgreSQL took their position',
    );
  }

  /**
   * A sink whose connect never succeeded was handed nothing: its close does not flush. With a connect still under
   * way (a stop while Kafka cannot be reached yet) kafkajs' disconnect waits for that connect's requests, which a
   * broker that accepts the connection and never answers holds: the flush's whole bound (5 s) before the exit.
   */
  private closeSink(flush: boolean, closeBy?: number): Promise<void> {
    return this.deps.sink.close({ flush: flush && this.sinkConnected, closeBy });
  }
}

/** A failure of the Kafka side of a session start: the claim of the slot, the checkpoint read. */
function isKafkaSide(error: RelayError): boolean {
  return error.code.startsWith('KAFKA_') || error.code === 'CHECKPOINT_FAILED';
}

/**
 * True once `session` streamed past its start, or for `periodMs` without ending (an idle server sends keepalives
 * of the position it started at); false when it ended first. The timer does not keep the process alive.
 */
function streamedOn(session: Session, periodMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    // A session already ending (its `ended` waits for the connection to close) did not stream on.
    const timer = setTimeout(() => resolve(session.reportable), periodMs);
    timer.unref();
    const settle = (recovered: boolean) => {
      clearTimeout(timer);
      resolve(recovered);
    };
    void session.progressed.then(() => settle(true));
    void session.ended.then(() => settle(false));
  });
}

/**
 * The slot is held by this relay's own last walsender, not by another instance: a connection the relay gave up
 * (its receive timeout, a network path that broke) whose server process has not ended, stuck or not yet aware.
 * Waiting for it as a standby had no bound; it is the same outage, retried with backoff within retry.maxDuration.
 */
function ownWalsenderHolds(error: RelayError, pid: number): RelayError {
  return new RelayError('PG_STREAM_FAILED', `replication slot still held by this relay's previous connection (walsender pid ${pid}), which the relay gave up and whose server process has not ended`, {
    cause: error,
    retriable: true,
    hint: `PostgreSQL ends that walsender once it notices the connection is gone (wal_sender_timeout); if it hangs, check the server (pg_stat_replication, pg_stat_activity for pid ${pid}, the host's disk I/O) or end it with SELECT pg_terminate_backend(${pid})`,
    details: { activePid: pid },
  });
}

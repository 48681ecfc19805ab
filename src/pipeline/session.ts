import type { Logger } from 'pino';
import { AckTracker, type SourceTransaction } from '../checkpoint/ack-tracker.js';
import { failoverRunbook } from '../checkpoint/start-position.js';
import { guaranteeConfig } from '../config/guarantee-config.js';
import { settingRef } from '../config/settings.js';
import { formatDuration } from '../config/units.js';
import type { RelayConfig } from '../config/types.js';
import { decodePgOutput, pgTimeToMs, protocolError, type LogicalMessage, type RelationMessage } from '../decode/pgoutput.js';
import { RelayError, errorMessage, isRelayError } from '../errors.js';
import { formatLsn, maxLsn, type Lsn } from '../lsn.js';
import type { RepeatedLines } from '../outage-log.js';
import type { OutboxEvent } from '../route/event.js';
import { MessageMapper } from '../route/message-mapper.js';
import { RowMapper } from '../route/row-mapper.js';
import { checkpointTopicRefused } from '../route/topic-template.js';
import type { Delivery } from '../sink/delivery.js';
import { preflight, type SlotState } from '../source/preflight.js';
import { ServerFlushCheck } from '../source/flush-check.js';
import { classifyPgError, skippedPublicationError } from '../source/pg-errors.js';
import { REPLICATION_SESSION, ReplicationStream, sentAtMs, walStartOf } from '../source/replication-stream.js';
import { ServerShutdownDetector } from '../source/shutdown-detector.js';
import { republishScope, type RepublishScope } from '../source/republish-command.js';
import { slotRecreatedError } from '../source/slot-lost.js';
import { SeenPublication } from '../source/seen-publication.js';
import { knownPublication, type KnownPublication } from '../source/publication-as-it-was.js';
import { offHistory, type TimelinePosition } from '../source/timeline.js';
import { sameTable } from '../source/not-published.js';
import { settlesWithin } from '../retry.js';
import type { RelayObserver } from './observer.js';

/** statusInterval's own lower bound (settings.ts). */
const MIN_STATUS_PERIOD_MS = 50;

/** Event-less transactions waiting behind one unacknowledged event before the wait is worth a warning. */
const HELD_BACK_WARN_TRANSACTIONS = 1000;

/**
 * `error`, raised for the message at `walPosition`, naming that position and the open transaction: the decoder and
 * the mappers know neither, and a report of an undecodable message or a halt on a schema change needs both.
 */
function atWalPosition(error: RelayError, walPosition: Lsn, xid: number | undefined): RelayError {
  const where = `WAL position ${formatLsn(walPosition)}, ${xid === undefined ? 'outside a transaction' : `xid ${xid}`}`;
  return error.within(where, { walPosition: formatLsn(walPosition), xid });
}

/** A row mapper or the logical-message mapper: what `enqueue` needs of either. */
interface EventMapper<T> {
  map(input: T, txn: SourceTransaction): OutboxEvent;
  /** The event that stands for an input `map` refused, so that the poison policy meets it in its place. */
  unmappable(input: T, txn: SourceTransaction, error: RelayError): OutboxEvent;
}

/**
 * One replication connection: pre-flight checks (open), START_REPLICATION (start), and the decode → route → deliver loop,
 * with the AckTracker deciding every position reported back. A new session (after a reconnect) starts from
 * the newer of the slot's confirmed position and the last position this process confirmed.
 */
export class Session {
  readonly ended: Promise<RelayError | undefined>;
  /**
   * Resolves when the server sent the first message of the stream (data or a keepalive): START_REPLICATION was
   * accepted and the walsender runs. A command that fails before that is still the same outage for the relay.
   */
  readonly streaming: Promise<void>;
  private resolveStreaming!: () => void;
  /**
   * Resolves when the server got past where this session started: a transaction decoded to its commit, or a
   * keepalive from beyond both the start and the furthest WAL position an earlier session's keepalives reached
   * (start()'s `reachedBefore`). A server that fails at the same position every time (an error nobody classified
   * as final) streams a keepalive first, then fails: that is no recovery for the relay's retry bound. Nor is a
   * walsender that decodes a large transaction again and fails inside it every time (a reorder-buffer spill onto a
   * full disk): its keepalives pass the start while it decodes, but not where the failed sessions got to.
   */
  readonly progressed: Promise<void>;
  private resolveProgressed!: () => void;
  /** Where a keepalive must get past for `progressed`: the start, or beyond it where earlier sessions got to (unset before start()). */
  private progressFrom: Lsn | undefined;
  private furthest: Lsn = 0n;
  /** End LSN of the newest transaction the metrics counted, in this session or an earlier one (see countRead). */
  private countedTo: Lsn = 0n;
  /** When PostgreSQL sent the open transaction's Begin: its source delay, counted at its commit (countRead). */
  private openSentAtMs = 0;
  /** The rows the filters left out of the open transaction, by table (undefined while none), counted at its commit. */
  private openFiltered: Map<string, number> | undefined;
  private readonly stream: ReplicationStream;
  private tracker!: AckTracker;
  private readonly mappers = new Map<number, RowMapper | null>();
  private receiveTimeout = 0;
  private readonly messageMapper: MessageMapper | undefined;
  private txn: SourceTransaction | undefined;
  private statusTimer: NodeJS.Timeout | undefined;
  private resolveEnded!: (error: RelayError | undefined) => void;
  private closing = false;
  private warnedHeldBack = false;
  /** Prefixes of non-transactional messages warned about on this connection (onMessage). */
  private readonly warnedNotRelayed = new Set<string>();
  /** A row or message this session cannot handle (its error): reading stopped, the final status is on its way. */
  private failing: RelayError | undefined;
  private lastReported: Lsn | undefined;
  /** at-most-once: reads whether PostgreSQL holds a reported position, from the first hand-off on. */
  private flushCheck: ServerFlushCheck | undefined;
  /** at-most-once: hand-offs whose position PostgreSQL has not yet been shown to hold (handOff). */
  private handOffsWaiting = 0;
  /** at-most-once: a hand-off was withheld; no position past what PostgreSQL held goes to the relay any more. */
  private withholding = false;
  /** at-most-once: the newest confirmed position not yet passed on to the relay, kept while hand-offs wait (passOn). */
  private unheld: { lsn: Lsn; commitTimeMs: number | undefined } | undefined;
  /** The newest confirmed position passed on to the relay (onConfirmed, the observer). */
  private passedOn: Lsn = 0n;
  /**
   * No more events of this session go to the delivery (endIntake): it never reads again. A stop, a local failure
   * (failing) and the end (closing) of a started session all set it.
   */
  private intakeEnded = false;
  /**
   * The delivery took no more of this session's events when its intake ended (exactly-once dropped everything
   * uncommitted, or delivery stopped): nothing past the confirmed position is confirmed any more.
   */
  private refusedAtEnd = false;
  /** A graceful stop waiting for the open transaction's commit (endIntakeAtCommit). */
  private atCommit: ((drainTo: Lsn | undefined) => void) | undefined;
  /** The slot as the pre-flight checks found it (open). */
  private slot: SlotState | undefined;
  private readonly shutdown = new ServerShutdownDetector();
  /** No event may go there: a record under the slot's key would be read as where to resume (see checkpointTopicRefused). */
  private readonly checkpointTopic: string;
  /** The relay's publication and tables, as the republish its fixes print names them. */
  private readonly republish: RepublishScope;

  constructor(
    private readonly config: RelayConfig,
    private readonly delivery: Delivery,
    private readonly logger: Logger,
    /** The relay's: what every session start decides alike is said at info once per relay, not once per session. */
    private readonly repeated: RepeatedLines,
    private readonly observer: RelayObserver,
    private readonly onConfirmed: (lsn: Lsn, commitTimeMs: number | undefined) => void,
    /** The flush position to report for the confirmed one (a replay window reports an older one, never a newer). */
    private readonly report: (confirmed: Lsn) => Lsn = (confirmed) => confirmed,
    /** The relay's: the column lists and row filters the pre-flight finds are kept for the fix should a table leave the publication. */
    private readonly seenPublication = new SeenPublication(),
  ) {
    this.stream = new ReplicationStream(config.postgres);
    this.messageMapper = config.messages ? new MessageMapper(config.messages) : undefined;
    this.checkpointTopic = guaranteeConfig(config).checkpointTopic;
    this.republish = republishScope(config);
    this.ended = new Promise((resolve) => (this.resolveEnded = resolve));
    this.streaming = new Promise((resolve) => (this.resolveStreaming = resolve));
    this.progressed = new Promise((resolve) => (this.resolveProgressed = resolve));
  }

  /** When open() began: what its pre-flight found held then. */
  openedAtMs: number | undefined;

  get confirmed(): Lsn {
    return this.tracker.confirmed;
  }

  /**
   * Connects and runs the pre-flight checks: everything but START_REPLICATION, which needs the start position.
   * Throws (classified) if any of that fails, with the connection closed; the relay runs this while it reads the
   * start position from the checkpoint.
   */
  async open(): Promise<void> {
    this.openedAtMs = Date.now();
    try {
      await this.stream.connect();
      this.slot = await preflight(this.stream, this.config.slot, this.republish, this.config.tables, this.seenPublication);
    } catch (err) {
      await this.stream.close();
      throw classifyPgError(err, { slot: this.config.slot, republish: this.republish, user: this.user, what: REPLICATION_SESSION });
    }
    // Found again at each session start (a reconnect): warned once per relay, its repeats at debug.
    for (const u of this.slot.unsentColumns) {
      this.repeated.warn(
        { table: u.table, column: u.column, setting: u.setting, hint: u.fix },
        `${u.why}: PostgreSQL will not send column "${u.column}" (${u.setting}), and the relay halts with SCHEMA_COLUMN_MISSING at the first event of ${u.table} written so (those written before are delivered first)`,
      );
    }
  }

  /** The walsender of this session's connection: it holds the slot while it runs, also after the relay let go of it. */
  get backendPid(): number | null {
    return this.stream.backendPid;
  }

  /** The receive timeout this session's stream runs with, set at start (0: none): see effectiveReceiveTimeoutMs. */
  get receiveTimeoutMs(): number {
    return this.receiveTimeout;
  }

  /** The slot's confirmed position when this session opened it (free then): where its last holder left it. */
  get slotConfirmed(): Lsn {
    return this.slot!.confirmedFlush;
  }

  /** The server's timeline, once opened: what the positions this session confirms are in. */
  get timeline(): number {
    return this.slot!.history.timeline;
  }

  /**
   * Starts streaming on the opened connection; returns the start position. `lastConfirmed`: this process's own,
   * with the timeline of the session that confirmed it; `requested`: a checkpoint's (with the timeline it recorded)
   * or a --start-lsn; `reachedBefore`: the furthest WAL position earlier sessions' keepalives reached (see progressed);
   * `countedBefore`: where earlier sessions' metrics counted transactions up to (their `countedThrough`).
   */
  start(lastConfirmed: TimelinePosition, requested: TimelinePosition | undefined, reachedBefore: Lsn = 0n, countedBefore: Lsn = 0n): Lsn {
    const confirmed = maxLsn(this.slot!.confirmedFlush, lastConfirmed.lsn);
    const startLsn = requested !== undefined ? maxLsn(requested.lsn, confirmed) : confirmed;
    // A position this server never wrote came from another server's WAL: a failover (to a standby that carries the
    // slot) while this process kept retrying. Started there, it would confirm it and pass over every transaction
    // this server commits below it. The first session's checkpoint is checked so already (start-position.ts).
    if (startLsn > this.slot!.walEnd) {
      // The fix's republish time: that of the position the start came from.
      const from = requested !== undefined && requested.lsn >= confirmed ? requested : lastConfirmed;
      void this.stream.close();
      throw new RelayError(
        'CHECKPOINT_AHEAD_OF_WAL',
        `the relay was to resume at ${formatLsn(startLsn)}, but this PostgreSQL has written WAL only up to ${formatLsn(this.slot!.walEnd)}: that position came from another server's WAL (a failover to a standby that had not received it); nothing was confirmed on this one`,
        {
          hint: failoverRunbook(from.commitTimeMs, this.republish),
          details: { resumeLsn: formatLsn(startLsn), currentWalLsn: formatLsn(this.slot!.walEnd) },
        },
      );
    }
    // Below the WAL end, a position of the old primary's past the point where this server left its timeline is
    // another transaction's LSN here: only the timeline tells. The slot's own position is this server's.
    for (const position of [lastConfirmed, requested]) {
      const why = position && position.lsn > this.slot!.confirmedFlush ? offHistory(position, this.slot!.history) : undefined;
      if (!why) continue;
      void this.stream.close();
      throw new RelayError(
        'CHECKPOINT_AHEAD_OF_WAL',
        `the relay was to resume at ${formatLsn(position!.lsn)}, confirmed on timeline ${position!.timeline}, but ${why} (a failover to a standby that had not received it, or a point-in-time restore); nothing was confirmed on this one`,
        {
          hint: failoverRunbook(position!.commitTimeMs, this.republish),
          details: { resumeLsn: formatLsn(position!.lsn), timeline: position!.timeline, currentTimeline: this.slot!.history.timeline, currentWalLsn: formatLsn(this.slot!.walEnd) },
        },
      );
    }
    // A slot this server made after it left the position's timeline (setup run on a promoted standby that had no
    // slot: before PostgreSQL 17, or a plain slot) streams only what is committed after it was made: started at it,
    // the relay passed over everything this server holds between the position and the slot, silently. The relay
    // cannot have moved such a slot itself: its positions there would be on this timeline. A synced slot came with
    // the old primary's position (PostgreSQL 17 failover slots); a --start-lsn has no timeline (the operator's choice).
    for (const position of [lastConfirmed, requested]) {
      if (position?.timeline === undefined || position.timeline >= this.slot!.history.timeline || this.slot!.synced || position.lsn >= this.slot!.confirmedFlush) continue;
      void this.stream.close();
      throw slotRecreatedError(this.config.slot, this.republish, position, this.slot!.confirmedFlush, this.slot!.history.timeline);
    }
    this.progressFrom = maxLsn(startLsn, reachedBefore);
    this.countedTo = countedBefore;
    // Everything before the start is delivered or deliberately skipped (a checkpoint, --start-lsn): confirmed from here.
    this.passedOn = startLsn;
    this.tracker = new AckTracker(startLsn, (lsn) => this.passOn(lsn, this.tracker.confirmedCommitTimeMs));
    this.delivery.openSession(this.tracker);
    this.stream.start(
      { slot: this.config.slot, startLsn, publications: [this.config.publication], messages: this.messageMapper !== undefined, receiveTimeoutMs: (this.receiveTimeout = this.effectiveReceiveTimeoutMs()) },
      {
        onData: (chunk, at) => {
          this.streamed();
          this.onData(chunk, at);
        },
        onKeepalive: (walEnd, reply, sentAtMs) => {
          this.streamed();
          this.onKeepalive(walEnd, reply, sentAtMs);
        },
        onQuiet: () => void this.sendStatus(true),
        onNotice: (notice) => {
          const skipped = skippedPublicationError(notice, this.config.slot, this.republish, this.knownPublication());
          if (!skipped) this.logger.warn({ code: notice.code, severity: notice.severity, detail: notice.detail, hint: notice.hint, where: notice.where }, `PostgreSQL on ${REPLICATION_SESSION}: ${notice.message}`);
          return skipped;
        },
        onEnd: (error) => this.finish(classifyPgError(error, { slot: this.config.slot, republish: this.republish, user: this.user, what: REPLICATION_SESSION, known: this.knownPublication() })),
      },
    );
    this.statusTimer = setInterval(() => void this.sendStatus(this.tracker.idle), this.statusPeriodMs());
    this.statusTimer.unref();
    return startLsn;
  }

  /**
   * statusInterval, or half this server's wal_sender_timeout when that is shorter. With the in-flight window full
   * the socket is paused and the walsender's keepalives go unread: these updates are all it hears, and at a longer
   * interval it ended the connection (a reconnect every wal_sender_timeout while Kafka was slow or down).
   */
  private statusPeriodMs(): number {
    const configured = this.config.statusIntervalMs;
    const timeoutMs = this.slot!.walSenderTimeoutMs;
    if (timeoutMs <= 0 || configured <= timeoutMs / 2) return configured;
    const periodMs = Math.max(MIN_STATUS_PERIOD_MS, Math.floor(timeoutMs / 2));
    this.logger.warn(
      {
        statusIntervalMs: configured,
        walSenderTimeoutMs: timeoutMs,
        reportEveryMs: periodMs,
        hint: `set statusInterval (--status-interval, OUTBOX_RELAY_STATUS_INTERVAL) to ${periodMs}ms or less, or raise wal_sender_timeout`,
      },
      `statusInterval is longer than half this server's wal_sender_timeout: the position is reported every ${periodMs} ms instead, or the walsender would end the connection while Kafka keeps the in-flight window full`,
    );
    return periodMs;
  }

  /**
   * postgres.receiveTimeout, or this server's wal_sender_timeout when that is longer. A walsender replaying a large
   * transaction of tables outside the publication at its commit sends nothing, and reads no reply request, until
   * half its wal_sender_timeout has passed since it last read one (PostgreSQL 15+): a shorter timeout would end
   * that healthy connection, and the next session would replay the same transaction again.
   */
  private effectiveReceiveTimeoutMs(): number {
    const configured = this.config.receiveTimeoutMs;
    const senderMs = this.slot!.walSenderTimeoutMs;
    if (configured === 0 || configured >= senderMs) return configured;
    // At info once, not at every session start (each attempt of an outage, each exactly-once restart).
    this.repeated.info(
      { receiveTimeoutMs: configured, walSenderTimeoutMs: senderMs, hint: `set ${settingRef('postgres.receiveTimeout')} to ${formatDuration(senderMs)} or more` },
      `postgres.receiveTimeout is shorter than this server's wal_sender_timeout: the replication connection is given up after ${senderMs} ms without a message instead`,
    );
    return senderMs;
  }

  /**
   * The server's first message: START_REPLICATION was accepted. The start position is reported at once, not at
   * the first status interval: until then the slot-lag gauge knew the server's position but none of ours, and
   * showed the whole WAL (every LSN below the server's) as lag for up to statusInterval.
   */
  private streamed(): void {
    if (this.lastReported === undefined && !this.closing) void this.sendStatus(false);
    this.resolveStreaming();
  }

  /** The publication as the relay last saw it: a stream that finds it gone names its column lists and row filters. */
  private knownPublication(): KnownPublication {
    return knownPublication(this.config.publication, this.config.tables, this.seenPublication);
  }

  /** The role, named in a refusal's fix. */
  private get user(): string | undefined {
    return this.config.postgres.user ?? (this.config.postgres.connectionString ? new URL(this.config.postgres.connectionString).username : undefined);
  }

  private onData(chunk: Buffer, at: number): void {
    if (this.failing) return;
    try {
      const msg = decodePgOutput(chunk, at);
      switch (msg.tag) {
        case 'begin': {
          const commitTimeMs = pgTimeToMs(msg.commitTime);
          this.txn = this.tracker.begin(msg.finalLsn, commitTimeMs, msg.xid, this.stream.lastReadAtMs);
          this.openSentAtMs = sentAtMs(chunk);
          this.openFiltered = undefined;
          break;
        }
        case 'commit':
          if (this.txn) this.commit(this.txn, msg.endLsn);
          this.txn = undefined;
          if (this.atCommit) this.endIntake();
          break;
        case 'relation':
          this.onRelation(msg);
          break;
        case 'insert': {
          const mapper = this.mappers.get(msg.relationId);
          const txn = this.txn;
          // null: a published table no mapping names. Never announced (undefined), the row might be an outbox row:
          // passed over, it would be confirmed without reaching Kafka.
          if (mapper === undefined) {
            throw protocolError(`an Insert of relation ${msg.relationId}, which no Relation message announced on this connection`, { relationId: msg.relationId });
          }
          // pgoutput sends every change between a Begin and its Commit: a row outside one has no commit to be
          // delivered and confirmed with, and passed over it would be lost.
          if (!txn) {
            const table = mapper ? ` (${mapper.table})` : '';
            throw protocolError(`an Insert of relation ${msg.relationId}${table} with no Begin before it`, { relationId: msg.relationId });
          }
          // A filtered row adds nothing to its transaction, which then still commits and advances the position.
          if (!mapper) break;
          // pgoutput sends the columns its Relation message lists, no more, no fewer: a row with others is not the
          // table's as the mapper was compiled, and a column it lacks would be read as NULL (a tombstone, a row filtered out).
          if (msg.values.columns !== mapper.columns) {
            throw protocolError(`an Insert into ${mapper.table} (relation ${msg.relationId}) has ${msg.values.columns} columns, its Relation message ${mapper.columns}`, {
              relationId: msg.relationId,
              table: mapper.table,
              rowColumns: msg.values.columns,
              relationColumns: mapper.columns,
            });
          }
          if (!mapper.accepts(msg.values)) {
            const filtered = (this.openFiltered ??= new Map());
            filtered.set(mapper.table, (filtered.get(mapper.table) ?? 0) + 1);
            break;
          }
          this.enqueue(txn, mapper, msg.values);
          break;
        }
        case 'message':
          this.onMessage(msg);
          break;
        default:
          break; // updates, deletes, truncates: nothing to relay
      }
    } catch (err) {
      const error = isRelayError(err) ? err : new RelayError('INTERNAL', `decoding failed: ${(err as Error).message}`, { cause: err });
      this.failLocally(atWalPosition(error, walStartOf(chunk), this.txn?.xid));
    }
  }

  /**
   * A failure on our side (a schema change, an undecodable message) while the connection is still up: stop
   * reading, give what was handed over up to shutdownGrace to be delivered, then report the final position on
   * this connection, so that a halt leaves the slot where the relay says it stopped and a restart re-sends little.
   */
  private failLocally(error: RelayError): void {
    if (this.failing || this.closing) return;
    this.failing = error;
    this.endIntake();
    void settlesWithin(this.delivery.whenIdle(), this.config.shutdownGraceMs).then(() => this.finish(error));
  }

  private commit(txn: SourceTransaction, endLsn: Lsn): void {
    this.resolveProgressed();
    this.tracker.commit(txn, endLsn);
    this.delivery.committed(txn);
    this.countRead(txn, endLsn);
    const held = this.tracker.heldBack;
    if (held.transactions === 0) this.warnedHeldBack = false;
    else if (held.transactions >= HELD_BACK_WARN_TRANSACTIONS && !this.warnedHeldBack) {
      this.warnedHeldBack = true;
      this.logger.warn(
        { confirmedLsn: formatLsn(this.tracker.confirmed), heldBackTransactions: held.transactions, walPinnedBytes: Number(held.upTo - this.tracker.confirmed) },
        'the slot cannot advance past an event still waiting for Kafka: later transactions without events (filtered, or other tables) wait behind it and PostgreSQL keeps their WAL',
      );
    }
  }

  /**
   * The metrics of a transaction read to its commit: its source delay and the rows the filters left out, once per
   * relay. One an earlier session read to its commit streams again after a reconnect, an exactly-once restart from
   * the checkpoint or an at-most-once batch withheld: counted as read, each of those counted it again. Counted at
   * the commit, a transaction cut off inside does not count the rows read before the cut twice.
   */
  private countRead(txn: SourceTransaction, endLsn: Lsn): void {
    if (endLsn <= this.countedTo) return;
    this.countedTo = endLsn;
    this.observer.transactionSent?.(txn.commitTimeMs, this.openSentAtMs);
    for (const [table, rows] of this.openFiltered ?? []) this.observer.filtered?.(table, rows, txn.commitLsn);
  }

  private enqueue<T>(txn: SourceTransaction, mapper: EventMapper<T>, input: T): void {
    this.tracker.add(txn);
    let event: OutboxEvent;
    try {
      event = mapper.map(input, txn);
      if (event.topic === this.checkpointTopic) throw checkpointTopicRefused(event.topic);
    } catch (err) {
      if (!isRelayError(err)) throw err;
      // An event we cannot turn into a record takes its place in the queue, so the poison policy meets it in order.
      event = mapper.unmappable(input, txn, err);
    }
    if (!this.delivery.push(event)) this.stream.pause();
  }

  /** A transactional message belongs to the open transaction; a non-transactional one (a heartbeat) carries no event. */
  private onMessage(msg: LogicalMessage): void {
    const mapper = this.messageMapper;
    if (!mapper?.accepts(msg.prefix)) return;
    if (!msg.transactional) {
      if (msg.content.length === 0) return;
      this.observer.messageNotRelayed?.(msg.prefix);
      // Once per prefix: an application that emits its events this way would otherwise log a line per event.
      if (this.warnedNotRelayed.has(msg.prefix)) return;
      this.warnedNotRelayed.add(msg.prefix);
      this.logger.warn({ prefix: msg.prefix, lsn: formatLsn(msg.lsn) }, 'non-transactional logical message not relayed: emit events with transactional = true');
      return;
    }
    const txn = this.txn;
    // As an Insert: pgoutput sends a transactional message between its transaction's Begin and Commit.
    if (!txn) throw protocolError(`a transactional Message (prefix "${msg.prefix}") with no Begin before it`, { prefix: msg.prefix });
    this.enqueue(txn, mapper, msg);
  }

  /** PostgreSQL sends a Relation message before the first change after connecting and after every schema change. */
  private onRelation(relation: RelationMessage): void {
    const named = this.config.tables.find(sameTable(relation));
    const before = this.mappers.get(relation.relationId);
    // A mapped table renamed or moved to another schema stays in the publication (it lists tables by OID): its
    // rows keep coming under a name no mapping has. Passed over like filtered rows, they would be confirmed
    // without ever reaching Kafka, so the relay halts before the next one, as for a renamed column.
    // Not in WAL committed before the session opened: there a name no mapping has is one the table had before a
    // rename pre-flight found done (the setting names the table as it is now). pgoutput sends it again after
    // every invalidation of the table (an index, a column, ANALYZE…), and each name the table went through (renamed
    // back and forth, moved and back) comes in turn: a halt there would name a table that no longer exists.
    if (!named && before && !this.committedBeforeOpen(relation.relationId)) {
      const table = `${relation.schema}.${relation.table}`;
      throw new RelayError('SCHEMA_TABLE_RENAMED', `outbox table ${before.table} was renamed to ${table} (relation ${relation.relationId}): its rows would no longer be relayed`, {
        hint: `set table (or its tables entry) to ${table} and restart; the relay stopped before the next row of ${table} and did not confirm past it`,
        details: { table: before.table, renamedTo: table },
      });
    }
    // WAL from before a rename carries the old name: the mapped table is known by its OID too (set up by preflight).
    const mapping = named ?? this.slot?.tablesByOid.get(relation.relationId);
    this.mappers.set(relation.relationId, mapping ? RowMapper.compile(relation, mapping, { utf8Unchecked: this.slot?.utf8Unchecked, publication: this.config.publication }) : null);
  }

  /**
   * The open transaction committed before pre-flight read the WAL position, and pre-flight found the relation under
   * a name the settings map. A rename takes a lock that waits for every transaction writing the table, so rows
   * under a name older than the catalog's all commit before it. A relation pre-flight did not map is no longer
   * the outbox by that name (renamed away, and another table took the name): its rows would be passed over.
   */
  private committedBeforeOpen(relationId: number): boolean {
    return this.txn !== undefined && this.slot !== undefined && this.txn.commitLsn < this.slot.walEnd && this.slot.tablesByOid.has(relationId);
  }

  private onKeepalive(walEnd: Lsn, replyRequested: boolean, sentAtMs: number): void {
    if (this.failing) return;
    if (this.progressFrom !== undefined && walEnd > this.progressFrom) this.resolveProgressed();
    this.furthest = maxLsn(this.furthest, walEnd);
    this.observer.walPosition?.(walEnd);
    this.tracker.keepalive(walEnd);
    if (!replyRequested) return;
    // By the server's send time: reply requests left unread while reading was paused (a full window) are read in
    // one burst once it reopens, and by their read times they looked like a shutdown's.
    if (this.shutdown.replyRequested(walEnd, sentAtMs)) return this.letGoForShutdown({ walEnd: formatLsn(walEnd) });
    void this.sendStatus(false);
  }

  /**
   * A side check found this session's source broken where the stream says nothing (source/publication-watch.ts): it
   * ends as on a local failure, what was handed over delivered and confirmed first.
   */
  refuse(error: RelayError): void {
    if (this.tracker) this.failLocally(error);
  }

  /**
   * PostgreSQL is shutting down: a side connection was refused or ended for it (source/slot-lag-probe.ts). Its
   * walsender waits for this connection to confirm everything it sent, which nothing undelivered may be, and while
   * the window is full (Kafka slow or down) the socket is not read, so the keepalives that tell the shutdown
   * (onKeepalive) are never seen: PostgreSQL would wait for Kafka. A session that reads finds out by itself.
   */
  serverStopping(): void {
    if (this.closing || !this.stream.isPaused) return;
    this.letGoForShutdown({ windowFull: true });
  }

  private letGoForShutdown(fields: Record<string, unknown>): void {
    // The final status first: the line names the position it left the slot at, not the last periodic report. A
    // local failure that was draining (failLocally) still ends the session: ended as a shutdown, retriable, it was
    // logged at debug only, and the relay reconnected instead of halting, to halt only once the server was back.
    const failure = this.failing;
    this.finish(failure ?? new RelayError('PG_STREAM_FAILED', 'PostgreSQL is shutting down', { retriable: true }));
    this.logger.info(
      { ...fields, reportedLsn: formatLsn(this.lastReported ?? this.tracker.confirmed) },
      failure
        ? 'PostgreSQL is shutting down and waits for this connection: disconnecting before the failure that stopped reading was drained'
        : 'PostgreSQL is shutting down and waits for this connection: disconnecting (the relay reconnects with backoff)',
    );
  }

  /** Room in the window again: read the socket, unless the intake ended (a stop, a local failure, the end). */
  resume(): void {
    if (!this.intakeEnded) this.stream.resume();
  }

  /**
   * No more events of this session go to the delivery (a stop drains what it has) and reading stops; the
   * connection stays for the final status. Returns the position the drain confirms: the end LSN of the newest
   * transaction handed over, or the confirmed position once the delivery took no more events before (refusedAtEnd:
   * a transaction exactly-once dropped may have been read to its commit since, and is not confirmed). Ends a wait
   * of endIntakeAtCommit, whatever ended the intake.
   */
  endIntake(): Lsn | undefined {
    if (!this.tracker) return undefined;
    if (!this.intakeEnded) this.refusedAtEnd = !this.delivery.accepting;
    this.intakeEnded = true;
    this.stream.pause();
    this.delivery.endSession(this.tracker);
    const drainTo = this.refusedAtEnd ? this.tracker.confirmed : this.tracker.committed;
    const waiting = this.atCommit;
    this.atCommit = undefined;
    waiting?.(drainTo);
    return drainTo;
  }

  /**
   * A graceful stop's end of intake: at once between source transactions; inside one, reading goes on (under the
   * window's backpressure, as before) until its commit. Events of the open transaction may be in Kafka already:
   * cut there, they would sit past the confirmed position and a restart would send them again. Resolves with what
   * endIntake returns; the caller bounds the wait and calls endIntake itself when it runs out.
   *
   * At once too when the delivery takes no more events (exactly-once dropped and aborted everything uncommitted, and
   * waits to restart the source), and once it takes no more during the read (`refusing`, Delivery.drain()): none of
   * the open transaction is in Kafka, and the socket, paused at the first event refused, would never bring its
   * commit: the stop waited out the grace period for nothing.
   */
  endIntakeAtCommit(refusing: Promise<void>): Promise<Lsn | undefined> {
    const open = this.txn;
    if (!open || this.intakeEnded || !this.delivery.accepting) return Promise.resolve(this.endIntake());
    this.logger.info({ xid: open.xid, commitLsn: formatLsn(open.commitLsn) }, 'stopping: reading the open source transaction to its commit');
    void refusing.then(() => {
      if (this.atCommit) this.endIntake();
    });
    return new Promise((resolve) => (this.atCommit = resolve));
  }

  /**
   * at-most-once's hand-off: `acknowledge` counts the batch (the tracker confirms its position), the position goes to
   * PostgreSQL now, and this resolves true once PostgreSQL holds it (its slot's confirmed position reached it: the
   * batch goes to Kafka only then), false when the session ended first (the batch is withheld). A read of the slot
   * that fails ends the session with that failure, as a lost replication connection does.
   *
   * Until then the position is not the relay's (passOn): the relay resumes the next session there and the checkpoint
   * records it. Passed on at once, a withheld batch was lost even when PostgreSQL never got its position: the next
   * session started past it (15 events in three PostgreSQL crashes under four writers), where PostgreSQL alone
   * would have sent it again. `passedIfWithheld`: where the relay resumes even so, past transactions some of whose
   * events went to Kafka already (the poison policy's dead letters).
   */
  async handOff(acknowledge: () => void, last: Pick<SourceTransaction, 'endLsn' | 'commitTimeMs'>, passedIfWithheld?: Lsn): Promise<boolean> {
    this.handOffsWaiting++;
    let held = false;
    try {
      acknowledge();
      // The batch's own position, its last transaction's end: the tracker may be past it (a later event-less
      // commit, a keepalive), and the rest of a transaction PostgreSQL held the end of must not wait for those.
      const confirmed = this.tracker.confirmed;
      const own = last.endLsn !== undefined && last.endLsn < confirmed ? { lsn: last.endLsn, commitTimeMs: last.commitTimeMs } : { lsn: confirmed, commitTimeMs: this.tracker.confirmedCommitTimeMs };
      if (own.lsn < confirmed) this.unheld = { lsn: confirmed, commitTimeMs: this.tracker.confirmedCommitTimeMs };
      held = await this.positionHeld(own.lsn);
      if (held) this.passOn(own.lsn, own.commitTimeMs, true);
      // Streamed again, the transactions up to there would meet the poison policy again: their dead letters were
      // written already. Their events in this batch are lost instead.
      else if (passedIfWithheld !== undefined) this.passOn(passedIfWithheld < own.lsn ? passedIfWithheld : own.lsn, undefined, true);
    } finally {
      this.handOffsWaiting--;
    }
    if (!held) this.withholding = true;
    else if (this.handOffsWaiting === 0 && this.unheld) this.passOn(this.unheld.lsn, this.unheld.commitTimeMs);
    return held;
  }

  /**
   * Whether PostgreSQL holds `position`, the hand-off's own. The status reports the newest confirmed one, which may
   * be past it: checked for that, the rest of a transaction whose end PostgreSQL held could be withheld, and lost.
   */
  private async positionHeld(position: Lsn): Promise<boolean> {
    // A closed session reports nothing more, but what an earlier report got held may cover the position (the rest
    // of a transaction counted whole at its first hand-off).
    if (this.reportable) await this.sendStatus(false);
    this.flushCheck ??= new ServerFlushCheck(this.config.postgres, this.config.slot, this.logger, () => this.reportable);
    try {
      return await this.flushCheck.reached(position);
    } catch (err) {
      this.finish(classifyPgError(err, { slot: this.config.slot, republish: this.republish, user: this.user, what: 'the outbox-relay-flush-check query' }));
      return false;
    }
  }

  /**
   * A confirmed position becomes the relay's. While at-most-once hand-offs wait for PostgreSQL (and for good once
   * one was withheld) only a held one does (`held`): others wait in `unheld`, a keepalive's and a poison-skipped
   * event's included, as a withheld batch lies below them.
   */
  private passOn(lsn: Lsn, commitTimeMs: number | undefined, held = false): void {
    if (!held && (this.handOffsWaiting > 0 || this.withholding)) {
      this.unheld = { lsn, commitTimeMs };
      return;
    }
    if (this.unheld && this.unheld.lsn <= lsn) this.unheld = undefined;
    if (lsn <= this.passedOn) return;
    this.passedOn = lsn;
    this.onConfirmed(lsn, commitTimeMs);
    this.observer.confirmed?.(lsn, commitTimeMs);
  }

  /** The furthest WAL position this session's keepalives reached (the next session's `reachedBefore`). */
  get reached(): Lsn {
    return this.furthest;
  }

  /** End LSN of the newest transaction the metrics counted, in this session or an earlier one (the next session's `countedBefore`). */
  get countedThrough(): Lsn {
    return this.countedTo;
  }

  /** A position can still reach PostgreSQL: the session is neither closing nor its stream finished. */
  get reportable(): boolean {
    return !this.closing && !this.stream.finished;
  }

  /** The flush position last sent to PostgreSQL (older than the confirmed one while a replay window is kept). */
  get reported(): Lsn | undefined {
    return this.lastReported;
  }

  /**
   * The flush position PostgreSQL holds: the last one sent, or before the first status (sent at the server's first
   * message, which an idle server may send only after wal_sender_timeout/2) the slot's, as this session's open read it.
   */
  get held(): Lsn | undefined {
    return this.lastReported ?? this.slot?.confirmedFlush;
  }

  private sendStatus(requestReply: boolean): Promise<void> {
    // After the stream failed nothing reaches PostgreSQL: `reported` (the halt line's confirmedLsn, the gauges)
    // stays what PostgreSQL was last sent.
    if (this.stream.finished) return Promise.resolve();
    this.lastReported = this.report(this.tracker.confirmed);
    // Asking for a reply while idle makes the server send a keepalive with its WAL end, which we then confirm.
    return this.stream.sendStatus(this.lastReported, requestReply);
  }

  /**
   * Ends the session once: the final position goes to PostgreSQL while the connection may still take it (a halt
   * on a schema change, a stop), the delivery drops what the session left incomplete, and the connection closes.
   */
  private finish(error: RelayError | undefined, endBy?: number): void {
    if (this.closing) return;
    this.closing = true;
    if (error) this.logger.debug({ err: error }, 'replication stream ended');
    clearInterval(this.statusTimer);
    if (this.tracker) {
      void this.sendStatus(false);
      this.endIntake();
    }
    // A close that fails still ends the session (the relay waits for `ended`); its error is only logged.
    void this.flushCheck?.close();
    void this.stream
      .close(endBy)
      .catch((err: unknown) => this.logger.debug({ err: errorMessage(err) }, 'closing the replication connection failed'))
      .finally(() => this.resolveEnded(error));
  }

  /**
   * Sends the final confirmed position and closes the connection, by `endBy` when given (a stop's). Never rejects
   * (see finish()): a caller that need not wait leaves it unawaited.
   */
  async close(endBy?: number): Promise<void> {
    const final = !this.closing && this.tracker;
    this.finish(undefined, endBy);
    // confirmedLsn is what PostgreSQL now holds; a replay window keeps it behind the acknowledged position.
    if (final) this.logger.info({ confirmedLsn: formatLsn(this.lastReported!), deliveredLsn: formatLsn(this.tracker.confirmed) }, 'confirmed position reported to PostgreSQL');
    await this.ended;
  }
}

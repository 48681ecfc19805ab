import type { Duplex } from 'node:stream';
import pg from 'pg';
import { settingRef } from '../config/settings.js';
import { formatDuration } from '../config/units.js';
import { RelayError } from '../errors.js';
import { settlesWithin } from '../retry.js';
import { connectClient, withTextSettings } from './pg-connect.js';
import { KEEPALIVE_IDLE_MS, boundedQuery, timeoutError } from './pg-timeouts.js';
import { formatLsn, type Lsn } from '../lsn.js';
import { msToPgTime, pgTimeToMs } from '../decode/pgoutput.js';
import { quoteIdent, quoteLiteral } from '../sql/quote.js';

/**
 * A thin logical replication client on `pg`, instead of the `pg-logical-replication` package, whose
 * acknowledgement path reports lsn + 1, confirms the last *received* position from a timer, ignores
 * reply-requested keepalives when that timer is off, and resumes from the received position on re-subscribe:
 * each of those loses data or kills the stream (see shared/field-notes.md). Here the caller decides every
 * byte of every standby status update, and reading can be paused so that WAL waits in PostgreSQL.
 */
export interface ReplicationHandlers {
  /**
   * One pgoutput message: `chunk` from `at` on (the XLogData header before it is skipped; the positions the
   * pipeline needs are in the message itself). Valid only during the call: the client reuses its receive buffer.
   */
  onData(chunk: Buffer, at: number): void;
  /**
   * Server keepalive: `walEnd` is the position the server has sent up to; `sentAtMs` when the server sent it (its
   * clock, ms since the epoch), which keepalives left unread while reading was paused do not share with their read.
   */
  onKeepalive(walEnd: Lsn, replyRequested: boolean, sentAtMs: number): void;
  /**
   * Nothing arrived for half the receive timeout: send a status update that asks for a reply, which a working
   * walsender answers with a keepalive. Every status update is the caller's (see above).
   */
  onQuiet(): void;
  /** The stream ended without close(): after close() it is not called. */
  onEnd(error: Error): void;
  /**
   * PostgreSQL sent a WARNING or NOTICE on the connection: an error returned ends the stream with it, before
   * anything read after the notice is passed on (see start()).
   */
  onNotice(notice: PgNotice): Error | undefined;
}

/** What `pg` emits as 'notice': a NoticeResponse's fields. */
export interface PgNotice {
  severity?: string;
  code?: string;
  message?: string;
  detail?: string;
  hint?: string;
  where?: string;
}

export interface StartOptions {
  slot: string;
  /** 0n starts at the slot's confirmed position. */
  startLsn: Lsn;
  publications: string[];
  /** Ask pgoutput for pg_logical_emit_message() messages (PostgreSQL 14+). */
  messages: boolean;
  /** The longest silence from the server while the socket is read before the stream fails (0: none); see ReceiveTimeout. */
  receiveTimeoutMs: number;
}

interface PgConnection {
  query(text: string): void;
  sendCopyFromChunk(chunk: Buffer): void;
  /** CopyDone. */
  endCopyFrom(): void;
  stream: Duplex;
}

/** 'w', then the WAL start and end positions and the send time (Int64 each): the pgoutput message follows. */
const XLOG_DATA_HEADER = 25;
const XLOG_DATA_SEND_TIME = XLOG_DATA_HEADER - 8;

/** Where in the WAL the XLogData message `chunk` starts (its walStart): the record the pgoutput message in it decodes. */
export function walStartOf(chunk: Buffer): Lsn {
  return chunk.readBigUInt64BE(1);
}

/** When the walsender sent the XLogData message `chunk` (its send time, by PostgreSQL's clock), in ms since the epoch. */
export function sentAtMs(chunk: Buffer): number {
  return pgTimeToMs(chunk.readBigInt64BE(XLOG_DATA_SEND_TIME));
}

/** A `pg` Submittable: pg hands it every CopyData message of the COPY BOTH stream that START_REPLICATION opens. */
class StartReplication {
  constructor(
    private readonly sql: string,
    private readonly handlers: Pick<ReplicationHandlers, 'onData' | 'onKeepalive'>,
    private readonly onFinish: (error: Error) => void,
  ) {}

  submit(connection: PgConnection): void {
    connection.query(this.sql);
  }

  handleCopyData(msg: { chunk: Buffer }): void {
    const buf = msg.chunk;
    switch (buf[0]) {
      case 0x77: // 'w' XLogData: walStart, walEnd, sendTime, data
        this.handlers.onData(buf, XLOG_DATA_HEADER);
        break;
      case 0x6b: // 'k' primary keepalive: walEnd, sendTime, replyRequested
        this.handlers.onKeepalive(buf.readBigUInt64BE(1), buf[17] === 1, pgTimeToMs(buf.readBigInt64BE(9)));
        break;
      default:
        this.onFinish(
          new RelayError('PG_PROTOCOL', `unexpected replication message type 0x${buf[0]?.toString(16)}`, {
            hint: 'this is a bug or an unsupported server version; please report it with the server version. Nothing past the confirmed position was confirmed',
          }),
        );
    }
  }

  handleError(err: Error): void {
    this.onFinish(err);
  }

  handleReadyForQuery(): void {
    // After the relay's own CopyDone (close()) nothing is reported. Else the server ended the command on its own,
    // which PostgreSQL's walsender does not do (it fails, or closes the connection at a shutdown), but a proxy in
    // between might: taken for an orderly end, the next session started at once, without a line or a backoff.
    this.onFinish(new RelayError('PG_STREAM_FAILED', 'PostgreSQL ended the replication command without an error, unasked', { retriable: true }));
  }

  handleCommandComplete(): void {}
  handleRowDescription(): void {}
  handleDataRow(): void {}
  handleEmptyQuery(): void {}
  handleCopyInResponse(): void {}
  handlePortalSuspended(): void {}
}

function startReplicationSql(options: StartOptions): string {
  const pluginOptions = [`proto_version '1'`, `publication_names ${quoteLiteral(options.publications.map(quoteIdent).join(','))}`];
  if (options.messages) pluginOptions.push(`messages 'true'`);
  return `START_REPLICATION SLOT ${quoteIdent(options.slot)} LOGICAL ${formatLsn(options.startLsn)} (${pluginOptions.join(', ')})`;
}

/** The replication connection, as its errors and timeouts name it (beside the relay's ordinary connections). */
export const REPLICATION_SESSION = 'the replication session';

/** How long close() waits for PostgreSQL to end the replication command before dropping the connection. */
const END_COPY_TIMEOUT_MS = 5_000;

/**
 * PostgreSQL's wal_receiver_timeout, for one replication connection. A server, walsender or network path that
 * hangs while the connection stays open (a stopped or stuck walsender whose kernel still acknowledges our status
 * updates, a path that drops the server's packets) ends nothing: no error, no end, and the relay streamed on in
 * name only. While the socket is read, half the timeout without a byte calls `quiet` (the caller asks the server
 * for a reply), all of it `expired`. Paused reading does not count (nothing is read then, keepalives included):
 * `listen` starts the clock again when reading resumes.
 */
class ReceiveTimeout {
  private timer: NodeJS.Timeout | undefined;
  private listeningSinceMs = 0;

  constructor(
    private readonly timeoutMs: number,
    private readonly lastReadAtMs: () => number,
    private readonly quiet: () => void,
    private readonly expired: (silentMs: number) => void,
  ) {}

  /** Reading (re)started: silence counts from now. */
  listen(): void {
    this.stop();
    this.listeningSinceMs = Date.now();
    this.wakeAfter(0);
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** The next point of this silence (its half, its end): one timer, not one reset per read, which only records its time. */
  private wakeAfter(silentMs: number): void {
    const half = this.timeoutMs / 2;
    this.timer = setTimeout(() => this.check(), (silentMs < half ? half : this.timeoutMs) - silentMs);
    this.timer.unref();
  }

  private check(): void {
    const silentMs = Date.now() - Math.max(this.lastReadAtMs(), this.listeningSinceMs);
    if (silentMs >= this.timeoutMs) return this.expired(silentMs);
    if (silentMs >= this.timeoutMs / 2) this.quiet();
    this.wakeAfter(silentMs);
  }
}

function receiveTimeoutError(silentMs: number, timeoutMs: number): RelayError {
  return new RelayError(
    'PG_STREAM_FAILED',
    `PostgreSQL sent nothing on the replication connection for ${Math.round(silentMs / 1000)} s while the relay read it (receive timeout ${formatDuration(timeoutMs)}), not even the reply it asked for: the server, its walsender or the network path to it hangs`,
    {
      retriable: true,
      hint: `check the PostgreSQL server (the relay's walsender in pg_stat_replication, the host's load and disk I/O) and the network path to it; the relay reconnects with backoff. A server that is healthy but silent for longer (before PostgreSQL 15, one replaying a large transaction of tables outside the publication) needs a longer ${settingRef('postgres.receiveTimeout')}, or 0 to turn the timeout off`,
      details: { silentMs, receiveTimeoutMs: timeoutMs },
    },
  );
}

/** One replication connection: connect, `start`, then status updates until `close`. */
export class ReplicationStream {
  private client: pg.Client;
  private readonly config: pg.ClientConfig;
  private ended = false;
  private paused = false;
  private readAtMs = 0;
  private receiveTimeout: ReceiveTimeout | undefined;
  /** Set while START_REPLICATION runs: resolves when it ends (completed, failed, or the connection closed). */
  private replicating: Promise<void> | undefined;

  constructor(connection: pg.ClientConfig) {
    this.config = { ...withTextSettings(connection), replication: 'database', keepAlive: true, keepAliveInitialDelayMillis: KEEPALIVE_IDLE_MS } as pg.ClientConfig;
    this.client = new pg.Client(this.config);
  }

  /**
   * Date.now() at the socket read that carried the message being handled: one clock read per read (often
   * hundreds of messages), not one per message.
   */
  get lastReadAtMs(): number {
    return this.readAtMs;
  }

  /** The stream ended (closed, or failed): a status update sent now would not reach PostgreSQL. */
  get finished(): boolean {
    return this.ended;
  }

  get connection(): PgConnection {
    return (this.client as unknown as { connection: PgConnection }).connection;
  }

  async connect(): Promise<void> {
    // Errors reach onEnd through the active query; this keeps a late socket error from crashing the process.
    const watch = (c: pg.Client) => void c.on('error', () => undefined);
    watch(this.client);
    try {
      this.client = await connectClient(this.client, this.config, watch);
    } catch (err) {
      throw timeoutError(err, this.config, REPLICATION_SESSION) ?? err;
    }
  }

  /** The server process of this connection (its walsender once START_REPLICATION runs); null before connect. */
  get backendPid(): number | null {
    return (this.client as unknown as { processID: number | null }).processID;
  }

  /**
   * Plain SQL on the replication connection (simple protocol only): used for the pre-flight checks. Bounded as an
   * ordinary connection's queries are: the receive timeout starts only with the stream, and TCP keepalive passes a
   * server that is stopped while its kernel answers.
   */
  query<T extends pg.QueryResultRow>(sql: string): Promise<T[]> {
    return boundedQuery<T>(this.client, this.config, `a pre-flight query of ${REPLICATION_SESSION}`, sql);
  }

  start(options: StartOptions, handlers: ReplicationHandlers): void {
    let commandEnded!: () => void;
    this.replicating = new Promise((resolve) => (commandEnded = resolve));
    const finish = (error: Error) => {
      this.receiveTimeout?.stop();
      commandEnded();
      this.replicating = undefined;
      if (this.ended) return;
      this.ended = true;
      handlers.onEnd(error);
    };
    // After close() (or an error) messages still buffered in the socket must not reach the pipeline.
    const guarded: Pick<ReplicationHandlers, 'onData' | 'onKeepalive'> = {
      onData: (chunk, at) => {
        if (!this.ended) handlers.onData(chunk, at);
      },
      onKeepalive: (walEnd, reply, sentAtMs) => {
        if (!this.ended) handlers.onKeepalive(walEnd, reply, sentAtMs);
      },
    };
    // Before pg's own listener, which parses the read and hands every message in it to onData at once.
    this.connection.stream.prependListener('data', () => {
      this.readAtMs = Date.now();
    });
    this.client.on('end', () => finish(new RelayError('PG_STREAM_FAILED', 'replication connection closed by the server', { retriable: true })));
    // A notice can end the stream (PostgreSQL 18's "skipped loading publication", pg-errors.ts): here, in the order
    // pg parsed the read, so that a keepalive after it is never passed on and no status update carries a position
    // past the changes it skipped.
    this.client.on('notice', (notice: PgNotice) => {
      if (this.ended) return;
      const error = handlers.onNotice(notice);
      if (error === undefined) return;
      finish(error);
      // Nothing more is read from or written to it, whatever the caller's close() does next.
      this.connection.stream.destroy();
    });
    void this.client.query(new StartReplication(startReplicationSql(options), guarded, finish) as unknown as pg.QueryConfig);
    if (options.receiveTimeoutMs === 0) return;
    this.receiveTimeout = new ReceiveTimeout(options.receiveTimeoutMs, () => this.readAtMs, handlers.onQuiet, (silentMs) => {
      finish(receiveTimeoutError(silentMs, options.receiveTimeoutMs));
      // Given up: nothing more is read from or written to it, whatever the caller's close() does next.
      this.connection.stream.destroy();
    });
    this.receiveTimeout.listen();
  }

  /**
   * Standby status update. write = flush = apply = `confirmed`: PostgreSQL advances the slot's
   * confirmed_flush_lsn to the flush position, and streams from there after a reconnect. Resolves once the
   * status is handed to the kernel (at-most-once waits for that before producing). Never rejects: a failed write
   * surfaces as the connection's error, which ends the session, so callers that need not wait leave it unawaited.
   */
  sendStatus(confirmed: Lsn, replyRequested: boolean): Promise<void> {
    if (this.ended) return Promise.resolve();
    const msg = Buffer.allocUnsafe(34);
    msg[0] = 0x72; // 'r'
    msg.writeBigUInt64BE(confirmed, 1);
    msg.writeBigUInt64BE(confirmed, 9);
    msg.writeBigUInt64BE(confirmed, 17);
    msg.writeBigInt64BE(msToPgTime(Date.now()), 25);
    msg[33] = replyRequested ? 1 : 0;
    this.connection.sendCopyFromChunk(msg);
    // An empty write's callback runs once everything written before it is flushed.
    return new Promise((resolve) => this.connection.stream.write('', () => resolve()));
  }

  /** Reading is paused (the in-flight window is full): nothing the server sends is read, keepalives included. */
  get isPaused(): boolean {
    return this.paused;
  }

  /** Stops reading the socket: the server's send buffer fills and WAL stays in PostgreSQL. */
  pause(): void {
    if (this.paused) return;
    this.paused = true;
    this.connection.stream.pause();
    this.receiveTimeout?.stop();
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.connection.stream.resume();
    if (!this.ended) this.receiveTimeout?.listen();
  }

  /** `endBy`: when a stop must be over (its watchdog near), the wait for the command's end ends by then too. */
  async close(endBy = Infinity): Promise<void> {
    this.ended = true;
    // The wait for the command's end below has its own bound: a timeout there would cut the orderly end short.
    this.receiveTimeout?.stop();
    // A paused socket never reports its end, and client.end() waits for that.
    this.connection.stream.resume();
    const replicating = this.replicating;
    if (replicating) {
      // End the COPY before the connection. pg's end() destroys the socket while a command is active, and a
      // walsender that is still writing to us then dies of the broken pipe before it reads the final status
      // update sent just before. PostgreSQL reads in order: the status, then CopyDone, after which it ends the
      // command and pg ends the connection with a Terminate instead.
      this.connection.endCopyFrom();
      await settlesWithin(replicating, Math.max(0, Math.min(END_COPY_TIMEOUT_MS, endBy - Date.now())));
    }
    // The session is over either way (its error, if any, came from the stream); the end only frees the socket.
    await this.client.end().catch(() => undefined);
  }
}

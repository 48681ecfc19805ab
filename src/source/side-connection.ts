import type pg from 'pg';
import type { Logger } from 'pino';
import { errorMessage } from '../errors.js';
import { settlesWithin } from '../retry.js';
import { boundedQuery, connectBounded } from './pg-timeouts.js';

/** How long close() waits for the connection to close. */
const CLOSE_WITHIN_MS = 2000;

/**
 * One normal (not replication) connection for the relay's periodic side work (the heartbeat, the slot-lag probe):
 * opened on first use, dropped after a failure or a loss and opened again by the next use, closed for good by
 * close() (a use under way when it closes ends its connection itself).
 */
export class SideConnection {
  private client: pg.Client | undefined;
  private closed = false;

  constructor(
    private readonly connection: pg.ClientConfig,
    private readonly applicationName: string,
    private readonly logger: Logger,
  ) {}

  /** Runs `sql`; undefined when the connection was closed meanwhile. A failure drops the connection (the next use reconnects) and is thrown. */
  async query<R extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<R[] | undefined> {
    try {
      const client = this.client ?? (await this.connect());
      // Closed while the connection was being opened: close() found nothing to close, so close it here.
      if (this.closed) return void (await this.disconnect());
      const rows = await boundedQuery<R>(client, this.connection, this.what, sql, params);
      if (this.closed) return void (await this.disconnect());
      return rows;
    } catch (err) {
      await this.disconnect();
      if (this.closed) return undefined;
      throw err;
    }
  }

  /** Closes the connection until the next use (a user that goes idle for long). */
  release(): Promise<void> {
    return this.disconnect();
  }

  /** Closes it for good. Bounded: a server that stopped answering would hold the close (and the exit) until the socket times out. */
  async close(): Promise<void> {
    this.closed = true;
    await settlesWithin(this.disconnect(), CLOSE_WITHIN_MS);
  }

  private async connect(): Promise<pg.Client> {
    // A connection lost between uses surfaces here; the next use reconnects.
    const watch = (c: pg.Client) =>
      void c.on('error', (err) => {
        this.logger.debug({ err: err.message }, 'connection lost');
        if (this.client === c) this.client = undefined;
      });
    this.client = await connectBounded({ ...this.connection, application_name: this.applicationName }, this.what, watch);
    return this.client;
  }

  /** The query as a timeout names it: by the application_name pg_stat_activity shows. */
  private get what(): string {
    return `the ${this.applicationName} query`;
  }

  private async disconnect(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    await client?.end().catch((err: unknown) => this.logger.debug({ err: errorMessage(err) }, 'closing the connection'));
  }
}

/** `run` every `intervalMs` on its own SideConnection, never two runs at once, until stop() (which closes it). */
export class PeriodicSideTask {
  readonly connection: SideConnection;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private stoppedFlag = false;

  constructor(
    connection: pg.ClientConfig,
    applicationName: string,
    private readonly intervalMs: number,
    private readonly run: (connection: SideConnection) => Promise<void>,
    logger: Logger,
  ) {
    this.connection = new SideConnection(connection, applicationName, logger);
  }

  /** stop() was called: a run still under way reports nothing more. */
  get stopped(): boolean {
    return this.stoppedFlag;
  }

  start(): void {
    if (this.intervalMs <= 0 || this.timer || this.stoppedFlag) return;
    this.timer = setInterval(() => void this.tick(), this.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stoppedFlag = true;
    clearInterval(this.timer);
    this.timer = undefined;
    await this.connection.close();
  }

  private async tick(): Promise<void> {
    if (this.running || this.stoppedFlag) return;
    this.running = true;
    try {
      await this.run(this.connection);
    } finally {
      this.running = false;
    }
  }
}

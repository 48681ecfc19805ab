import pg from 'pg';
import type { Logger } from 'pino';
import { errorMessage } from '../errors.js';
import { connectClient } from './pg-connect.js';
import { OutageLog } from '../outage-log.js';

/**
 * Writes pg_logical_emit_message(false, prefix, '') into the watched database every interval, on a normal
 * connection. The message is WAL of this database, so the walsender has something of ours to decode and the
 * slot keeps advancing (through the idle keepalive confirmation) even when every other write goes to other
 * databases of the cluster. The relay never relays these messages. A failed beat is retried at the next tick
 * on a fresh connection: the cadence is the backoff, and an outage is logged once, with its recovery.
 */
export class Heartbeat {
  private timer: NodeJS.Timeout | undefined;
  private client: pg.Client | undefined;
  private beating = false;
  private readonly outage: OutageLog;
  /** stop() was called: a beat still under way closes what it opened and writes nothing more. */
  private stopped = false;

  constructor(
    private readonly connection: pg.ClientConfig,
    private readonly intervalMs: number,
    private readonly prefix: string,
    private readonly logger: Logger,
  ) {
    this.outage = new OutageLog(logger, { started: 'heartbeat failed: retrying every interval', ongoing: 'heartbeat still failing', ended: 'heartbeat written again' });
  }

  start(): void {
    if (this.intervalMs <= 0 || this.timer || this.stopped) return;
    this.timer = setInterval(() => void this.beat(), this.intervalMs);
    this.timer.unref();
  }

  private async beat(): Promise<void> {
    if (this.beating || this.stopped) return;
    this.beating = true;
    try {
      const client = this.client ?? (await this.connect());
      // Stopped while the connection was being opened: stop() found nothing to close, so close it here.
      if (this.stopped) return void (await this.disconnect());
      await client.query(`SELECT pg_logical_emit_message(false, $1, '')`, [this.prefix]);
      this.outage.recovered();
    } catch (err) {
      if (this.stopped) return void (await this.disconnect());
      this.outage.failed({ err: errorMessage(err), intervalMs: this.intervalMs });
      await this.disconnect();
    } finally {
      this.beating = false;
    }
  }

  private async connect(): Promise<pg.Client> {
    const config = { ...this.connection, application_name: 'outbox-relay-heartbeat' };
    // A connection lost between beats surfaces here; the next beat reconnects.
    const watch = (c: pg.Client) =>
      void c.on('error', (err) => {
        this.logger.debug({ err: err.message }, 'heartbeat connection lost');
        if (this.client === c) this.client = undefined;
      });
    let client = new pg.Client(config);
    watch(client);
    try {
      client = await connectClient(client, config, watch);
    } catch (err) {
      await client.end().catch((endErr: unknown) => this.logger.debug({ err: errorMessage(endErr) }, 'closing a failed heartbeat connection'));
      throw err;
    }
    this.client = client;
    return client;
  }

  private async disconnect(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    await client?.end().catch((err: unknown) => this.logger.debug({ err: errorMessage(err) }, 'closing the heartbeat connection'));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    this.timer = undefined;
    await this.disconnect();
  }
}

import type pg from 'pg';
import type { Logger } from 'pino';
import { errorMessage } from '../errors.js';
import { OutageLog } from '../outage-log.js';
import { PeriodicSideTask, type SideConnection } from './side-connection.js';

/**
 * Writes pg_logical_emit_message(false, prefix, '') into the watched database every interval, on a normal
 * connection. The message is WAL of this database, so the walsender has something of ours to decode and the
 * slot keeps advancing (through the idle keepalive confirmation) even when every other write goes to other
 * databases of the cluster. The relay never relays these messages. A failed beat is retried at the next tick
 * on a fresh connection: the cadence is the backoff, and an outage is logged once, with its recovery.
 */
export class Heartbeat {
  private readonly outage: OutageLog;
  private readonly task: PeriodicSideTask;

  constructor(
    connection: pg.ClientConfig,
    private readonly intervalMs: number,
    private readonly prefix: string,
    logger: Logger,
  ) {
    this.task = new PeriodicSideTask(connection, 'outbox-relay-heartbeat', intervalMs, (c) => this.beat(c), logger);
    this.outage = new OutageLog(logger, { started: 'heartbeat failed: retrying every interval', ongoing: 'heartbeat still failing', ended: 'heartbeat written again' });
  }

  start(): void {
    this.task.start();
  }

  stop(): Promise<void> {
    return this.task.stop();
  }

  private async beat(connection: SideConnection): Promise<void> {
    // A beat can hang for the bound on its query (postgres.statementTimeout + connectTimeout) before it fails.
    const startedAt = Date.now();
    try {
      // A failed beat drops the connection: the next one opens a fresh one.
      if ((await connection.query(`SELECT pg_logical_emit_message(false, $1, '')`, [this.prefix])) !== undefined) this.outage.recovered();
    } catch (err) {
      if (!this.task.stopped) this.outage.failed({ err: errorMessage(err), intervalMs: this.intervalMs }, {}, startedAt);
    }
  }
}

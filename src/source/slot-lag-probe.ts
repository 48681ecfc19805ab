import type pg from 'pg';
import type { Logger } from 'pino';
import { errorMessage } from '../errors.js';
import { parseLsn, type Lsn } from '../lsn.js';
import { findSlotLagSql } from '../ops/slots.js';
import { PeriodicSideTask, type SideConnection } from './side-connection.js';

/** SQLSTATEs of a server shutting down: admin_shutdown (a fast shutdown ends the session), crash_shutdown, cannot_connect_now. */
const SHUTTING_DOWN = new Set(['57P01', '57P02', '57P03']);

/** admin_shutdown: also what pg_terminate_backend() on the probe's own backend gives. */
const ADMIN_SHUTDOWN = '57P01';

/**
 * The slot's lag as PostgreSQL counts it (WAL position minus confirmed_flush_lsn), read on a normal connection
 * while the replication stream gives no WAL position: the relay halted, reconnecting, or its
 * window full (a paused socket reads no keepalives). Exactly then WAL piles up towards max_slot_wal_keep_size, and
 * a gauge left at its last streamed value would keep the alert on it from firing. While the stream reports, it
 * reads nothing and holds no connection. Not while starting (the instance may turn out a standby): the relay
 * passes `due`. A probe refused because PostgreSQL is shutting down is reported (Session.serverStopping); one whose
 * connection an administrator command ended, only when the server refuses a new one too (acceptsConnections).
 */
export class SlotLagProbe {
  private failing = false;
  private readonly task: PeriodicSideTask;

  constructor(
    connection: pg.ClientConfig,
    private readonly slot: string,
    intervalMs: number,
    /** True when the stream has given no WAL position for a while and the slot is this instance's to report. */
    private readonly due: () => boolean,
    private readonly found: (walEnd: Lsn, lagBytes: number) => void,
    /** The probe's connection was refused or ended because PostgreSQL is shutting down. */
    private readonly serverStopping: () => void,
    private readonly logger: Logger,
  ) {
    this.task = new PeriodicSideTask(connection, 'outbox-relay-slot-lag', intervalMs, (c) => this.probe(c), logger);
  }

  start(): void {
    this.task.start();
  }

  stop(): Promise<void> {
    return this.task.stop();
  }

  /** A fresh connection each time: one held open would hold up a smart shutdown, and a refused one tells a shutdown. */
  private async probe(connection: SideConnection): Promise<void> {
    if (!this.due()) return;
    try {
      const rows = await connection.query<{ wal_end: string; lag_bytes: string | null }>(findSlotLagSql, [this.slot]);
      const row = rows?.[0];
      if (row?.lag_bytes != null && !this.task.stopped && this.due()) this.found(parseLsn(row.wal_end), Math.max(0, Number(row.lag_bytes)));
      this.failing = false;
    } catch (err) {
      const code = (err as { code?: unknown }).code as string;
      if (SHUTTING_DOWN.has(code) && (code !== ADMIN_SHUTDOWN || !(await this.acceptsConnections(connection)))) this.serverStopping();
      // PostgreSQL down is the relay's own outage, logged by it; this only says why the gauge stands still.
      if (!this.failing) this.logger.debug({ err: errorMessage(err) }, 'cannot read the slot lag: outbox_relay_slot_lag_bytes keeps its last value');
      this.failing = true;
    } finally {
      await connection.release();
    }
  }

  /**
   * After an admin_shutdown: a server shutting down refuses every new connection (cannot_connect_now) from its
   * start until it has stopped, while one whose backend was only terminated (an operator, a tool that ends long or
   * idle connections) accepts the next. Taken for a shutdown, the termination let a healthy session with a full
   * window go. In doubt (any other failure) it still counts as one, as before.
   */
  private async acceptsConnections(connection: SideConnection): Promise<boolean> {
    try {
      await connection.query('SELECT 1');
      return true;
    } catch (err) {
      this.logger.debug({ err: errorMessage(err) }, "the slot-lag probe's connection was ended by an administrator command, and a new one failed: PostgreSQL is shutting down");
      return false;
    }
  }
}

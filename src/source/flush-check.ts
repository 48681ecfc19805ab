import type pg from 'pg';
import type { Logger } from 'pino';
import { RelayError } from '../errors.js';
import { maxLsn, parseLsn, type Lsn } from '../lsn.js';
import { sleep } from '../retry.js';
import { SideConnection } from './side-connection.js';

/**
 * Between two reads that found the walsender had not yet taken the position in (it reads its socket between two
 * sends, and the first read often arrives before it woke): at once, then 1 ms, doubled up to 100 ms for a
 * walsender that does not read it (hung, or busy decoding), so that the reads do not load the server until the
 * session's receive timeout ends it.
 */
const REREAD_MAX_MS = 100;

const CONFIRMED_FLUSH_SQL = 'SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1';

/**
 * Whether PostgreSQL holds a flush position the session sent: the slot's confirmed_flush_lsn, read on a normal
 * connection (`application_name` outbox-relay-flush-check). A standby status update is never answered, and written
 * to the socket it is not yet PostgreSQL's: a relay killed then (its socket reset, with the walsender's data unread)
 * or a connection that broke loses it, and the next session streams from the older position. at-most-once hands a
 * batch to Kafka only once its position is held here, so that no crash sends it twice.
 */
export class ServerFlushCheck {
  private readonly connection: SideConnection;
  private held: Lsn = 0n;
  private waiters: { lsn: Lsn; resolve: (held: boolean) => void; reject: (err: unknown) => void }[] = [];
  private reading = false;

  constructor(
    connection: pg.ClientConfig,
    private readonly slot: string,
    logger: Logger,
    /** The session can still report: once it cannot, a position not yet held never will be by it. */
    private readonly alive: () => boolean,
  ) {
    this.connection = new SideConnection(connection, 'outbox-relay-flush-check', logger);
  }

  /**
   * Resolves true once the slot's confirmed position is at or past `lsn`, false when the session ended first;
   * rejects when the slot cannot be read (the connection failed or was refused), or is not there (PG_SLOT_MISSING). One read serves every caller.
   */
  reached(lsn: Lsn): Promise<boolean> {
    if (lsn <= this.held) return Promise.resolve(true);
    return new Promise((resolve, reject) => {
      this.waiters.push({ lsn, resolve, reject });
      if (!this.reading) void this.read();
    });
  }

  close(): Promise<void> {
    return this.connection.close();
  }

  private async read(): Promise<void> {
    this.reading = true;
    let delayMs = 0;
    try {
      while (this.waiters.length > 0) {
        const rows = this.alive() ? await this.connection.query<{ lsn: string | null }>(CONFIRMED_FLUSH_SQL, [this.slot]) : undefined;
        const found = rows?.[0]?.lsn;
        if (found) this.held = maxLsn(this.held, parseLsn(found));
        // The replication session holds the slot, so it cannot have been dropped: this connection reached another
        // server. Answered false, every hand-off was withheld while the session went on confirming: all lost.
        else if (rows !== undefined && this.alive()) throw slotNotSeen(this.slot);
        const waiting = this.waiters;
        this.waiters = waiting.filter((w) => w.lsn > this.held);
        for (const w of waiting) if (w.lsn <= this.held) w.resolve(true);
        if (this.waiters.length < waiting.length) delayMs = 0;
        // Closed: the rest is not held by this session.
        if (rows === undefined || !this.alive()) {
          for (const w of this.waiters.splice(0)) w.resolve(false);
        } else if (this.waiters.length > 0) {
          await (delayMs === 0 ? new Promise((r) => setImmediate(r)) : sleep(delayMs));
          delayMs = Math.min(REREAD_MAX_MS, Math.max(1, delayMs * 2));
        }
      }
    } catch (err) {
      for (const w of this.waiters.splice(0)) w.reject(err);
    } finally {
      this.reading = false;
    }
  }
}

function slotNotSeen(slot: string): RelayError {
  return new RelayError('PG_SLOT_MISSING', `the outbox-relay-flush-check connection finds no logical replication slot "${slot}", which the replication session holds: postgres.url reaches another server for ordinary connections`, {
    hint: 'point postgres.url at the primary itself, not at an address that can route connections to other servers (a load balancer, a pooler, a DNS name of several hosts)',
  });
}

import type { Lsn } from '../lsn.js';

/** Reply requests for the same WAL end within this span... */
const WINDOW_MS = 1000;
/** ...this many times: far above the one per wal_sender_timeout/2 of an idle server. */
const REQUESTS = 5;

/**
 * Tells a server that is shutting down from an idle one. During a fast or smart shutdown the walsender waits
 * until the client's flush position reaches what it sent, asking for a reply again as soon as one arrives; a
 * relay whose reported position is held back (a replay window, events still waiting for Kafka) would keep it
 * waiting, so PostgreSQL could not stop. An idle server asks once per wal_sender_timeout/2.
 */
export class ServerShutdownDetector {
  private walEnd: Lsn | undefined;
  private times: number[] = [];

  /**
   * A keepalive that asked for a reply, sent by the server at `sentAtMs` (its clock); true once the pattern says the
   * server is waiting for us to go. The send time, not the read: requests queued unread while the relay's window was
   * full are read in one burst.
   */
  replyRequested(walEnd: Lsn, sentAtMs: number): boolean {
    if (walEnd !== this.walEnd) {
      this.walEnd = walEnd;
      this.times = [];
    }
    this.times.push(sentAtMs);
    while (this.times.length > 0 && sentAtMs - this.times[0]! > WINDOW_MS) this.times.shift();
    return this.times.length >= REQUESTS;
  }
}

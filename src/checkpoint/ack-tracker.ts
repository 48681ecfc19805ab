import { maxLsn, type Lsn } from '../lsn.js';

/** One source transaction on its way to Kafka. */
export interface Transaction {
  /** Commit record start (Begin's final LSN): the position a replay starts from. */
  readonly commitLsn: Lsn;
  /** Commit time in ms since the epoch. */
  readonly commitTimeMs: number;
  readonly xid: number;
  /** Set by the Commit message: the position to confirm once every event is acknowledged. */
  endLsn: Lsn | undefined;
  pending: number;
  /** The tracker that decides this transaction's confirmation (events outlive a session after a reconnect). */
  readonly tracker: AckTracker;
}

/**
 * The acknowledgement rule in one place. Transactions queue in commit order; the confirmed position is the
 * `endLsn` of the newest transaction that, with every earlier one, has been committed and had all of its
 * events acknowledged by Kafka. It never moves for a transaction still in flight, and never past its end.
 */
export class AckTracker {
  private readonly queue: Transaction[] = [];
  private open: Transaction | undefined;
  private confirmedLsn: Lsn;
  private confirmedTimeMs: number | undefined;

  constructor(initial: Lsn, private readonly onAdvance: (lsn: Lsn) => void = () => undefined) {
    this.confirmedLsn = initial;
  }

  get confirmed(): Lsn {
    return this.confirmedLsn;
  }

  /** Commit time of the newest confirmed transaction (for lag metrics and checkpoints). */
  get confirmedCommitTimeMs(): number | undefined {
    return this.confirmedTimeMs;
  }

  /** No transaction open and nothing awaiting Kafka. */
  get idle(): boolean {
    return this.open === undefined && this.queue.length === 0;
  }

  get openTransaction(): Transaction | undefined {
    return this.open;
  }

  get transactionsInFlight(): number {
    return this.queue.length;
  }

  begin(commitLsn: Lsn, commitTimeMs: number, xid: number): Transaction {
    const txn: Transaction = { commitLsn, commitTimeMs, xid, endLsn: undefined, pending: 0, tracker: this };
    this.open = txn;
    this.queue.push(txn);
    return txn;
  }

  /** One more event of `txn` handed to the sink. */
  add(txn: Transaction): void {
    txn.pending++;
  }

  acknowledge(txn: Transaction): void {
    txn.pending--;
    if (txn.pending === 0 && txn.endLsn !== undefined) this.advance();
  }

  commit(txn: Transaction, endLsn: Lsn): void {
    txn.endLsn = endLsn;
    if (this.open === txn) this.open = undefined;
    this.advance();
  }

  /**
   * A keepalive while nothing is open or unacknowledged: everything the server sent before `walEnd` is
   * delivered, so confirming it lets the slot advance past WAL of other tables and databases.
   */
  keepalive(walEnd: Lsn): void {
    if (!this.idle) return;
    this.setConfirmed(maxLsn(this.confirmedLsn, walEnd));
  }

  private advance(): void {
    let next: Transaction | undefined;
    while ((next = this.queue[0]) !== undefined && next.endLsn !== undefined && next.pending === 0) {
      this.queue.shift();
      this.confirmedTimeMs = next.commitTimeMs;
      this.setConfirmed(maxLsn(this.confirmedLsn, next.endLsn));
    }
  }

  private setConfirmed(lsn: Lsn): void {
    if (lsn === this.confirmedLsn) return;
    this.confirmedLsn = lsn;
    this.onAdvance(lsn);
  }
}

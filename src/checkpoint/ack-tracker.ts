import { maxLsn, type Lsn } from '../lsn.js';

/** One source transaction on its way to Kafka. */
export interface SourceTransaction {
  /** Commit record start (Begin's final LSN): the position a replay starts from. */
  readonly commitLsn: Lsn;
  /** Commit time in ms since the epoch. */
  commitTimeMs: number;
  readonly xid: number;
  /** When the relay read its Begin (Date.now() ms of the socket read that carried it); 0 where not read from a socket. */
  readonly readAtMs: number;
  /** Set by the Commit message: this transaction's own commit end. */
  endLsn: Lsn | undefined;
  /** Events handed to the sink and not yet acknowledged. */
  pending: number;
  /** The tracker that decides this transaction's confirmation; also identifies the session it came from. */
  readonly tracker: AckTracker;
}

/** A transaction in the tracker's queue: it had events; `confirmsTo` may cover event-less ones committed after it. */
interface Entry {
  txn: SourceTransaction;
  confirmsTo: Lsn | undefined;
  commitTimeMs: number;
}

/**
 * The acknowledgement rule in one place. Transactions with events queue in commit order; the confirmed position
 * is the end LSN of the newest transaction that, with every earlier one, has been committed and had all of its
 * events acknowledged by Kafka. It never moves for a transaction still in flight, and never past its end.
 * Transactions without events (filtered, or the BEGIN/COMMIT pairs pgoutput sends for every write transaction
 * before PostgreSQL 15) do not queue: they extend the newest queued entry, so the queue stays bounded by the
 * transactions that really wait for Kafka.
 */
export class AckTracker {
  /** Entries from `head` on wait; confirmed ones before it are dropped in bulk (shift() would move the rest each time). */
  private queue: Entry[] = [];
  private head = 0;
  private readonly entries = new Map<SourceTransaction, Entry>();
  private open: SourceTransaction | undefined;
  private confirmedLsn: Lsn;
  private confirmedTimeMs: number | undefined;
  /** Event-less transactions folded into the queue's newest entry since the queue was last empty. */
  private folded = 0;
  private committedLsn: Lsn;

  constructor(initial: Lsn, private readonly onAdvance: (lsn: Lsn) => void = () => undefined) {
    this.confirmedLsn = initial;
    this.committedLsn = initial;
  }

  /** End LSN of the newest transaction whose commit was read: where the confirmed position gets once all is delivered. */
  get committed(): Lsn {
    return this.committedLsn;
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
    return this.open === undefined && this.head === this.queue.length;
  }

  /**
   * What waits behind the oldest unacknowledged transaction: how many event-less transactions were folded in,
   * and the newest position they would confirm (the WAL the slot keeps because of the wait).
   */
  get heldBack(): { transactions: number; upTo: Lsn } {
    return { transactions: this.folded, upTo: this.tail()?.confirmsTo ?? this.confirmedLsn };
  }

  begin(commitLsn: Lsn, commitTimeMs: number, xid: number, readAtMs = 0): SourceTransaction {
    const txn: SourceTransaction = { commitLsn, commitTimeMs, xid, readAtMs, endLsn: undefined, pending: 0, tracker: this };
    this.open = txn;
    return txn;
  }

  /** One more event of `txn` handed to the sink. */
  add(txn: SourceTransaction): void {
    if (!this.entries.has(txn)) {
      const entry: Entry = { txn, confirmsTo: undefined, commitTimeMs: txn.commitTimeMs };
      this.entries.set(txn, entry);
      this.queue.push(entry);
    }
    txn.pending++;
  }

  /** Kafka acknowledged `count` events of `txn`. */
  acknowledge(txn: SourceTransaction, count = 1): void {
    txn.pending -= count;
    if (txn.pending === 0 && txn.endLsn !== undefined) this.advance();
  }

  commit(txn: SourceTransaction, endLsn: Lsn): void {
    txn.endLsn = endLsn;
    this.committedLsn = maxLsn(this.committedLsn, endLsn);
    if (this.open === txn) this.open = undefined;
    const entry = this.entries.get(txn);
    if (entry) {
      entry.confirmsTo = endLsn;
      this.advance();
      return;
    }
    // No events: pgoutput streams transactions one after another, so every queued entry is committed already.
    const tail = this.tail();
    if (!tail) {
      this.confirmedTimeMs = txn.commitTimeMs;
      this.setConfirmed(maxLsn(this.confirmedLsn, endLsn));
      return;
    }
    tail.confirmsTo = endLsn;
    tail.commitTimeMs = txn.commitTimeMs;
    this.folded++;
  }

  /**
   * A keepalive while nothing is open or unacknowledged: everything the server sent before `walEnd` is
   * delivered, so confirming it lets the slot advance past WAL of other tables and databases.
   */
  keepalive(walEnd: Lsn): void {
    if (!this.idle) return;
    this.setConfirmed(maxLsn(this.confirmedLsn, walEnd));
  }

  private tail(): Entry | undefined {
    return this.head < this.queue.length ? this.queue[this.queue.length - 1] : undefined;
  }

  private advance(): void {
    let next: Entry | undefined;
    let newest: Entry | undefined;
    while ((next = this.queue[this.head]) !== undefined && next.confirmsTo !== undefined && next.txn.pending === 0) {
      this.head++;
      this.entries.delete(next.txn);
      newest = next;
    }
    // One notice for all the transactions one acknowledgement completes (a batch can hold thousands of
    // single-row ones): listeners keep only the newest position and commit time.
    if (newest) {
      this.confirmedTimeMs = newest.commitTimeMs;
      this.setConfirmed(maxLsn(this.confirmedLsn, newest.confirmsTo!));
    }
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
      this.folded = 0;
    } else if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }

  private setConfirmed(lsn: Lsn): void {
    if (lsn === this.confirmedLsn) return;
    this.confirmedLsn = lsn;
    this.onAdvance(lsn);
  }
}

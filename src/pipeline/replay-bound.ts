import type { Lsn } from '../lsn.js';
import type { CreateDelivery, Delivery } from '../sink/delivery.js';
import type { RelayObserver } from './observer.js';

/**
 * The end of a bounded replay, built on the relay's seams (createDelivery, observer) so the session streams as in
 * `run`. Transactions whose commit record starts after `lastCommit` are never produced: their first event is
 * refused (and so never acknowledged, which keeps the confirmed position before them) and ends the replay. The
 * replay also ends once the confirmed position passed `lastCommit`, which covers a range with no later outbox
 * event: an idle slot confirms the server's WAL end. And once it streams from past `lastCommit` (`startLsn` at the
 * WAL end, which the refusals' fixes name): the range is empty, and on a server that writes nothing the position
 * never moves, so neither end came and the replay never ended.
 */
export class ReplayBound {
  private ended = false;
  private committedTo: Lsn = 0n;

  constructor(
    readonly startLsn: Lsn,
    readonly lastCommit: Lsn,
    private readonly onEnd: () => void,
  ) {}

  wrap(create: CreateDelivery): CreateDelivery {
    return (callbacks) => {
      const inner = create(callbacks);
      const bounded: Delivery = {
        get inFlightEvents() {
          return inner.inFlightEvents;
        },
        get inFlightBytes() {
          return inner.inFlightBytes;
        },
        get positionHeldEvents() {
          return inner.positionHeldEvents;
        },
        get windowFullMs() {
          return inner.windowFullMs;
        },
        get windowFullSinceMs() {
          return inner.windowFullSinceMs;
        },
        get accepting() {
          return inner.accepting;
        },
        openSession: (session) => inner.openSession(session),
        push: (event) => {
          if (event.txn.commitLsn <= this.lastCommit) return inner.push(event);
          this.end();
          return false; // stop reading: nothing after the bound is wanted
        },
        committed: (txn) => {
          if (txn.commitLsn <= this.lastCommit && txn.endLsn !== undefined && txn.endLsn > this.committedTo) this.committedTo = txn.endLsn;
          inner.committed(txn);
        },
        endSession: (session) => inner.endSession(session),
        sourceProgressed: (startLsn) => inner.sourceProgressed(startLsn),
        whenIdle: () => inner.whenIdle(),
        drain: () => inner.drain(),
        stop: () => inner.stop(),
      };
      return bounded;
    };
  }

  /**
   * End LSN of the newest transaction inside the bound that was read to its commit: the replay delivered its range
   * only once the confirmed position reached it. Reaching the end is not enough: the drain after it is bounded by
   * shutdownGrace, and what Kafka had not acknowledged by then was not delivered.
   */
  get readTo(): Lsn {
    return this.committedTo;
  }

  readonly observer: RelayObserver = {
    confirmed: (lsn) => {
      if (lsn > this.lastCommit) this.end();
    },
    stateChanged: (state) => {
      if (state === 'streaming' && this.startLsn > this.lastCommit) this.end();
    },
  };

  private end(): void {
    if (this.ended) return;
    this.ended = true;
    this.onEnd();
  }
}

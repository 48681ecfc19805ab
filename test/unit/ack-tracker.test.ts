import { describe, expect, it } from 'vitest';
import { AckTracker } from '../../src/checkpoint/ack-tracker.js';

describe('AckTracker', () => {
  it('confirms exactly the end LSN of the last fully acknowledged transaction, never beyond', () => {
    const tracker = new AckTracker(100n);
    const t1 = tracker.begin(150n, 0, 1);
    tracker.add(t1);
    tracker.add(t1);
    tracker.commit(t1, 200n);
    expect(tracker.confirmed).toBe(100n);
    tracker.acknowledge(t1);
    expect(tracker.confirmed).toBe(100n);
    tracker.acknowledge(t1);
    expect(tracker.confirmed).toBe(200n);
  });

  it('knows the end of the newest transaction read (what a drain confirms to), whether or not Kafka acknowledged it', () => {
    const tracker = new AckTracker(100n);
    expect(tracker.committed).toBe(100n);
    const t1 = tracker.begin(150n, 0, 1);
    tracker.add(t1);
    tracker.commit(t1, 200n);
    const t2 = tracker.begin(250n, 0, 2);
    tracker.add(t2);
    // t2's commit is not read yet: a drain does not wait for it.
    expect(tracker.committed).toBe(200n);
    expect(tracker.confirmed).toBe(100n);
    tracker.acknowledge(t1);
    expect(tracker.confirmed).toBe(tracker.committed);
  });

  it('advances in commit order even when a later transaction is acknowledged first', () => {
    const tracker = new AckTracker(0n);
    const t1 = tracker.begin(10n, 0, 1);
    tracker.add(t1);
    tracker.commit(t1, 20n);
    // T2's commit record starts exactly at T1's end: the adjacent-commit case that +1 confirmations lose.
    const t2 = tracker.begin(20n, 0, 2);
    tracker.add(t2);
    tracker.commit(t2, 30n);
    tracker.acknowledge(t2);
    expect(tracker.confirmed).toBe(0n);
    tracker.acknowledge(t1);
    expect(tracker.confirmed).toBe(30n);
  });

  it('reports the newest position once when one acknowledgement completes several transactions', () => {
    const seen: [bigint, number | undefined][] = [];
    const tracker: AckTracker = new AckTracker(0n, (lsn) => seen.push([lsn, tracker.confirmedCommitTimeMs]));
    const txns = [1, 2, 3].map((i) => {
      const t = tracker.begin(BigInt(i * 10), 1000 + i, i);
      tracker.add(t);
      tracker.commit(t, BigInt(i * 10 + 5));
      return t;
    });
    tracker.acknowledge(txns[2]!);
    tracker.acknowledge(txns[1]!);
    expect(seen).toEqual([]);
    tracker.acknowledge(txns[0]!);
    expect(seen).toEqual([[35n, 1003]]);
  });

  it('never confirms a transaction whose events are acknowledged before its commit arrived', () => {
    const tracker = new AckTracker(0n);
    const t1 = tracker.begin(10n, 0, 1);
    tracker.add(t1);
    tracker.acknowledge(t1);
    expect(tracker.confirmed).toBe(0n);
    tracker.commit(t1, 20n);
    expect(tracker.confirmed).toBe(20n);
  });

  it('confirms a transaction with no events at its commit, in order', () => {
    const tracker = new AckTracker(0n);
    const t1 = tracker.begin(10n, 0, 1);
    tracker.add(t1);
    tracker.commit(t1, 20n);
    const t2 = tracker.begin(30n, 0, 2);
    tracker.commit(t2, 40n);
    expect(tracker.confirmed).toBe(0n);
    tracker.acknowledge(t1);
    expect(tracker.confirmed).toBe(40n);
  });

  it('takes a keepalive position only when nothing is open or in flight', () => {
    const seen: bigint[] = [];
    const tracker = new AckTracker(0n, (lsn) => seen.push(lsn));
    tracker.keepalive(50n);
    expect(tracker.confirmed).toBe(50n);
    const t1 = tracker.begin(60n, 0, 1);
    tracker.keepalive(70n);
    expect(tracker.confirmed).toBe(50n);
    tracker.add(t1);
    tracker.commit(t1, 80n);
    tracker.keepalive(90n);
    expect(tracker.confirmed).toBe(50n);
    tracker.acknowledge(t1);
    tracker.keepalive(40n);
    expect(tracker.confirmed).toBe(80n);
    expect(seen).toEqual([50n, 80n]);
  });

  it('folds event-less transactions behind a stuck event into one entry, and confirms past them once it is acknowledged', () => {
    const tracker = new AckTracker(0n);
    const stuck = tracker.begin(10n, 0, 1);
    tracker.add(stuck);
    tracker.commit(stuck, 20n);
    // On PostgreSQL 14 and older pgoutput sends BEGIN/COMMIT for every write transaction, filtered or not.
    let end = 20n;
    for (let i = 0; i < 100_000; i++) {
      const empty = tracker.begin(end, 0, i + 2);
      end += 10n;
      tracker.commit(empty, end);
    }
    expect(tracker.heldBack).toEqual({ transactions: 100_000, upTo: end });
    expect(tracker.confirmed).toBe(0n);
    tracker.acknowledge(stuck);
    expect(tracker.confirmed).toBe(end);
    expect(tracker.heldBack.transactions).toBe(0);
    expect(tracker.idle).toBe(true);
  });

  it('confirms an event-less transaction at once when nothing waits', () => {
    const tracker = new AckTracker(0n);
    const empty = tracker.begin(10n, 0, 1);
    tracker.commit(empty, 20n);
    expect(tracker.confirmed).toBe(20n);
  });

  it('keeps the rule over thousands of transactions in flight, acknowledged in waves (its queue drops confirmed entries in bulk)', () => {
    const tracker = new AckTracker(0n);
    const txns = Array.from({ length: 5000 }, (_, i) => {
      const txn = tracker.begin(BigInt(10 * i + 1), 0, i);
      tracker.add(txn);
      tracker.commit(txn, BigInt(10 * i + 10));
      return txn;
    });
    // The first 3000 acknowledged except number 2500: the position stops right before it.
    for (const txn of txns.slice(0, 3000)) if (txn !== txns[2500]) tracker.acknowledge(txn);
    expect(tracker.confirmed).toBe(25_000n);
    expect(tracker.idle).toBe(false);
    const late = tracker.begin(50_001n, 0, 5000);
    tracker.add(late);
    tracker.commit(late, 50_010n);
    tracker.acknowledge(txns[2500]!);
    expect(tracker.confirmed).toBe(30_000n);
    for (const txn of txns.slice(3000)) tracker.acknowledge(txn);
    expect(tracker.confirmed).toBe(50_000n);
    tracker.acknowledge(late);
    expect(tracker.confirmed).toBe(50_010n);
    expect(tracker.idle).toBe(true);
  });
});

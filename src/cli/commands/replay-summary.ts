import type { ErrorJson } from '../exit.js';
import { formatLsn, type Lsn } from '../../lsn.js';
import type { RelayObserver } from '../../pipeline/observer.js';
import { keyValues } from './output.js';

/**
 * What a replay re-sent, counted from Kafka's acknowledgements (not from what was read), and the rows its filters
 * left out. Replay has no poison policy (a poison event halts it), so every receipt is a record Kafka took.
 */
export class ReplayTally {
  events = 0;
  /** Rows the filters (filter.*) left out of the transactions up to `lastCommit`: read, never sent. */
  skipped = 0;
  readonly byTopic: Record<string, number> = {};
  private first: Lsn | undefined;
  private last: Lsn | undefined;

  /** `lastCommit`: the replay's end; a filtered row past it belongs to a transaction the replay does not deliver. */
  constructor(private readonly lastCommit: Lsn) {}

  readonly observer: RelayObserver = {
    // Filtered rows never reach Kafka: no receipt carries them, the session reports them at their commit.
    filtered: (_table, rows, commitLsn) => {
      if (commitLsn <= this.lastCommit) this.skipped += rows;
    },
    delivered: (receipts) => {
      for (const r of receipts) {
        this.events += r.count;
        this.byTopic[r.topic] = (this.byTopic[r.topic] ?? 0) + r.count;
        const lsn = r.txn.commitLsn;
        if (this.first === undefined || lsn < this.first) this.first = lsn;
        if (this.last === undefined || lsn > this.last) this.last = lsn;
      }
    },
  };

  /** Commit LSNs (the records' outbox-lsn header) of the first and last transaction re-sent; null when none was. */
  get commitLsnRange(): { first: string; last: string } | null {
    return this.first === undefined ? null : { first: formatLsn(this.first), last: formatLsn(this.last!) };
  }
}

export interface ReplaySummary {
  /** The replay reached its end (`lastCommitLsn`); false when it was interrupted or failed. */
  finished: boolean;
  events: number;
  skipped: number;
  byTopic: Record<string, number>;
  commitLsnRange: { first: string; last: string } | null;
  startLsn: string;
  /** --to-lsn, else null. */
  toLsn: string | null;
  /** The last commit LSN the replay would deliver: --to-lsn, capped at the WAL position when it started. */
  lastCommitLsn: string;
  /** The position the relay confirmed when it stopped. */
  confirmedLsn: string;
  durationMs: number;
  error?: ErrorJson;
}


export function replayText(summary: ReplaySummary): string {
  const range = summary.commitLsnRange;
  const head = summary.finished
    ? `replay finished: re-sent ${summary.events} event(s) in ${(summary.durationMs / 1000).toFixed(1)} s`
    : `replay stopped before its end${summary.error ? ` (${summary.error.code})` : ''}: ${summary.events} event(s) re-sent`;
  return [
    head,
    keyValues(
      [
        ['commit LSNs re-sent', range ? `${range.first} .. ${range.last}` : 'none'],
        ['requested', `${summary.startLsn} .. ${summary.toLsn ?? `${summary.lastCommitLsn} (the WAL position at start)`}`],
        ['confirmed', summary.confirmedLsn],
        ['left out by filters', summary.skipped],
        ...Object.entries(summary.byTopic).map(([topic, n]): [string, number] => [`topic ${topic}`, n]),
      ],
      '  ',
    ),
  ].join('\n');
}

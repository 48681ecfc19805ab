import type { SourceTransaction } from '../checkpoint/ack-tracker.js';
import { formatLsn } from '../lsn.js';

/**
 * The headers every event of a transaction carries (outbox-lsn, outbox-commit-time, outbox-xid), for rows and logical
 * messages alike: formatted once per transaction, not per event: a backlog transaction can hold thousands of events. The commit
 * time is also kept across transactions: single-row ones committed in the same millisecond share its text.
 */
let cachedTxn: SourceTransaction | undefined;
let cachedHeaders = { lsn: '', commitTime: '', xid: '' };
let cachedTimeMs = NaN;
export function transactionHeaders(txn: SourceTransaction): { lsn: string; commitTime: string; xid: string } {
  if (txn !== cachedTxn) {
    cachedTxn = txn;
    const commitTime = txn.commitTimeMs === cachedTimeMs ? cachedHeaders.commitTime : new Date(txn.commitTimeMs).toISOString();
    cachedTimeMs = txn.commitTimeMs;
    cachedHeaders = { lsn: formatLsn(txn.commitLsn), commitTime, xid: String(txn.xid) };
  }
  return cachedHeaders;
}

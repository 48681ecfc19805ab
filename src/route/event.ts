import type { SourceTransaction } from '../checkpoint/ack-tracker.js';
import type { RelayError } from '../errors.js';

/** One outbox row on its way to Kafka, with the transaction it belongs to (for the acknowledgement rule). */
export interface OutboxEvent {
  topic: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, string | Buffer>;
  /** The event time from `mapping.timestamp`, as the record timestamp (ms since the epoch). */
  timestampMs?: number;
  /** For errors and logs. */
  eventId: string;
  /** Approximate bytes on the wire, for the in-flight window. */
  size: number;
  txn: SourceTransaction;
  /** Set when the row could not be turned into a record: the poison policy handles it in its place in the stream. */
  error?: RelayError;
}

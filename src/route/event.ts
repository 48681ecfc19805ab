import type { SourceTransaction } from '../checkpoint/ack-tracker.js';
import type { RelayError } from '../errors.js';

/** One outbox row on its way to Kafka, with the transaction it belongs to (for the acknowledgement rule). */
export interface OutboxEvent {
  topic: string;
  /** Text as the mapping read it (the clients encode it as UTF-8), or bytes. */
  key: string | Buffer | null;
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

/**
 * The bytes a record counts for in the in-flight window: topic, key, value and every header's name and value.
 * Called for every event of a drain: a for-in allocates nothing, Object.entries an array per header.
 */
export function recordSize(topic: string, key: string | Buffer | null, value: Buffer | null, headers: Record<string, string | Buffer>): number {
  let size = topic.length + (key?.length ?? 0) + (value?.length ?? 0);
  for (const name in headers) size += name.length + headers[name]!.length;
  return size;
}

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
  /**
   * Set when the row could not be turned into a record, or (at-most-once) when Kafka refused its topic before its
   * hand-off: the poison policy handles it in its place in the stream.
   */
  error?: RelayError;
}

/**
 * The bytes a record counts for in the in-flight window, the batch cut and outbox_relay_bytes_total: topic, key,
 * value and every header's name and value, text as the UTF-8 the clients send (up to 3 bytes per UTF-16 unit,
 * which String#length counts). The topic is a legal Kafka name, so ASCII. `ascii`: the caller knows all the text is
 * ASCII, and the scan is skipped. Called for every event of a drain: a for-in allocates nothing, Object.entries an
 * array per header.
 */
export function recordSize(topic: string, key: string | Buffer | null, value: Buffer | null, headers: Record<string, string | Buffer>, ascii = false): number {
  let size = topic.length + (value?.length ?? 0);
  if (ascii) {
    size += key?.length ?? 0;
    for (const name in headers) size += name.length + headers[name]!.length;
    return size;
  }
  if (key !== null) size += typeof key === 'string' ? utf8Length(key) : key.length;
  for (const name in headers) {
    const headerValue = headers[name]!;
    size += utf8Length(name) + (typeof headerValue === 'string' ? utf8Length(headerValue) : headerValue.length);
  }
  return size;
}

/** ASCII text is counted in a loop: for short strings several times cheaper than the native Buffer.byteLength. */
function utf8Length(text: string): number {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) return Buffer.byteLength(text);
  return text.length;
}

import type { OutboxEvent } from '../route/event.js';
import type { Receipt } from './delivery.js';

/** Consecutive events of one source transaction and topic as one receipt (what the ack tracker and metrics count). */
export function receiptsOf(events: readonly OutboxEvent[], skipped = false, into: Receipt[] = []): Receipt[] {
  for (const event of events) {
    const tail = into.at(-1);
    if (tail && tail.txn === event.txn && tail.topic === event.topic && tail.skipped === skipped) {
      tail.count++;
      tail.bytes += event.size;
    } else {
      into.push({ txn: event.txn, topic: event.topic, count: 1, bytes: event.size, skipped });
    }
  }
  return into;
}

export function bytesOf(events: readonly OutboxEvent[]): number {
  let bytes = 0;
  for (const event of events) bytes += event.size;
  return bytes;
}

import type { OutboxEvent } from '../../src/route/event.js';

/** What a client sends of the record: topic, key, value, each header's name and value, every text as UTF-8. */
export function utf8Size(event: OutboxEvent): number {
  let size = Buffer.byteLength(event.topic) + (event.key === null ? 0 : Buffer.byteLength(event.key)) + (event.value?.length ?? 0);
  for (const [name, value] of Object.entries(event.headers)) size += Buffer.byteLength(name) + Buffer.byteLength(value);
  return size;
}
